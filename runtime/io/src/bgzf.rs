//! Splitting BGZF files (bgzip's gzip: every member carries its own size in a `BC` extra
//! field and holds at most 64 KiB of text) into shards at member boundaries.
//!
//! A plain gzip stream cannot be cut: where a member ends is known only by inflating it. In a
//! BGZF file the members can be walked from their headers alone, so the planner finds the
//! member boundaries nearest each cut target (by compressed size) with two small reads per
//! member, without inflating. The keys of text records are `path:line`, so every shard must
//! know how many lines come before it: the groups of members between cuts are then inflated in
//! parallel (one thread per core) to count their newlines and find each cut's first line start.
//! Each shard owns the lines that start in its decompressed range; it starts reading at the
//! member holding its first line start and, like a plain byte range, reads on past its last
//! member into the next ones to finish its last line. Records, keys and the order within the
//! file are therefore those of a one-shard read, for any shard count.
//!
//! Anything that does not walk cleanly (a member without `BC`, sizes that do not land exactly
//! on the file's end, an object in object storage, whose headers would cost a request each)
//! stays one shard, read by the ordinary decoder, which reports its damage; a group that fails
//! to inflate fails the planning with the decoder's message (file, compressed and
//! decompressed byte).

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::compress::{Compression, decoder};
use crate::reader::{Planned, ReadOptions, SharedCount};
use crate::{FileRange, InputError, InputFile, MemberRange, Shard};

/// The fixed gzip header before the extra field, and the trailer (CRC-32, ISIZE).
const HEADER: usize = 12;
const TRAILER: u64 = 8;

/// Most text one BGZF member holds (bgzip's block: a member, headers included, fits 64 KiB).
pub const MEMBER_TEXT_BYTES: usize = 65_280;

/// `text` (at most [`MEMBER_TEXT_BYTES`]) as one BGZF member, what `bgzip` writes: a gzip member
/// whose `BC` extra field gives its size. An empty `text` is the end-of-file member. mr reads
/// BGZF and never writes it; this is for tests and `mr-bench`, which need such files.
pub fn encode_member(text: &[u8], level: flate2::Compression) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), level);
    e.write_all(text)?;
    let deflated = e.finish()?;
    let mut crc = flate2::Crc::new();
    crc.update(text);
    let size = 18 + deflated.len() + 8;
    let bsize = u16::try_from(size - 1).map_err(|_| {
        std::io::Error::other(format!(
            "{} bytes of text do not fit one BGZF member",
            text.len()
        ))
    })?;
    let mut member = Vec::with_capacity(size);
    member.extend([
        0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 6, 0, b'B', b'C', 2, 0,
    ]);
    member.extend(bsize.to_le_bytes());
    member.extend(&deflated);
    member.extend(crc.sum().to_le_bytes());
    member.extend((text.len() as u32).to_le_bytes());
    Ok(member)
}

/// A BGZF member's total size (`BSIZE + 1`) from its header bytes (at least the fixed header
/// and the extra field), or `None` when it is not a BGZF member header.
pub(crate) fn block_size(head: &[u8]) -> Option<u64> {
    if head.len() < HEADER || head[..3] != [0x1f, 0x8b, 8] || head[3] & 4 == 0 {
        return None;
    }
    let xlen = usize::from(u16::from_le_bytes([head[10], head[11]]));
    let extra = head.get(HEADER..HEADER + xlen)?;
    let mut i = 0;
    while i + 4 <= extra.len() {
        let len = usize::from(u16::from_le_bytes([extra[i + 2], extra[i + 3]]));
        if extra[i..i + 2] == *b"BC" && len == 2 {
            let size = u64::from(u16::from_le_bytes([*extra.get(i + 4)?, *extra.get(i + 5)?])) + 1;
            // A member holds its header, some deflate data and the trailer.
            return (size >= (HEADER + xlen) as u64 + TRAILER).then_some(size);
        }
        i += 4 + len;
    }
    None
}

/// One group of members (from one cut to the next), inflated at planning.
#[derive(Debug, Default, Clone, Copy)]
struct Group {
    /// Compressed offset of its first member, and decompressed offset (from the members'
    /// ISIZE fields; the decoder checks each against what it inflated).
    at: u64,
    out_at: u64,
    /// Decompressed bytes, newlines, the offset of the first newline, the last byte.
    out: u64,
    newlines: u64,
    first_newline: Option<u64>,
    last: Option<u8>,
}

/// The shards of a BGZF line file `files[index]`, at most `shards`; `None` when it is not a
/// BGZF file (or one that cannot be split: see the module documentation).
pub(crate) fn plan(
    files: &[InputFile],
    index: usize,
    shards: u32,
) -> Result<Option<Vec<Shard>>, InputError> {
    let file = &files[index];
    if shards < 2 || file.object().is_some() || file.codec() != Compression::Gzip {
        return Ok(None);
    }
    let Some(mut groups) = walk(file, u64::from(shards))? else {
        return Ok(None);
    };
    if groups.len() < 2 {
        return Ok(None);
    }
    inflate_groups(file, &mut groups)?;
    // The decoder checked each member's size field against what it inflated; a group's total
    // must then match where the next group's members said it starts.
    for w in groups.windows(2) {
        if w[0].out_at + w[0].out != w[1].out_at {
            return Err(InputError::Corrupt {
                path: file.display.clone(),
                message: format!(
                    "the BGZF members at compressed byte {} inflate to {} bytes, not the {} their size fields give",
                    w[0].at,
                    w[0].out,
                    w[1].out_at - w[0].out_at
                ),
            });
        }
    }
    Ok(Some(shards_of(index, file.len, &groups)))
}

/// Walks the member headers, returning the groups that start at the first member at or past
/// each cut target (`len * k / shards`), with their compressed and decompressed offsets.
fn walk(file: &InputFile, shards: u64) -> Result<Option<Vec<Group>>, InputError> {
    let io = |at: u64| {
        move |source| InputError::Io {
            path: file.display.clone(),
            offset: Some(at),
            source,
        }
    };
    let f = std::fs::File::open(&file.path).map_err(io(0))?;
    let len = file.len;
    let mut groups = vec![Group::default()];
    let (mut at, mut out_at) = (0u64, 0u64);
    let mut target = 1u64;
    let mut head = vec![0u8; 64];
    while at < len {
        while target < shards && at >= len * target / shards {
            if groups.last().is_some_and(|g| g.at != at) {
                groups.push(Group {
                    at,
                    out_at,
                    ..Group::default()
                });
            }
            target += 1;
        }
        let n = read_at(&f, &mut head[..64], at).map_err(io(at))?;
        let xlen = if n >= HEADER {
            usize::from(u16::from_le_bytes([head[10], head[11]]))
        } else {
            return Ok(None);
        };
        if HEADER + xlen > n {
            head.resize(HEADER + xlen, 0);
            if read_at(&f, &mut head, at).map_err(io(at))? < HEADER + xlen {
                return Ok(None);
            }
        }
        let Some(size) = block_size(&head) else {
            return Ok(None);
        };
        if at + size > len {
            return Ok(None);
        }
        let mut isize = [0u8; 4];
        f.read_exact_at(&mut isize, at + size - 4).map_err(io(at))?;
        out_at += u64::from(u32::from_le_bytes(isize));
        at += size;
    }
    Ok(Some(groups))
}

/// Reads up to `buf.len()` bytes at `at` (fewer only at the end of the file).
fn read_at(f: &std::fs::File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], at + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Inflates every group (in parallel, one thread per core) to count its lines, with the reading
/// path's decoder: its CRC and size checks, its ratio cap and its messages.
fn inflate_groups(file: &InputFile, groups: &mut [Group]) -> Result<(), InputError> {
    let ends: Vec<u64> = groups
        .iter()
        .skip(1)
        .map(|g| g.at)
        .chain([file.len])
        .collect();
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(2, usize::from)
        .min(groups.len());
    let results: Vec<Vec<(usize, Result<Group, InputError>)>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= groups.len() {
                            return done;
                        }
                        let result = count_group(file, groups[i], ends[i]);
                        let failed = result.is_err();
                        done.push((i, result));
                        if failed {
                            // Stop the others early: the planning fails anyway.
                            next.store(groups.len(), Ordering::Relaxed);
                            return done;
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a counting thread panicked"))
            .collect()
    });
    let mut first_error: Option<(usize, InputError)> = None;
    for (i, result) in results.into_iter().flatten() {
        match result {
            Ok(g) => groups[i] = g,
            Err(e) => {
                if first_error.as_ref().is_none_or(|(j, _)| i < *j) {
                    first_error = Some((i, e));
                }
            }
        }
    }
    match first_error {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

/// Inflates the members `group.at..end`, counting newlines.
fn count_group(file: &InputFile, mut group: Group, end: u64) -> Result<Group, InputError> {
    let f = crate::source::open_range(file, group.at, end)?;
    let planned = Planned {
        file: file.clone(),
        end,
    };
    let mut stream = decoder(
        f,
        SharedCount::default(),
        planned,
        Compression::Gzip,
        ReadOptions::default(),
        (group.at, group.out_at),
    );
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => {
                // The message has the compressed and decompressed offsets.
                return Err(InputError::Io {
                    path: file.display.clone(),
                    offset: None,
                    source,
                });
            }
        };
        let chunk = &buf[..n];
        if group.first_newline.is_none()
            && let Some(i) = memchr::memchr(b'\n', chunk)
        {
            group.first_newline = Some(group.out + i as u64);
        }
        group.newlines += memchr::memchr_iter(b'\n', chunk).count() as u64;
        group.last = Some(chunk[n - 1]);
        group.out += n as u64;
    }
    Ok(group)
}

/// The shards of the counted groups: each cut moves to the first line start at or after it
/// (possibly in a later group, for a line longer than a group), and a cut that moves onto the
/// next one leaves an empty shard, which is dropped.
fn shards_of(index: usize, len: u64, groups: &[Group]) -> Vec<Shard> {
    let total = groups.iter().map(|g| g.out).sum::<u64>();
    let mut newlines_before = Vec::with_capacity(groups.len());
    let mut n = 0;
    for g in groups {
        newlines_before.push(n);
        n += g.newlines;
    }
    // Each cut: (group it starts reading at, decompressed offset of its first line start,
    // that line's number).
    let mut cuts: Vec<(usize, u64, u64)> = vec![(0, 0, 1)];
    for i in 1..groups.len() {
        let before = groups[..i].iter().rev().find_map(|g| g.last);
        let cut = if before.is_none_or(|b| b == b'\n') {
            (i, groups[i].out_at, newlines_before[i] + 1)
        } else {
            match (i..groups.len()).find_map(|h| groups[h].first_newline.map(|o| (h, o))) {
                Some((h, o)) => (h, groups[h].out_at + o + 1, newlines_before[h] + 2),
                None => (groups.len(), total, n + 1),
            }
        };
        cuts.push(cut);
    }
    cuts.push((groups.len(), total, n + 1));
    let mut shards = Vec::new();
    for w in cuts.windows(2) {
        let ((g, start, line), (next, end, _)) = (w[0], w[1]);
        if start >= end {
            continue;
        }
        let compressed_end = groups.get(next).map_or(len, |n| n.at);
        shards.push(Shard {
            index: 0,
            ranges: vec![FileRange {
                file: index,
                start: groups[g].at,
                end: compressed_end.max(groups[g].at),
                first_line: line,
                relative: false,
                keys: None,
                members: Some(MemberRange {
                    member: groups[g].out_at,
                    start,
                    end,
                    last: end == total,
                }),
            }],
        });
    }
    shards
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{bgzf, gz, input, read_error, read_resumed};

    /// Lines of varied lengths: short ones, CRLF ones, empty ones, one longer than several
    /// members, and a last line without a newline.
    fn text() -> Vec<u8> {
        let mut t = Vec::new();
        for i in 0..3000u32 {
            match i % 97 {
                0 => t.extend(b"\n"),
                1 => t.extend(format!("crlf {i}\r\n").as_bytes()),
                2 if i == 1941 => {
                    t.extend(std::iter::repeat_n(b'L', 5000));
                    t.push(b'\n');
                }
                _ => t.extend(format!("line {i} {}\n", "w ".repeat((i % 13) as usize)).as_bytes()),
            }
        }
        t.extend(b"no newline at the end");
        t
    }

    /// Records with their file name dropped from the key (`line`, value).
    fn lines(records: Vec<(String, String)>) -> Vec<(String, String)> {
        records
            .into_iter()
            .map(|(k, v)| (k.rsplit(':').next().unwrap().to_owned(), v))
            .collect()
    }

    #[test]
    fn block_sizes_come_from_the_bc_field_only() {
        let one = bgzf(b"abc\n", 100);
        let size = block_size(&one[..18]).unwrap() as usize;
        assert_eq!(one[size..].len(), 28, "then the empty end-of-file member");
        assert_eq!(block_size(&one[size..size + 18]), Some(28));
        // A plain gzip member has no extra field.
        assert_eq!(block_size(&gz(b"abc\n")), None);
        assert_eq!(block_size(&one[..11]), None);
    }

    #[test]
    fn any_shard_count_reads_the_records_of_one_shard_and_of_the_text() {
        let dir = tempfile::tempdir().unwrap();
        let text = text();
        for (name, plain) in [("b.txt.gz", "p.txt"), ("b.jsonl.gz", "p.jsonl")] {
            let text = if name.contains("jsonl") {
                // JSONL: every non-blank line a JSON string (CRLF kept).
                String::from_utf8(text.clone())
                    .unwrap()
                    .split('\n')
                    .map(|l| match l.strip_suffix('\r') {
                        Some(l) => format!("\"{l}\"\r"),
                        None if l.is_empty() => String::new(),
                        None => format!("\"{l}\""),
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
                    .into_bytes()
            } else {
                text.clone()
            };
            let packed = bgzf(&text, 997);
            let files = [
                input(dir.path(), name, &packed),
                input(dir.path(), plain, &text),
            ];
            let whole = crate::plan(&files[1..], 1).unwrap();
            let (expected, _) =
                read_resumed(&files[1..], &whole, u64::MAX, ReadOptions::default()).unwrap();
            let expected = lines(expected);
            assert!(expected.len() > 2900);
            for n in [1, 2, 3, 4, 7, 16, 64, 400] {
                let plan = crate::plan(&files[..1], n).unwrap();
                assert!(plan.len() <= n as usize);
                if n > 1 {
                    assert!(plan.len() > 1, "{n}: {plan:?}");
                    assert!(plan.iter().all(|s| s.ranges[0].members.is_some()));
                }
                // A slice of one record reopens the shard at every record: a few counts only.
                let slices: &[u64] = if n == 1 || n == 7 {
                    &[1, 37, u64::MAX]
                } else {
                    &[37, u64::MAX]
                };
                for &k in slices {
                    let (got, _) =
                        read_resumed(&files[..1], &plan, k, ReadOptions::default()).unwrap();
                    assert!(got.iter().all(|(key, _)| key.starts_with(name)));
                    assert_eq!(lines(got), expected, "{name}: {n} shards, {k} per slice");
                }
            }
        }
    }

    #[test]
    fn gzip_that_is_not_bgzf_stays_one_shard() {
        let dir = tempfile::tempdir().unwrap();
        let text = text();
        // Concatenated plain members, and BGZF with a plain member appended.
        let mut multi = gz(&text[..5000]);
        multi.extend(gz(&text[5000..]));
        let mut mixed = bgzf(&text[..5000], 1000);
        mixed.extend(gz(&text[5000..]));
        for (name, data) in [("m.gz", multi), ("x.gz", mixed)] {
            let files = vec![input(dir.path(), name, &data)];
            let plan = crate::plan(&files, 4).unwrap();
            assert_eq!(plan.len(), 1, "{name}");
            assert_eq!(plan[0].ranges[0].members, None);
            let (got, _) = read_resumed(&files, &plan, 100, ReadOptions::default()).unwrap();
            // Every line, the last one without its newline too.
            assert_eq!(got.len(), 3001, "{name}");
        }
    }

    #[test]
    fn a_corrupt_member_fails_naming_the_file_and_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        let text = text();
        let good = bgzf(&text, 997);
        // The deflate data of a member in the middle of the file.
        let mut at = 0;
        let mut members = Vec::new();
        while at < good.len() {
            members.push(at);
            at += block_size(&good[at..at + 18]).unwrap() as usize;
        }
        let victim = members[members.len() / 2];
        let mut bad = good.clone();
        for b in &mut bad[victim + 20..victim + 40] {
            *b ^= 0x55;
        }
        // Found at planning: the planner inflates every member to count lines.
        let files = vec![input(dir.path(), "c.txt.gz", &bad)];
        let e = crate::plan(&files, 4).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "cannot read c.txt.gz: corrupt or truncated gzip data at compressed byte"
            ),
            "{e}"
        );
        // Damaged after planning (same size): the shard reading that member fails.
        let files = vec![input(dir.path(), "c.txt.gz", &good)];
        let plan = crate::plan(&files, 4).unwrap();
        std::fs::write(&files[0].path, &bad).unwrap();
        let e = read_error(&files, &plan, ReadOptions::default());
        let at: u64 = e
            .split("at compressed byte ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{e}"));
        assert!(e.starts_with("cannot read c.txt.gz at byte "), "{e}");
        // The offset is in the file, at or past the damaged member's start.
        assert!(at <= (victim + 1100) as u64, "{e} (member at {victim})");
    }

    #[test]
    fn a_truncated_file_fails() {
        let dir = tempfile::tempdir().unwrap();
        let text = text();
        let good = bgzf(&text, 997);
        // Cut inside a member: not walkable, so one shard, whose decoder reports it.
        let cut = &good[..good.len() / 2];
        let files = vec![input(dir.path(), "t.txt.gz", cut)];
        let plan = crate::plan(&files, 4).unwrap();
        assert_eq!(plan.len(), 1);
        let e = read_error(&files, &plan, ReadOptions::default());
        assert!(
            e.contains("t.txt.gz") && e.contains("compressed byte"),
            "{e}"
        );
        // Cut after planning: the shards refuse the changed file.
        let files = vec![input(dir.path(), "t.txt.gz", &good)];
        let plan = crate::plan(&files, 4).unwrap();
        assert_eq!(plan.len(), 4);
        std::fs::write(&files[0].path, cut).unwrap();
        let e = read_error(&files, &plan, ReadOptions::default());
        assert!(
            e.contains("t.txt.gz") && e.contains("the file changed since the job was planned"),
            "{e}"
        );
    }

    #[test]
    fn a_cursor_outside_the_shard_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![input(dir.path(), "r.txt.gz", &bgzf(&text(), 997))];
        let plan = crate::plan(&files, 3).unwrap();
        let e = crate::ShardReader::open(&files, &plan[1], "0:5:1", ReadOptions::default())
            .and_then(|mut r| r.next_batch(&mut Vec::new(), u64::MAX, 1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("malformed cursor"), "{e}");
    }
}

#[cfg(test)]
mod timing {
    /// What planning a BGZF file costs: the header walk, and the inflation of its groups (all
    /// threads, then one group on one thread).
    /// `MR_BGZF=FILE cargo test --release -p mr-io bgzf_plan_time -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn bgzf_plan_time() {
        let path = std::path::PathBuf::from(std::env::var("MR_BGZF").unwrap());
        let len = std::fs::metadata(&path).unwrap().len();
        let file = crate::InputFile {
            display: path.display().to_string(),
            path,
            len,
            format: crate::Format::Lines,
            gzip: true,
            compression: crate::Compression::Gzip,
        };
        let t = std::time::Instant::now();
        let groups = super::walk(&file, 8).unwrap().unwrap();
        eprintln!("walk: {:?}, {} groups", t.elapsed(), groups.len());
        let mut g = groups.clone();
        let t = std::time::Instant::now();
        super::inflate_groups(&file, &mut g).unwrap();
        eprintln!("inflate: {:?}", t.elapsed());
        let t = std::time::Instant::now();
        let one = super::count_group(&file, groups[0], groups[1].at).unwrap();
        eprintln!(
            "one group of {} bytes, one thread: {:?}",
            one.out,
            t.elapsed()
        );
    }
}
