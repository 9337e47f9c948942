//! Line numbers counted only when a location needs them.
//!
//! Planning cuts text files at line starts without counting the lines before each cut: a range
//! that does not start its file numbers its lines *relative* to its start
//! ([`crate::FileRange::relative`]). A record's location (`path:line`) then needs the number of
//! lines before that start, which [`LinesBefore`] counts when first asked: for a 0.1.x job
//! before its first record (its keys carry the location), for a 0.2.0 job when it calls
//! `context.record-location` or the host names a record (an error, a bad record, `--sample`).
//! Most 0.2.0 jobs never ask, and then nothing before a shard's start is read.
//!
//! Counts are cached per process, for the [`FILES`] files last counted, keyed by the file's
//! identity and version (device, inode, size and modification time; for an object, its URL,
//! size, modification time and ETag), so a changed file is counted again. For each file the
//! cache keeps the offsets counted so far; a count starts from the nearest one before it, and
//! counts of one file run one at a time, so many shards, slices and tasks of one file read each
//! byte before their starts once per process, not once each. For a BGZF file the members before
//! the offset are inflated (from the nearest counted offset's member).

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::compress::{Compression, decoder};
use crate::reader::{Planned, ReadOptions, SharedCount};
use crate::{InputError, InputFile};

/// Files whose counts the process keeps.
pub(crate) const FILES: usize = 64;
/// Counted offsets kept per file (the lowest go first beyond this).
const POINTS: usize = 4096;
/// Ranged GETs in flight while counting an object's lines.
const OBJECT_COUNT_PARALLEL: usize = 8;

/// Where a relative range's lines count from: decompressed offset `out` (a line start), read by
/// starting a decoder at the member at file offset `at`, whose decompressed offset is `member`.
/// For a plain file all three are the same byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Point {
    pub(crate) at: u64,
    pub(crate) member: u64,
    pub(crate) out: u64,
}

impl Point {
    /// Byte `offset` of a plain file.
    pub(crate) fn plain(offset: u64) -> Point {
        Point {
            at: offset,
            member: offset,
            out: offset,
        }
    }
}

/// The lines before a relative range's start in one file, counted when first asked (through
/// the process's cache) and then remembered.
#[derive(Debug)]
pub(crate) struct LinesBefore {
    file: InputFile,
    point: Point,
    options: ReadOptions,
    count: OnceLock<u64>,
}

impl LinesBefore {
    pub(crate) fn new(file: &InputFile, point: Point, options: ReadOptions) -> Arc<LinesBefore> {
        Arc::new(LinesBefore {
            file: file.clone(),
            point,
            options,
            count: OnceLock::new(),
        })
    }

    /// The number of lines before the point (its newlines), counting them if nobody has yet.
    pub(crate) fn get(&self) -> Result<u64, InputError> {
        if let Some(&n) = self.count.get() {
            return Ok(n);
        }
        let n = lines_before(&self.file, self.point, self.options)?;
        let _ = self.count.set(n);
        Ok(n)
    }
}

impl mr_codec::LineBase for LinesBefore {
    fn lines_before(&self) -> Result<u64, String> {
        self.get().map_err(|e| e.to_string())
    }
}

/// Which file, in which version: a file changed in place gets another key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FileKey {
    Local {
        dev: u64,
        ino: u64,
        size: u64,
        mtime_ns: i128,
    },
    Object {
        url: String,
        size: u64,
        modified_ns: u128,
        etag: Option<String>,
    },
}

impl FileKey {
    /// Whether both name the same file (perhaps in different versions).
    fn same_file(&self, other: &FileKey) -> bool {
        match (self, other) {
            (FileKey::Local { dev, ino, .. }, FileKey::Local { dev: d, ino: i, .. }) => {
                dev == d && ino == i
            }
            (FileKey::Object { url, .. }, FileKey::Object { url: u, .. }) => url == u,
            _ => false,
        }
    }

    fn size(&self) -> u64 {
        match self {
            FileKey::Local { size, .. } | FileKey::Object { size, .. } => *size,
        }
    }
}

/// A counted offset: the newlines before decompressed offset (the map's key), and where a
/// decoder can start to go on from there.
#[derive(Debug, Clone, Copy, Default)]
struct Known {
    at: u64,
    member: u64,
    newlines: u64,
}

/// One file's counted offsets.
struct FileCounts {
    key: FileKey,
    known: Mutex<BTreeMap<u64, Known>>,
}

/// The files counted, least recently used first.
static CACHE: Mutex<Vec<Arc<FileCounts>>> = Mutex::new(Vec::new());

fn file_key(file: &InputFile) -> Result<FileKey, InputError> {
    let key = match file.object() {
        Some(url) => {
            let info = crate::source::location(file, url)?
                .head()
                .map_err(|e| crate::source::object_error(file, e))?
                .ok_or_else(|| InputError::Io {
                    path: file.display.clone(),
                    offset: None,
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, "the object is gone"),
                })?;
            FileKey::Object {
                url: url.to_owned(),
                size: info.size,
                modified_ns: info.modified_ns,
                etag: info.etag,
            }
        }
        None => {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(&file.path).map_err(|source| InputError::Io {
                path: file.display.clone(),
                offset: None,
                source,
            })?;
            FileKey::Local {
                dev: m.dev(),
                ino: m.ino(),
                size: m.size(),
                mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            }
        }
    };
    if key.size() != file.len {
        return Err(InputError::Corrupt {
            path: file.display.clone(),
            message: format!(
                "the file changed since the job was planned: it had {} bytes then and has {} now (counting the lines before a shard)",
                file.len,
                key.size()
            ),
        });
    }
    Ok(key)
}

/// The cache entry of `key`, made the most recently used; other versions of the same file are
/// forgotten, and the least recently used file when there are [`FILES`].
fn entry(key: FileKey) -> Arc<FileCounts> {
    let mut files = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(i) = files.iter().position(|f| f.key == key) {
        let f = files.remove(i);
        files.push(f.clone());
        return f;
    }
    files.retain(|f| !f.key.same_file(&key));
    if files.len() >= FILES {
        files.remove(0);
    }
    let f = Arc::new(FileCounts {
        key,
        known: Mutex::new(BTreeMap::new()),
    });
    files.push(f.clone());
    f
}

/// The number of newlines before `point.out` in the file's (decompressed) bytes, from the
/// cache or counted from the nearest counted offset before it.
pub(crate) fn lines_before(
    file: &InputFile,
    point: Point,
    options: ReadOptions,
) -> Result<u64, InputError> {
    if point.out == 0 {
        return Ok(0);
    }
    let counts = entry(file_key(file)?);
    // Held while counting: a second count of the same file waits, then goes on from this one.
    let mut known = counts.known.lock().unwrap_or_else(PoisonError::into_inner);
    let (from_out, from) = known
        .range(..=point.out)
        .next_back()
        .map(|(&o, &k)| (o, k))
        .unwrap_or_default();
    if from_out == point.out {
        return Ok(from.newlines);
    }
    let n = if file.codec() == Compression::None {
        count_plain(file, from_out, point.out)?
    } else {
        count_inflated(file, from, from_out, point.out, options)?
    };
    let newlines = from.newlines + n;
    if known.len() >= POINTS {
        known.pop_first();
    }
    known.insert(
        point.out,
        Known {
            at: point.at,
            member: point.member,
            newlines,
        },
    );
    Ok(newlines)
}

/// Newlines in bytes `start..end` of a plain file.
pub(crate) fn count_plain(f: &InputFile, start: u64, end: u64) -> Result<u64, InputError> {
    if let Some(url) = f.object() {
        // Several ranged GETs at once.
        return crate::source::location(f, url)?
            .count_byte(start..end, b'\n', OBJECT_COUNT_PARALLEL)
            .map_err(|e| crate::source::object_error(f, e));
    }
    let mut take = crate::source::open_range(f, start, end)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut count = 0u64;
    let mut pos = start;
    loop {
        let n = take.read(&mut buf).map_err(|source| InputError::Io {
            path: f.display.clone(),
            offset: Some(pos),
            source,
        })?;
        if n == 0 {
            if pos < end {
                return Err(InputError::Corrupt {
                    path: f.display.clone(),
                    message: format!(
                        "the file ended at byte {pos} while counting the lines before byte {end}; the file changed since the job was planned"
                    ),
                });
            }
            return Ok(count);
        }
        count += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
        pos += n as u64;
    }
}

/// Newlines in decompressed bytes `from_out..to` of a compressed file, decoding from the member
/// at `from.at` (decompressed offset `from.member`).
fn count_inflated(
    file: &InputFile,
    from: Known,
    from_out: u64,
    to: u64,
    options: ReadOptions,
) -> Result<u64, InputError> {
    let f = crate::source::open_range(file, from.at, file.len)?;
    let mut stream = decoder(
        f,
        SharedCount::default(),
        Planned::whole(file),
        file.codec(),
        options,
        (from.at, from.member),
    )
    .take(to - from.member);
    let mut buf = vec![0u8; 1 << 20];
    let (mut pos, mut count) = (from.member, 0u64);
    loop {
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // The message has the compressed and decompressed offsets.
            Err(source) => {
                return Err(InputError::Io {
                    path: file.display.clone(),
                    offset: None,
                    source,
                });
            }
        };
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        // Bytes before `from_out` were counted already.
        let skip = from_out.saturating_sub(pos).min(n as u64) as usize;
        count += memchr::memchr_iter(b'\n', &chunk[skip..]).count() as u64;
        pos += n as u64;
    }
    if pos < to {
        return Err(InputError::Corrupt {
            path: file.display.clone(),
            message: format!(
                "the decompressed stream ended at byte {pos} while counting the lines before byte {to}; the file changed since the job was planned"
            ),
        });
    }
    Ok(count)
}

/// Tests that look into the cache or fill it run one at a time (others only read through it,
/// and a file evicted is only counted again).
#[cfg(test)]
pub(crate) static TEST_LOCK: Mutex<()> = Mutex::new(());

/// The offsets counted so far of `file` as it is now (none when it is not cached).
#[cfg(test)]
pub(crate) fn counted(file: &InputFile) -> Vec<u64> {
    let Ok(key) = file_key(file) else {
        return Vec::new();
    };
    let files = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    files
        .iter()
        .find(|f| f.key == key)
        .map(|f| f.known.lock().unwrap().keys().copied().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{bgzf, input};

    fn newlines(text: &[u8]) -> u64 {
        memchr::memchr_iter(b'\n', text).count() as u64
    }

    use super::TEST_LOCK as LOCK;

    #[test]
    fn counts_are_cached_and_go_on_from_the_nearest_offset() {
        let _one = LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..5000).map(|i| format!("line {i}\n")).collect();
        let file = input(dir.path(), "a.txt", text.as_bytes());
        let options = ReadOptions::default();
        for at in [30_000u64, 10_000, 20_000, 30_000, 0] {
            let expected = newlines(&text.as_bytes()[..at as usize]);
            let base = LinesBefore::new(&file, Point::plain(at), options);
            assert_eq!(base.get().unwrap(), expected, "{at}");
            assert_eq!(base.get().unwrap(), expected, "{at}, remembered");
        }
        assert_eq!(counted(&file), [10_000, 20_000, 30_000]);
    }

    #[test]
    fn a_changed_file_is_counted_again() {
        let _one = LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        let dir = tempfile::tempdir().unwrap();
        let file = input(dir.path(), "c.txt", b"a\nb\nc\nd\n");
        let options = ReadOptions::default();
        assert_eq!(lines_before(&file, Point::plain(4), options).unwrap(), 2);
        // The same size, other content, another modification time: counted again.
        std::fs::write(&file.path, b"abc\nd\nef").unwrap();
        let f = std::fs::File::options()
            .write(true)
            .open(&file.path)
            .unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(7))
            .unwrap();
        assert_eq!(lines_before(&file, Point::plain(4), options).unwrap(), 1);
        assert_eq!(counted(&file), [4]);
        // Another size: the count refuses it, as reading would.
        std::fs::write(&file.path, b"a\n").unwrap();
        let e = lines_before(&file, Point::plain(4), options)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("c.txt") && e.contains("the file changed since the job was planned"),
            "{e}"
        );
    }

    #[test]
    fn the_cache_keeps_a_bounded_number_of_files() {
        let _one = LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<InputFile> = (0..FILES + 3)
            .map(|i| input(dir.path(), &format!("f{i}.txt"), b"x\ny\nz\n"))
            .collect();
        for f in &files {
            assert_eq!(
                lines_before(f, Point::plain(2), ReadOptions::default()).unwrap(),
                1
            );
        }
        // Other tests count other files meanwhile: the first ones are gone, the last one kept.
        assert!(counted(&files[0]).is_empty());
        assert_eq!(counted(&files[FILES + 2]), [2]);
        assert!(CACHE.lock().unwrap().len() <= FILES);
    }

    #[test]
    fn bgzf_counts_inflate_from_the_nearest_member() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..20_000).map(|i| format!("l {i}\n")).collect();
        let packed = bgzf(text.as_bytes(), 1000);
        let file = input(dir.path(), "b.txt.gz", &packed);
        // The members' compressed and decompressed offsets.
        let (mut at, mut out) = (0usize, 0u64);
        let mut members = Vec::new();
        while at < packed.len() {
            let size = crate::bgzf::block_size(&packed[at..at + 18]).unwrap() as usize;
            members.push((at as u64, out));
            out += u64::from(u32::from_le_bytes(
                packed[at + size - 4..at + size].try_into().unwrap(),
            ));
            at += size;
        }
        let options = ReadOptions::default();
        for m in [40, 7, 90, 41] {
            let (at, member) = members[m];
            let point = Point {
                at,
                member,
                out: member + 123,
            };
            let expected = newlines(&text.as_bytes()[..(member + 123) as usize]);
            assert_eq!(
                lines_before(&file, point, options).unwrap(),
                expected,
                "{m}"
            );
        }
    }
}
