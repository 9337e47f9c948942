//! Splitting BGZF files (bgzip's gzip: every member carries its own size in a `BC` extra
//! field and holds at most 64 KiB of text) into shards at member boundaries.
//!
//! A plain gzip stream cannot be cut: where a member ends is known only by inflating it. In a
//! BGZF file the members can be walked from their headers alone, so the planner finds the
//! member nearest each cut target (by compressed size) with two small reads per member, and
//! inflates only a member or two there to find the first line start at or after it (the member
//! before, to see whether it ends a line, then members until one holds a newline). Nothing else
//! is inflated at planning: a shard that does not start the file numbers its lines from its
//! first line ([`crate::FileRange::relative`]), and the lines before it are counted only when a
//! location needs them (see [`crate::linecount`]). Each shard owns the lines that start in its
//! decompressed range; it starts reading at the member holding its first line start and, like
//! a plain byte range, reads on past its last member into the next ones to finish its last
//! line (and one byte further, so the decoder checks the CRC-32 of a member that ends exactly
//! at its end: see `ahead.rs`). Records, locations and the order within the file are therefore
//! those of a one-shard read, for any shard count.
//!
//! Anything that does not walk cleanly (a member without `BC`, sizes that do not land exactly
//! on the file's end, an object in object storage, whose headers would cost a request each)
//! stays one shard, read by the ordinary decoder, which reports its damage; a member that fails
//! to inflate while planning fails the planning with the decoder's message (file, compressed
//! and decompressed byte), and any other damaged member fails the shard that reads it.

use std::io::Read;
use std::os::unix::fs::FileExt;

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

/// One member: its compressed offset and the decompressed offset of its first byte (from the
/// size fields of the members before it; the decoder checks each against what it inflates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Member {
    at: u64,
    out: u64,
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
    let Some(members) = walk(file)? else {
        return Ok(None);
    };
    // The members, then where the file ends (compressed and decompressed).
    let total = members.last().map_or(0, |m| m.out);
    let real = members.len() - 1;
    let shards = u64::from(shards);
    // Each shard starts at the first line start at or after the first member at or past its
    // compressed target; (member it reads from, decompressed offset of its first line).
    let mut cuts: Vec<(usize, u64)> = vec![(0, 0)];
    for k in 1..shards {
        let target = file.len * k / shards;
        let m = members[..real].partition_point(|m| m.at < target);
        if m == 0 || m >= real {
            continue;
        }
        // A line that started before an earlier cut and runs past this member took it.
        if cuts
            .last()
            .is_some_and(|&(_, start)| start >= members[m].out)
        {
            continue;
        }
        match line_start_from(file, &members, m)? {
            Some(cut) => cuts.push(cut),
            // No line starts past here: the rest belongs to the shard before.
            None => break,
        }
    }
    cuts.push((real, total));
    let mut out = Vec::new();
    for w in cuts.windows(2) {
        let ((m, start), (next, end)) = (w[0], w[1]);
        if start >= end {
            continue;
        }
        out.push(Shard {
            index: 0,
            ranges: vec![FileRange {
                file: index,
                start: members[m].at,
                end: members[next].at,
                // Lines from the shard's first line: the lines before it are counted only if
                // a location needs them (inflating the members before it, see linecount.rs).
                first_line: 1,
                relative: start > 0,
                keys: None,
                members: Some(MemberRange {
                    member: members[m].out,
                    start,
                    end,
                    last: end == total,
                }),
            }],
        });
    }
    if out.len() < 2 {
        return Ok(None);
    }
    Ok(Some(out))
}

/// The first line start at or after member `m`'s first byte, as (the member to read it from,
/// its decompressed offset); `None` when no line starts there or later. Inflates the last
/// non-empty member before `m` (is its last byte a newline?), then members from `m` on until
/// one holds a newline: a member or two for lines shorter than a member.
fn line_start_from(
    file: &InputFile,
    members: &[Member],
    m: usize,
) -> Result<Option<(usize, u64)>, InputError> {
    let real = members.len() - 1;
    if let Some(k) = (0..m).rev().find(|&k| members[k + 1].out > members[k].out) {
        let text = inflate(file, members, k)?;
        if text.last() == Some(&b'\n') {
            return Ok(Some((m, members[m].out)));
        }
    } else {
        // Only empty members before: the file's first line starts here.
        return Ok(Some((m, members[m].out)));
    }
    for j in m..real {
        if members[j + 1].out == members[j].out {
            continue;
        }
        let text = inflate(file, members, j)?;
        if let Some(i) = memchr::memchr(b'\n', &text) {
            let start = members[j].out + i as u64 + 1;
            if start == members[real].out {
                return Ok(None);
            }
            // A line that starts where the next member does is read from there.
            let from = if start == members[j + 1].out {
                j + 1
            } else {
                j
            };
            return Ok(Some((from, start)));
        }
    }
    Ok(None)
}

/// Member `j` inflated alone, with the reading path's decoder: its CRC and size checks, its
/// messages (file, compressed and decompressed byte).
fn inflate(file: &InputFile, members: &[Member], j: usize) -> Result<Vec<u8>, InputError> {
    let (at, end) = (members[j].at, members[j + 1].at);
    let f = crate::source::open_range(file, at, end)?;
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
        (at, members[j].out),
    );
    let mut text = Vec::with_capacity(MEMBER_TEXT_BYTES);
    stream
        .read_to_end(&mut text)
        .map_err(|source| InputError::Io {
            path: file.display.clone(),
            offset: None,
            source,
        })?;
    Ok(text)
}

/// Walks the member headers (two small reads per member, no inflating): every member's
/// compressed and decompressed offsets, then the file's end; `None` when the file is not BGZF
/// all through.
fn walk(file: &InputFile) -> Result<Option<Vec<Member>>, InputError> {
    let io = |at: u64| {
        move |source| InputError::Io {
            path: file.display.clone(),
            offset: Some(at),
            source,
        }
    };
    let f = std::fs::File::open(&file.path).map_err(io(0))?;
    let len = file.len;
    let mut members = Vec::new();
    let (mut at, mut out_at) = (0u64, 0u64);
    let mut head = vec![0u8; 64];
    while at < len {
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
        members.push(Member { at, out: out_at });
        out_at += u64::from(u32::from_le_bytes(isize));
        at += size;
    }
    members.push(Member { at, out: out_at });
    Ok(Some(members))
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

    /// The compressed offsets of the members of `packed`.
    fn member_offsets(packed: &[u8]) -> Vec<usize> {
        let mut at = 0;
        let mut members = Vec::new();
        while at < packed.len() {
            members.push(at);
            at += block_size(&packed[at..at + 18]).unwrap() as usize;
        }
        members
    }

    #[test]
    fn cuts_are_line_starts_found_near_the_targets() {
        let dir = tempfile::tempdir().unwrap();
        let text = text();
        let packed = bgzf(&text, 997);
        let offsets = member_offsets(&packed);
        let files = vec![input(dir.path(), "k.txt.gz", &packed)];
        for n in [2, 3, 5, 16] {
            let plan = crate::plan(&files, n).unwrap();
            let mut next = 0;
            for (i, shard) in plan.iter().enumerate() {
                let r = &shard.ranges[0];
                let m = r.members.unwrap();
                // Shards follow each other, each starting at a line start, read from the
                // member holding it; only the first counts its lines from the file's start.
                assert_eq!(m.start, next, "{n}: {plan:?}");
                assert!(m.start == 0 || text[m.start as usize - 1] == b'\n');
                assert!(m.member <= m.start && m.start - m.member < 997);
                assert_eq!(r.start as usize, offsets[(m.member / 997) as usize]);
                assert_eq!(r.relative, i > 0);
                assert_eq!(r.first_line, 1);
                next = m.end;
            }
            assert_eq!(next, text.len() as u64);
        }
    }

    #[test]
    fn a_corrupt_member_fails_naming_the_file_and_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        let text = text();
        let good = bgzf(&text, 997);
        let members = member_offsets(&good);
        let damage = |victim: usize| {
            let mut bad = good.clone();
            for b in &mut bad[victim + 20..victim + 40] {
                *b ^= 0x55;
            }
            bad
        };
        // The member before a cut target is inflated at planning (does it end a line?): its
        // damage fails the planning.
        let target = members.partition_point(|&at| at < good.len() / 4);
        let files = vec![input(dir.path(), "c.txt.gz", &damage(members[target - 1]))];
        let e = crate::plan(&files, 4).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "cannot read c.txt.gz: corrupt or truncated gzip data at compressed byte"
            ),
            "{e}"
        );
        // Planning inflates nothing else: a member damaged away from the cuts fails the shard
        // reading it, naming the file and offset.
        let victim = members[members.len() * 3 / 8];
        let files = vec![input(dir.path(), "c.txt.gz", &damage(victim))];
        let plan = crate::plan(&files, 4).unwrap();
        let e = read_error(&files, &plan, ReadOptions::default());
        assert!(e.starts_with("cannot read c.txt.gz at byte "), "{e}");
        assert!(
            e.contains("corrupt or truncated gzip data at compressed byte"),
            "{e}"
        );
        // Damaged after planning (same size): the shard reading that member fails.
        let victim = members[members.len() / 2];
        let files = vec![input(dir.path(), "c.txt.gz", &good)];
        let plan = crate::plan(&files, 4).unwrap();
        std::fs::write(&files[0].path, damage(victim)).unwrap();
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
    fn a_shard_ending_where_a_member_ends_checks_that_members_crc() {
        let dir = tempfile::tempdir().unwrap();
        // Lines of exactly a member's text: every member ends a line, so every cut is at a
        // member boundary and the member before it is read by the shard before only.
        let text: Vec<u8> = (0..200)
            .flat_map(|i| {
                let mut l = format!("{i:05} ").into_bytes();
                l.resize(499, b'x');
                l.push(b'\n');
                l
            })
            .collect();
        let good = bgzf(&text, 500);
        let files = vec![input(dir.path(), "e.txt.gz", &good)];
        let plan = crate::plan(&files, 2).unwrap();
        assert_eq!(plan.len(), 2);
        let second = &plan[1].ranges[0];
        assert_eq!(
            second.members.unwrap().member,
            second.members.unwrap().start
        );
        // The CRC-32 of the member that ends the first shard, damaged after planning.
        let members = member_offsets(&good);
        let i = members
            .iter()
            .position(|&at| at as u64 == second.start)
            .unwrap();
        let crc = members[i] - 8;
        let mut bad = good.clone();
        bad[crc] ^= 0xff;
        std::fs::write(&files[0].path, &bad).unwrap();
        // The second shard reads cleanly (as long as no location needs the lines before it
        // counted: that would inflate the damaged member too); the first fails.
        let mut reader =
            crate::ShardReader::open(&files, &plan[1], "", ReadOptions::default()).unwrap();
        let mut locations = mr_codec::Locations::default();
        let stats = reader
            .next_batch_located(&mut Vec::new(), &mut locations, u64::MAX, u64::MAX)
            .unwrap();
        assert!(stats.records > 50, "{stats:?}");
        let e = read_error(&files, &plan[..1], ReadOptions::default());
        assert!(e.starts_with("cannot read e.txt.gz at byte "), "{e}");
        let at: usize = e
            .split("corrupt or truncated gzip data at compressed byte ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{e}"));
        assert!(members[i - 1] < at && at <= members[i] + 18, "{e}");
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
    /// What planning a BGZF file costs: the header walk, and finding a line start near each cut.
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
        let members = super::walk(&file).unwrap().unwrap();
        eprintln!("walk: {:?}, {} members", t.elapsed(), members.len());
        let t = std::time::Instant::now();
        let shards = super::plan(std::slice::from_ref(&file), 0, 8)
            .unwrap()
            .unwrap();
        eprintln!("plan: {:?}, {} shards", t.elapsed(), shards.len());
    }
}
