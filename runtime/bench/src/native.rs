//! The native reference: the two jobs in plain Rust, with `threads` threads, as a competent
//! hand-written program would do them (run as `mr-bench native JOB INPUT OUTPUT`).
//!
//! 1. Each thread reads its byte range of the input with large positioned reads (4 MiB, so the
//!    resident set stays small; no mmap) and owns the lines that start in that range.
//! 2. It aggregates into `threads` hash tables, one per partition of the key space (XXH3 of the
//!    key), each a `hashbrown::HashTable` of fixed-size slots that hold keys of up to 16 bytes
//!    inline and point into a byte arena for longer ones (no allocation per key).
//! 3. Thread `p` merges partition `p` of every thread into one table and formats it; the main
//!    thread writes the formatted partitions to the output file, unsorted.
//!
//! Semantics equal mr's plugins: word count splits on every byte that is not an ASCII letter or
//! digit and lowercases (`word<TAB>count`); group-by splits each line at its last comma, the
//! value must be a decimal u64 (`key<TAB>count<TAB>sum`). A trailing `\r` is dropped from each
//! line, as mr's line reader does.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;
use xxhash_rust::xxh3::xxh3_64;

/// Bytes per positioned read.
pub(crate) const BLOCK: usize = 4 << 20;

/// Counts words of `input` into `output` (`word<TAB>count` lines, unsorted).
pub fn wordcount(input: &Path, output: &Path, threads: usize) -> Result<()> {
    run(input, output, threads, count_words, |out, key, n: &u64| {
        out.extend_from_slice(key);
        out.push(b'\t');
        push_u64(out, *n);
        out.push(b'\n');
    })
}

/// Per-key count and sum of `input`'s `key,value` lines into `output`
/// (`key<TAB>count<TAB>sum` lines, unsorted).
pub fn groupby(input: &Path, output: &Path, threads: usize) -> Result<()> {
    run(
        input,
        output,
        threads,
        group_lines,
        |out, key, (n, sum): &(u64, u64)| {
            out.extend_from_slice(key);
            out.push(b'\t');
            push_u64(out, *n);
            out.push(b'\t');
            push_u64(out, *sum);
            out.push(b'\n');
        },
    )
}

/// An aggregate that partitions merge.
trait Value: Copy + Send + Default {
    fn merge(&mut self, other: &Self);
}

impl Value for u64 {
    fn merge(&mut self, other: &u64) {
        *self += *other;
    }
}

impl Value for (u64, u64) {
    fn merge(&mut self, other: &(u64, u64)) {
        self.0 += other.0;
        self.1 += other.1;
    }
}

/// Aggregates one piece of whole lines (starting at byte `offset` of the file) into the
/// partitioned tables.
type Aggregate<V> = fn(&[u8], u64, &mut Partitions<V>) -> Result<()>;

fn run<V: Value>(
    input: &Path,
    output: &Path,
    threads: usize,
    aggregate: Aggregate<V>,
    format: fn(&mut Vec<u8>, &[u8], &V),
) -> Result<()> {
    let threads = threads.max(1);
    // Phase 1: every thread aggregates its byte range into `threads` partitions.
    let per_thread = per_thread_ranges(input, threads, || Partitions::new(threads), aggregate)?
        .into_iter()
        .map(|parts| parts.tables);
    // Phase 2: partition p of every thread merged and formatted by thread p.
    let mut by_partition: Vec<Vec<Table<V>>> = (0..threads).map(|_| Vec::new()).collect();
    for tables in per_thread {
        for (p, table) in tables.into_iter().enumerate() {
            by_partition[p].push(table);
        }
    }
    let formatted: Vec<Vec<u8>> = std::thread::scope(|s| {
        let handles: Vec<_> = by_partition
            .into_iter()
            .map(|mut tables| {
                s.spawn(move || {
                    tables.sort_by_key(|t| std::cmp::Reverse(t.slots.len()));
                    let mut merged = tables.remove(0);
                    for table in tables {
                        for slot in table.slots.iter() {
                            let key = table.key(slot);
                            merged.upsert(xxh3_64(key), key, |v| v.merge(&slot.value))?;
                        }
                    }
                    let mut out = Vec::with_capacity(merged.arena.len() + merged.slots.len() * 32);
                    for slot in merged.slots.iter() {
                        format(&mut out, merged.key(slot), &slot.value);
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("merging thread panicked"))
            .collect::<Result<_>>()
    })?;
    write_parts(output, &formatted)
}

/// Phase 1 of both references: thread `t` of `threads` reads the lines starting in its
/// `1/threads` of `input` and folds each piece of whole lines into its own state (`init()`).
pub(crate) fn per_thread_ranges<S: Send>(
    input: &Path,
    threads: usize,
    init: impl Fn() -> S + Sync,
    fold: impl Fn(&[u8], u64, &mut S) -> Result<()> + Sync,
) -> Result<Vec<S>> {
    let file = File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
    let size = file.metadata()?.len();
    let threads = threads as u64;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (file, init, fold) = (&file, &init, &fold);
                s.spawn(move || -> Result<S> {
                    let (start, end) = (size * t / threads, size * (t + 1) / threads);
                    let mut state = init();
                    for_each_lines(file, start, end, BLOCK, |piece, offset| {
                        fold(piece, offset, &mut state)
                    })?;
                    Ok(state)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("reading thread panicked"))
            .collect()
    })
}

/// Writes the formatted partitions to `output`, in order.
pub(crate) fn write_parts(output: &Path, parts: &[Vec<u8>]) -> Result<()> {
    let mut out = std::io::BufWriter::new(
        File::create(output).with_context(|| format!("cannot create {}", output.display()))?,
    );
    for part in parts {
        out.write_all(part)?;
    }
    out.flush()?;
    Ok(())
}

/// Maps ASCII letters and digits to their lowercase form and everything else to 0.
const WORD_BYTE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() {
            table[b] = c.to_ascii_lowercase();
        }
        b += 1;
    }
    table
};

fn count_words(piece: &[u8], _offset: u64, parts: &mut Partitions<u64>) -> Result<()> {
    let mut word: Vec<u8> = Vec::with_capacity(64);
    let mut i = 0;
    let n = piece.len();
    while i < n {
        while i < n && WORD_BYTE[piece[i] as usize] == 0 {
            i += 1;
        }
        if i == n {
            break;
        }
        word.clear();
        while i < n {
            let c = WORD_BYTE[piece[i] as usize];
            if c == 0 {
                break;
            }
            word.push(c);
            i += 1;
        }
        parts.add(&word, |count| *count += 1)?;
    }
    Ok(())
}

fn group_lines(piece: &[u8], offset: u64, parts: &mut Partitions<(u64, u64)>) -> Result<()> {
    for_each_key_value(piece, offset, |key, value| {
        let mut overflow = false;
        parts.add(key, |(count, sum)| {
            *count += 1;
            match sum.checked_add(value) {
                Some(s) => *sum = s,
                None => overflow = true,
            }
        })?;
        if overflow {
            bail!(
                "the sum of key {:?} overflows u64",
                String::from_utf8_lossy(key)
            );
        }
        Ok(())
    })
}

/// Calls `f(key, value)` for each `key,value` line of `piece` (starting at byte `offset` of the
/// input): split at the last comma, a trailing `\r` dropped, the value a decimal u64.
pub(crate) fn for_each_key_value(
    piece: &[u8],
    offset: u64,
    mut f: impl FnMut(&[u8], u64) -> Result<()>,
) -> Result<()> {
    let mut at = 0;
    while at < piece.len() {
        let end = memchr::memchr(b'\n', &piece[at..]).map_or(piece.len(), |i| at + i);
        let mut line = &piece[at..end];
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        let Some(comma) = memchr::memrchr(b',', line) else {
            bail!(
                "byte {}: expected a `key,value` line, found {:?}",
                offset + at as u64,
                String::from_utf8_lossy(line)
            );
        };
        let Some(value) = parse_u64(&line[comma + 1..]) else {
            bail!(
                "byte {}: the value is not a decimal u64 in {:?}",
                offset + at as u64,
                String::from_utf8_lossy(line)
            );
        };
        f(&line[..comma], value)?;
        at = end + 1;
    }
    Ok(())
}

pub(crate) fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    Some(n)
}

pub(crate) fn push_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[at..]);
}

/// One thread's tables, one per partition of the key space.
struct Partitions<V> {
    tables: Vec<Table<V>>,
}

impl<V: Value> Partitions<V> {
    fn new(n: usize) -> Self {
        Partitions {
            tables: (0..n).map(|_| Table::default()).collect(),
        }
    }

    #[inline]
    fn add(&mut self, key: &[u8], update: impl FnOnce(&mut V)) -> Result<()> {
        let hash = xxh3_64(key);
        // Bits 20..52 of the hash: disjoint from the bits hashbrown uses for the bucket index
        // (low bits) and the control tag (top 7 bits).
        let p = ((hash >> 20) as u32 as u64 * self.tables.len() as u64) >> 32;
        self.tables[p as usize].upsert(hash, key, update)
    }
}

/// Keys up to this long live in their slot; longer ones in the table's arena.
const INLINE: usize = 16;

/// A hash table of distinct keys: short keys inline in their slot (one cache line to compare,
/// as Polars' string views do), longer ones back to back in `arena`.
struct Table<V> {
    arena: Vec<u8>,
    slots: HashTable<Slot<V>>,
}

impl<V> Default for Table<V> {
    fn default() -> Self {
        Table {
            arena: Vec::new(),
            slots: HashTable::new(),
        }
    }
}

struct Slot<V> {
    /// The key zero-padded (inline), or its first `INLINE` bytes (in the arena).
    head: [u8; INLINE],
    len: u32,
    /// Where a long key starts in the arena.
    start: u32,
    value: V,
}

impl<V> Slot<V> {
    #[inline]
    fn key<'a>(&'a self, arena: &'a [u8]) -> &'a [u8] {
        let len = self.len as usize;
        if len <= INLINE {
            &self.head[..len]
        } else {
            &arena[self.start as usize..self.start as usize + len]
        }
    }
}

impl<V: Value> Table<V> {
    fn key<'a>(&'a self, slot: &'a Slot<V>) -> &'a [u8] {
        slot.key(&self.arena)
    }

    #[inline]
    fn upsert(&mut self, hash: u64, key: &[u8], update: impl FnOnce(&mut V)) -> Result<()> {
        let Ok(len) = u32::try_from(key.len()) else {
            bail!("a key longer than 4 GiB");
        };
        let mut head = [0u8; INLINE];
        let n = key.len().min(INLINE);
        head[..n].copy_from_slice(&key[..n]);
        let arena = &mut self.arena;
        let entry = self.slots.entry(
            hash,
            |s| s.len == len && s.head == head && (n == key.len() || s.key(arena) == key),
            |s| xxh3_64(s.key(arena)),
        );
        match entry {
            Entry::Occupied(mut slot) => update(&mut slot.get_mut().value),
            Entry::Vacant(vacant) => {
                let mut start = 0;
                if key.len() > INLINE {
                    let Ok(at) = u32::try_from(arena.len()) else {
                        bail!("more than 4 GiB of distinct long keys in one partition");
                    };
                    start = at;
                    arena.extend_from_slice(key);
                }
                let mut value = V::default();
                update(&mut value);
                vacant.insert(Slot {
                    head,
                    len,
                    start,
                    value,
                });
            }
        }
        Ok(())
    }
}

/// Calls `f(piece, offset)` on consecutive pieces of `file`, each made of whole lines (the last
/// line of the file may lack its `\n`), together covering exactly the lines that start at an
/// offset in `start..end`. Reads `block` bytes at a time (more for a longer line).
pub(crate) fn for_each_lines(
    file: &File,
    start: u64,
    end: u64,
    block: usize,
    mut f: impl FnMut(&[u8], u64) -> Result<()>,
) -> Result<()> {
    let mut buf = vec![0u8; block.max(1)];
    let mut have = 0usize; // valid bytes in buf
    // Read from one byte before `start`: if that byte is `\n`, a line starts at `start`.
    let mut next = start.saturating_sub(1);
    let mut skipping = start > 0; // looking for the first line start at or after `start`
    loop {
        if have == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = file.read_at(&mut buf[have..], next)?;
        next += n as u64;
        have += n;
        let eof = n == 0;
        let base = next - have as u64; // file offset of buf[0]
        let mut begin = 0;
        if skipping {
            match memchr::memchr(b'\n', &buf[..have]) {
                Some(i) => {
                    begin = i + 1;
                    skipping = false;
                }
                None if eof => return Ok(()),
                None => {
                    have = 0;
                    continue;
                }
            }
        }
        if base + begin as u64 >= end {
            return Ok(()); // the next line starts past our range
        }
        if end - base <= have as u64 {
            // Byte end-1 is buffered: our last line is the one that holds it.
            let last = (end - base - 1) as usize;
            if let Some(j) = memchr::memchr(b'\n', &buf[last..have]) {
                return f(&buf[begin..last + j + 1], base + begin as u64);
            }
            if eof {
                return f(&buf[begin..have], base + begin as u64);
            }
        } else if eof {
            return if begin < have {
                f(&buf[begin..have], base + begin as u64)
            } else {
                Ok(())
            };
        }
        // Hand over the complete lines, keep the partial last one.
        let complete = memchr::memrchr(b'\n', &buf[begin..have]).map_or(begin, |i| begin + i + 1);
        if complete > begin {
            f(&buf[begin..complete], base + begin as u64)?;
        }
        buf.copy_within(complete..have, 0);
        have -= complete;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(content: &[u8], splits: usize, block: usize) -> Vec<(u64, Vec<u8>)> {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(content).unwrap();
        let size = content.len() as u64;
        let mut got = Vec::new();
        for t in 0..splits as u64 {
            let (start, end) = (size * t / splits as u64, size * (t + 1) / splits as u64);
            for_each_lines(&file, start, end, block, |piece, offset| {
                assert_eq!(&content[offset as usize..][..piece.len()], piece);
                let mut at = offset;
                for line in piece.split_inclusive(|&b| b == b'\n') {
                    got.push((at, line.to_vec()));
                    at += line.len() as u64;
                }
                Ok(())
            })
            .unwrap();
        }
        got
    }

    #[test]
    fn every_line_is_read_exactly_once_whatever_the_split() {
        let mut content = Vec::new();
        let mut state = 7u64;
        for i in 0..300 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = if i % 50 == 0 {
                300
            } else {
                (state >> 59) as usize
            };
            content.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, len));
            content.push(b'\n');
        }
        for tail in [&b""[..], b"no newline at the end"] {
            let mut content = content.clone();
            content.extend_from_slice(tail);
            let mut expected = Vec::new();
            let mut at = 0u64;
            for line in content.split_inclusive(|&b| b == b'\n') {
                expected.push((at, line.to_vec()));
                at += line.len() as u64;
            }
            for splits in [1, 2, 3, 7, 64, 1000] {
                for block in [1, 5, 64, 4096] {
                    assert_eq!(
                        lines_of(&content, splits, block),
                        expected,
                        "{splits} splits, block {block}"
                    );
                }
            }
        }
    }

    fn sorted_lines(path: &Path) -> Vec<String> {
        let mut lines: Vec<String> = std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    }

    #[test]
    fn jobs_agree_with_a_simple_model() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("text");
        std::fs::write(&text, "The cat, the HAT.\n\nr2d2 café\r\nthe end").unwrap();
        let out = dir.path().join("out");
        for threads in [1, 2, 3, 8] {
            wordcount(&text, &out, threads).unwrap();
            let lines = sorted_lines(&out);
            assert_eq!(
                lines,
                ["caf\t1", "cat\t1", "end\t1", "hat\t1", "r2d2\t1", "the\t3"]
            );
        }
        let kv = dir.path().join("kv");
        // Keys of 16 bytes (inline) and 17 bytes (arena), one a prefix of the other.
        let (k16, k17) = ("0123456789abcdef", "0123456789abcdefg");
        std::fs::write(
            &kv,
            format!("b,5\na,1\n{k17},1\nb,7\r\n{k16},2\nx,y,3\n{k17},4\na,2"),
        )
        .unwrap();
        for threads in [1, 2, 5] {
            groupby(&kv, &out, threads).unwrap();
            let lines = sorted_lines(&out);
            assert_eq!(
                lines,
                [
                    format!("{k16}\t1\t2"),
                    format!("{k17}\t2\t5"),
                    "a\t2\t3".into(),
                    "b\t2\t12".into(),
                    "x,y\t1\t3".into()
                ]
            );
        }
        std::fs::write(&kv, "a,1\nb;2\n").unwrap();
        let err = groupby(&kv, &out, 1).unwrap_err().to_string();
        assert!(err.contains("byte 4") && err.contains("b;2"), "{err}");
        std::fs::write(&kv, "a,1\nb,2x\n").unwrap();
        let err = groupby(&kv, &out, 1).unwrap_err().to_string();
        assert!(err.contains("not a decimal u64"), "{err}");
    }
}
