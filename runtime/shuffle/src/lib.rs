//! `mr-shuffle`: moving map output to reducers.
//!
//! - [`partition_of`]: a stable hash (XXH3-64, fixed by its specification, so the same key lands
//!   in the same partition on every machine and release) mapped onto `R` partitions.
//! - [`SortBuffer`]: one partition's map output in one flat buffer plus an index; sorts by key
//!   bytes, stably, so equal keys keep input order.
//! - Run files ([`RunWriter`], [`RunReader`]): sorted runs on disk in checksummed blocks; a
//!   corrupt or truncated run is reported with its file and block offset, never merged.
//! - [`Merger`]: k-way merge of runs with a heap; ties between runs are broken by run order, so
//!   when runs are numbered in input order, each key's values come out in input order.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::xxh3_64;

/// Shuffle errors, naming the run file and where in it.
#[derive(Debug, thiserror::Error)]
pub enum ShuffleError {
    /// Reading or writing a run failed.
    #[error("run file {path}: {source}")]
    Io {
        /// The run file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A block's checksum or framing is wrong.
    #[error("run file {path} is corrupt at byte {offset}: {what}")]
    Corrupt {
        /// The run file.
        path: PathBuf,
        /// Offset of the bad block.
        offset: u64,
        /// What is wrong.
        what: String,
    },
}

/// The partition (0..partitions) of a key.
#[inline]
pub fn partition_of(key: &[u8], partitions: u32) -> u32 {
    // Multiply-shift maps the 64-bit hash onto the range without the bias of `%`.
    ((u128::from(xxh3_64(key)) * u128::from(partitions)) >> 64) as u32
}

/// One partition's buffered map output.
#[derive(Default)]
pub struct SortBuffer {
    data: Vec<u8>,
    /// (first 8 key bytes big-endian, offset of the entry in `data`).
    index: Vec<(u64, u32)>,
}

#[inline]
fn prefix(key: &[u8]) -> u64 {
    let mut p = [0u8; 8];
    let n = key.len().min(8);
    p[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(p)
}

#[inline]
fn entry_at(data: &[u8], offset: u32) -> (&[u8], &[u8]) {
    let mut c = mr_codec::Cursor::new(&data[offset as usize..]);
    let k = c.bytes("key").expect("buffer written by SortBuffer::push");
    let v = c
        .bytes("value")
        .expect("buffer written by SortBuffer::push");
    (k, v)
}

impl SortBuffer {
    /// Appends one pair.
    #[inline]
    pub fn push(&mut self, key: &[u8], value: &[u8]) {
        let offset = u32::try_from(self.data.len()).expect("sort buffers stay below 4 GiB");
        self.index.push((prefix(key), offset));
        mr_codec::put_kv(&mut self.data, key, value);
    }

    /// Bytes held (data and index).
    pub fn memory(&self) -> usize {
        self.data.len() + self.index.len() * 16
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Sorts by key (stable), then returns the pairs in order.
    pub fn sorted(&mut self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let data = &self.data;
        self.index.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| entry_at(data, a.1).0.cmp(entry_at(data, b.1).0))
        });
        self.index.iter().map(move |&(_, off)| entry_at(data, off))
    }

    /// Empties the buffer, keeping its capacity.
    pub fn clear(&mut self) {
        self.data.clear();
        self.index.clear();
    }
}

/// Target payload size of a run block.
const BLOCK_BYTES: usize = 64 * 1024;
/// Block header: payload length (u32) and XXH3-64 of the payload.
const BLOCK_HEADER: usize = 12;

/// Writes a sorted run: blocks of kv entries, each with its length and checksum.
pub struct RunWriter {
    path: PathBuf,
    out: BufWriter<File>,
    block: Vec<u8>,
    records: u64,
    bytes: u64,
    /// XXH3 over the block headers (each holding its block's checksum): a checksum of the whole
    /// file for the job store, at the cost of hashing 12 bytes per 64 KiB block.
    file_hash: xxhash_rust::xxh3::Xxh3,
}

/// What a finished run file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunStats {
    /// Records.
    pub records: u64,
    /// File size in bytes.
    pub bytes: u64,
    /// Checksum of the file (over its block checksums).
    pub checksum: u64,
}

impl RunWriter {
    /// Creates (truncates) the run file.
    pub fn create(path: &Path) -> Result<Self, ShuffleError> {
        let file = File::create(path).map_err(|source| ShuffleError::Io {
            path: path.to_owned(),
            source,
        })?;
        Ok(RunWriter {
            path: path.to_owned(),
            out: BufWriter::with_capacity(256 * 1024, file),
            block: Vec::with_capacity(BLOCK_BYTES + 1024),
            records: 0,
            bytes: 0,
            file_hash: xxhash_rust::xxh3::Xxh3::new(),
        })
    }

    /// Appends a pair; pairs must come in key order.
    #[inline]
    pub fn push(&mut self, key: &[u8], value: &[u8]) -> Result<(), ShuffleError> {
        mr_codec::put_kv(&mut self.block, key, value);
        self.records += 1;
        if self.block.len() >= BLOCK_BYTES {
            self.flush_block()?;
        }
        Ok(())
    }

    fn flush_block(&mut self) -> Result<(), ShuffleError> {
        if self.block.is_empty() {
            return Ok(());
        }
        let len = u32::try_from(self.block.len()).expect("blocks are small");
        let mut header = [0u8; BLOCK_HEADER];
        header[..4].copy_from_slice(&len.to_le_bytes());
        header[4..].copy_from_slice(&xxh3_64(&self.block).to_le_bytes());
        let io = |source| ShuffleError::Io {
            path: self.path.clone(),
            source,
        };
        self.file_hash.update(&header);
        self.out.write_all(&header).map_err(io)?;
        self.out.write_all(&self.block).map_err(io)?;
        self.bytes += (BLOCK_HEADER + self.block.len()) as u64;
        self.block.clear();
        Ok(())
    }

    /// Flushes the last block and, when `sync` is set, fsyncs the file.
    pub fn finish(mut self, sync: bool) -> Result<RunStats, ShuffleError> {
        self.flush_block()?;
        let path = self.path.clone();
        let io = |source| ShuffleError::Io {
            path: path.clone(),
            source,
        };
        let file = self.out.into_inner().map_err(|e| io(e.into_error()))?;
        if sync {
            file.sync_all().map_err(io)?;
        }
        Ok(RunStats {
            records: self.records,
            bytes: self.bytes,
            checksum: self.file_hash.digest(),
        })
    }
}

/// Reads a run written by [`RunWriter`], verifying every block.
pub struct RunReader {
    path: PathBuf,
    input: BufReader<File>,
    block: Vec<u8>,
    pos: usize,
    offset: u64,
    /// Current entry as ranges into `block`.
    current: Option<(usize, usize, usize, usize)>,
}

impl RunReader {
    /// Opens a run and positions it on its first entry.
    pub fn open(path: &Path) -> Result<Self, ShuffleError> {
        let file = File::open(path).map_err(|source| ShuffleError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut reader = RunReader {
            path: path.to_owned(),
            input: BufReader::with_capacity(BLOCK_BYTES + BLOCK_HEADER, file),
            block: Vec::new(),
            pos: 0,
            offset: 0,
            current: None,
        };
        reader.advance()?;
        Ok(reader)
    }

    /// The current entry, `None` at the end.
    #[inline]
    pub fn current(&self) -> Option<(&[u8], &[u8])> {
        self.current
            .map(|(ks, ke, vs, ve)| (&self.block[ks..ke], &self.block[vs..ve]))
    }

    /// Moves to the next entry.
    pub fn advance(&mut self) -> Result<(), ShuffleError> {
        if self.pos >= self.block.len() && !self.read_block()? {
            self.current = None;
            return Ok(());
        }
        let mut c = mr_codec::Cursor::new(&self.block[self.pos..]);
        let base = self.pos;
        let corrupt = |e: mr_codec::CodecError| ShuffleError::Corrupt {
            path: self.path.clone(),
            offset: self.offset,
            what: e.to_string(),
        };
        let k = c.bytes("a key").map_err(corrupt)?;
        let (ks, ke) = (base + 4, base + 4 + k.len());
        let v = c.bytes("a value").map_err(corrupt)?;
        let (vs, ve) = (ke + 4, ke + 4 + v.len());
        self.pos = base + c.position();
        self.current = Some((ks, ke, vs, ve));
        Ok(())
    }

    fn read_block(&mut self) -> Result<bool, ShuffleError> {
        if self.pos > 0 {
            self.offset += (BLOCK_HEADER + self.block.len()) as u64;
        }
        let mut header = [0u8; BLOCK_HEADER];
        let got = read_full(&mut self.input, &mut header).map_err(|source| ShuffleError::Io {
            path: self.path.clone(),
            source,
        })?;
        if got == 0 {
            return Ok(false);
        }
        let corrupt = |what: String| ShuffleError::Corrupt {
            path: self.path.clone(),
            offset: self.offset,
            what,
        };
        if got < BLOCK_HEADER {
            return Err(corrupt("truncated block header".into()));
        }
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let sum = u64::from_le_bytes(header[4..].try_into().expect("8 bytes"));
        if len == 0 || len > 64 * BLOCK_BYTES + (64 << 20) {
            return Err(corrupt(format!("implausible block length {len}")));
        }
        self.block.resize(len, 0);
        let got =
            read_full(&mut self.input, &mut self.block).map_err(|source| ShuffleError::Io {
                path: self.path.clone(),
                source,
            })?;
        if got < len {
            return Err(corrupt(format!("truncated block: {got} of {len} bytes")));
        }
        if xxh3_64(&self.block) != sum {
            return Err(corrupt("block checksum mismatch".into()));
        }
        self.pos = 0;
        Ok(true)
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Merges sorted runs into one sorted stream; equal keys come out in run order.
pub struct Merger {
    runs: Vec<RunReader>,
    /// Min-heap of indices into `runs` (only runs with a current entry).
    heap: Vec<usize>,
}

impl Merger {
    /// Opens the runs, which must be given in input order.
    pub fn open(paths: &[PathBuf]) -> Result<Self, ShuffleError> {
        let runs = paths
            .iter()
            .map(|p| RunReader::open(p))
            .collect::<Result<Vec<_>, _>>()?;
        let mut merger = Merger {
            heap: Vec::with_capacity(runs.len()),
            runs,
        };
        for i in 0..merger.runs.len() {
            if merger.runs[i].current().is_some() {
                merger.heap.push(i);
                let n = merger.heap.len() - 1;
                merger.sift_up(n);
            }
        }
        Ok(merger)
    }

    #[inline]
    fn less(&self, a: usize, b: usize) -> bool {
        let ka = self.runs[a].current().expect("heap runs have entries").0;
        let kb = self.runs[b].current().expect("heap runs have entries").0;
        ka < kb || (ka == kb && a < b)
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.less(self.heap[i], self.heap[parent]) {
                self.heap.swap(i, parent);
                i = parent;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut smallest = i;
            if l < self.heap.len() && self.less(self.heap[l], self.heap[smallest]) {
                smallest = l;
            }
            if r < self.heap.len() && self.less(self.heap[r], self.heap[smallest]) {
                smallest = r;
            }
            if smallest == i {
                return;
            }
            self.heap.swap(i, smallest);
            i = smallest;
        }
    }

    /// The smallest current entry, `None` when all runs are exhausted.
    #[inline]
    pub fn current(&self) -> Option<(&[u8], &[u8])> {
        self.heap.first().and_then(|&i| self.runs[i].current())
    }

    /// Moves past the current entry.
    pub fn advance(&mut self) -> Result<(), ShuffleError> {
        let Some(&top) = self.heap.first() else {
            return Ok(());
        };
        self.runs[top].advance()?;
        if self.runs[top].current().is_none() {
            let last = self.heap.pop().expect("non-empty");
            if !self.heap.is_empty() {
                self.heap[0] = last;
            }
        }
        if !self.heap.is_empty() {
            self.sift_down(0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitioning_is_stable_and_spread() {
        assert_eq!(partition_of(b"hello", 16), partition_of(b"hello", 16));
        let mut counts = [0u32; 8];
        for i in 0..80_000 {
            counts[partition_of(format!("key{i}").as_bytes(), 8) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
        // Pinned values: a change here would silently re-partition existing outputs.
        assert_eq!(
            partition_of(b"", 1000),
            (((xxh3_64(b"") as u128) * 1000) >> 64) as u32
        );
    }

    #[test]
    fn sort_is_stable_by_key_bytes() {
        let mut b = SortBuffer::default();
        for (k, v) in [
            ("b", "1"),
            ("a", "2"),
            ("abcdefghij", "3"),
            ("b", "4"),
            ("abcdefghi", "5"),
            ("", "6"),
        ] {
            b.push(k.as_bytes(), v.as_bytes());
        }
        let got: Vec<_> = b.sorted().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        let want: Vec<(Vec<u8>, Vec<u8>)> = [
            ("", "6"),
            ("a", "2"),
            ("abcdefghi", "5"),
            ("abcdefghij", "3"),
            ("b", "1"),
            ("b", "4"),
        ]
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
        assert_eq!(got, want);
    }

    fn write_run(path: &Path, pairs: &[(&str, &str)]) {
        let mut w = RunWriter::create(path).unwrap();
        for (k, v) in pairs {
            w.push(k.as_bytes(), v.as_bytes()).unwrap();
        }
        w.finish(false).unwrap();
    }

    #[test]
    fn merge_orders_keys_and_ties_by_run() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (0..3).map(|i| dir.path().join(format!("r{i}"))).collect();
        write_run(&paths[0], &[("a", "r0"), ("c", "r0")]);
        write_run(&paths[1], &[]);
        write_run(&paths[2], &[("a", "r2"), ("b", "r2"), ("c", "r2")]);
        let mut m = Merger::open(&paths).unwrap();
        let mut got = Vec::new();
        while let Some((k, v)) = m.current() {
            got.push(format!(
                "{}={}",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(v)
            ));
            m.advance().unwrap();
        }
        assert_eq!(got, ["a=r0", "a=r2", "b=r2", "c=r0", "c=r2"]);
    }

    #[test]
    fn large_runs_span_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let mut w = RunWriter::create(&path).unwrap();
        for i in 0..50_000u32 {
            w.push(format!("{i:08}").as_bytes(), &i.to_le_bytes())
                .unwrap();
        }
        assert_eq!(w.finish(true).unwrap().records, 50_000);
        let mut r = RunReader::open(&path).unwrap();
        let mut n = 0u32;
        while let Some((k, _)) = r.current() {
            assert_eq!(k, format!("{n:08}").as_bytes());
            n += 1;
            r.advance().unwrap();
        }
        assert_eq!(n, 50_000);
    }

    #[test]
    fn corruption_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run");
        let pairs: Vec<(String, String)> = (0..10_000)
            .map(|i| (format!("k{i:06}"), "v".repeat(10)))
            .collect();
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        write_run(&path, &refs);
        let mut bytes = std::fs::read(&path).unwrap();
        let len = bytes.len();
        bytes[len - 100] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let mut r = RunReader::open(&path).unwrap();
        let err = loop {
            match r.advance() {
                Ok(()) if r.current().is_none() => panic!("corruption not detected"),
                Ok(()) => {}
                Err(e) => break e,
            }
        };
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
        std::fs::write(&path, &bytes[..len / 2]).unwrap();
        let mut r = RunReader::open(&path).unwrap();
        let err = loop {
            match r.advance() {
                Ok(()) if r.current().is_none() => panic!("truncation not detected"),
                Ok(()) => {}
                Err(e) => break e,
            }
        };
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
