//! `mr-shuffle`: moving map output to reducers.
//!
//! - [`partition_of`]: a stable hash (XXH3-64, fixed by its specification, so the same key lands
//!   in the same partition on every machine and release) mapped onto `R` partitions.
//! - [`SpillBuffer`]: a worker's map output for every partition in one flat buffer plus an
//!   index, bounded by a byte budget; sorts by partition, key bytes and input order.
//! - Run files ([`RunWriter`], [`RunReader`]): sorted runs on disk in checksummed blocks; a
//!   corrupt or truncated run is reported with its file and block offset, never merged.
//! - [`Merger`]: k-way merge of runs with a heap; ties between runs are broken by run order, so
//!   when runs are numbered in input order, each key's values come out in input order.
//! - [`reduce_fan_in`]: with more runs than a merge may hold open within its memory, merges
//!   consecutive groups of runs into intermediate runs first (a multi-pass merge), which keeps
//!   that order.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
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

/// A worker's buffered map output for all partitions: one flat data buffer and one index,
/// bounded by a byte budget (Hadoop's design: one buffer sorted by partition, then key). When
/// [`SpillBuffer::is_full`], the caller sorts it, writes one run per partition and clears it;
/// its memory stays at the budget however much map output there is.
#[derive(Default)]
pub struct SpillBuffer {
    data: Vec<u8>,
    index: Vec<IndexEntry>,
    /// The radix sort's second array, as long as `index` while sorting (counted in the budget).
    scratch: Vec<IndexEntry>,
    budget: usize,
}

/// Most partitions (reducers) a shuffle has: a partition number is 16 bits in the sort index.
pub const MAX_PARTITIONS: u32 = 1 << 16;

/// 16 bytes per buffered pair, holding the first 9 key bytes and the key's length: keys of up
/// to 9 bytes (most words, ids, short codes) sort by these alone, without reading the data.
#[derive(Clone, Copy, Default)]
struct IndexEntry {
    /// First 8 key bytes, big-endian, zero-padded.
    prefix: u64,
    /// Offset of the kv entry in `data`; increases with input order, so it breaks ties.
    offset: u32,
    /// The partition, below [`MAX_PARTITIONS`].
    partition: u16,
    /// The key's ninth byte (0 when it is shorter).
    ninth: u8,
    /// The key's length, capped at 255.
    len: u8,
}

impl IndexEntry {
    #[inline]
    fn new(partition: u32, key: &[u8], offset: u32) -> IndexEntry {
        IndexEntry {
            prefix: prefix(key),
            offset,
            partition: u16::try_from(partition)
                .expect("partitions are capped at MAX_PARTITIONS (--reducers)"),
            ninth: key.get(8).copied().unwrap_or(0),
            len: key.len().min(255) as u8,
        }
    }

    /// Whether the key is at most 9 bytes, so (prefix, ninth, len) is the whole key.
    #[inline]
    fn is_short(&self) -> bool {
        self.len <= 9
    }
}

/// What one buffered pair costs besides its bytes: its index entry and the entry's slot in the
/// radix sort's scratch array.
const INDEX_ENTRY_BYTES: usize = 2 * std::mem::size_of::<IndexEntry>();

/// Below this many entries a comparison sort is cheaper than radix passes over 256 buckets.
const RADIX_MIN_ENTRIES: usize = 1024;

#[inline]
fn prefix(key: &[u8]) -> u64 {
    let mut p = [0u8; 8];
    let n = key.len().min(8);
    p[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(p)
}

/// Byte-wise key order, 8 bytes per step: the same order as `<[u8]>::cmp` without a call into
/// `memcmp` for the short keys that dominate sorting and merging.
#[inline]
pub fn compare_keys(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let x = u64::from_be_bytes(a[i..i + 8].try_into().expect("8 bytes"));
        let y = u64::from_be_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        if x != y {
            return x.cmp(&y);
        }
        i += 8;
    }
    // The last 0..8 common bytes as one zero-padded word each: both are padded alike, so the
    // words compare as the bytes do (a `memcmp` call cost more than the short keys it compared).
    prefix(&a[i..n])
        .cmp(&prefix(&b[i..n]))
        .then(a.len().cmp(&b.len()))
}

/// Key equality, 8 bytes per step (see [`compare_keys`]).
#[inline]
pub fn same_key(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && compare_keys(a, b).is_eq()
}

#[inline]
fn entry_at(data: &[u8], offset: u32) -> (&[u8], &[u8]) {
    let (k, v, _) = encoded_entry_at(data, offset);
    (k, v)
}

/// How many entries ahead [`SortedPairs::with_encoded`] prefetches.
const PREFETCH_DISTANCE: usize = 12;

/// Hints the CPU to load `data[offset]` into cache (no effect on results).
#[inline(always)]
#[allow(unsafe_code)]
fn prefetch(data: &[u8], offset: u32) {
    #[cfg(target_arch = "x86_64")]
    {
        let p = data[offset as usize..].as_ptr().cast::<i8>();
        // SAFETY: SSE is part of the x86_64 baseline, and a prefetch is only a hint: it reads
        // nothing the program sees and cannot fault (the address is in bounds besides).
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, offset);
}

/// The key, the value and the whole encoded entry (as [`mr_codec::put_kv`] wrote it).
#[inline]
fn encoded_entry_at(data: &[u8], offset: u32) -> (&[u8], &[u8], &[u8]) {
    let rest = &data[offset as usize..];
    let mut c = mr_codec::Cursor::new(rest);
    let k = c.bytes("key").expect("buffer written by SpillBuffer::push");
    let v = c
        .bytes("value")
        .expect("buffer written by SpillBuffer::push");
    (k, v, &rest[..c.position()])
}

impl SpillBuffer {
    /// An empty buffer that reports full at `budget` bytes (data and index). Both vectors are
    /// reserved up front: the allocator maps the pages lazily, so memory is used as it is
    /// written and never doubles in a reallocation.
    pub fn with_budget(budget: usize) -> Self {
        let budget = budget.clamp(64 << 10, u32::MAX as usize);
        SpillBuffer {
            data: Vec::with_capacity(budget),
            index: Vec::with_capacity(budget / INDEX_ENTRY_BYTES),
            scratch: Vec::new(),
            budget,
        }
    }

    /// A full buffer over `batch`, a kv batch (one map call's output), without copying it:
    /// only the index is built. For an output too large for the worker's buffer, which is then
    /// sorted and spilled on its own, so one call's output is never held twice.
    pub fn from_batch(
        batch: Vec<u8>,
        mut partition: impl FnMut(&[u8]) -> u32,
    ) -> Result<Self, mr_codec::CodecError> {
        let offset_of = |c: &mr_codec::Cursor<'_>| {
            u32::try_from(c.position()).expect("a batch held in a spill buffer is below 4 GiB")
        };
        let mut index = Vec::new();
        let mut cursor = mr_codec::Cursor::new(&batch);
        while !cursor.is_empty() {
            let offset = offset_of(&cursor);
            let key = cursor.bytes("a key")?;
            cursor.bytes("a value")?;
            index.push(IndexEntry::new(partition(key), key, offset));
        }
        let budget = batch.len() + index.len() * INDEX_ENTRY_BYTES;
        Ok(SpillBuffer {
            data: batch,
            index,
            scratch: Vec::new(),
            budget,
        })
    }

    /// Memory the index of `pairs` more pairs takes.
    pub fn index_bytes(pairs: usize) -> usize {
        pairs * INDEX_ENTRY_BYTES
    }

    /// The budget this buffer reports full at.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Appends one pair for `partition`. A single pair larger than the budget is still taken
    /// (the buffer is then full): records are capped elsewhere, by `--max-record-bytes`.
    #[inline]
    pub fn push(&mut self, partition: u32, key: &[u8], value: &[u8]) {
        let offset = u32::try_from(self.data.len()).expect("spill buffers stay below 4 GiB");
        self.index.push(IndexEntry::new(partition, key, offset));
        mr_codec::put_kv(&mut self.data, key, value);
    }

    /// Bytes held (data and index).
    pub fn memory(&self) -> usize {
        self.data.len() + self.index.len() * INDEX_ENTRY_BYTES
    }

    /// True when the buffer holds its budget: time to spill.
    pub fn is_full(&self) -> bool {
        self.memory() >= self.budget
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Sorts by partition, then key bytes, then input order (so equal keys keep the order they
    /// were pushed in), and returns each non-empty partition with its pairs in that order.
    pub fn sorted(&mut self) -> Vec<(u32, SortedPairs<'_>)> {
        let data = &self.data;
        if self.index.len() < RADIX_MIN_ENTRIES {
            self.index.sort_unstable_by(|a, b| {
                (a.partition, a.prefix)
                    .cmp(&(b.partition, b.prefix))
                    .then_with(|| compare_tails(data, a, b))
                    .then(a.offset.cmp(&b.offset))
            });
        } else {
            radix_sort(&mut self.index, &mut self.scratch);
            order_long_keys(data, &mut self.index);
        }
        let mut out = Vec::new();
        let mut rest = &self.index[..];
        while let Some(first) = rest.first() {
            let n = rest.partition_point(|e| e.partition == first.partition);
            out.push((
                u32::from(first.partition),
                SortedPairs {
                    data,
                    entries: rest[..n].iter(),
                },
            ));
            rest = &rest[n..];
        }
        out
    }

    /// Empties the buffer, keeping its memory.
    pub fn clear(&mut self) {
        self.data.clear();
        self.index.clear();
        self.scratch.clear();
    }
}

/// Orders two entries whose partition and 8-byte prefix are equal by the rest of their keys.
#[inline]
fn compare_tails(data: &[u8], a: &IndexEntry, b: &IndexEntry) -> std::cmp::Ordering {
    // Equal prefixes: the first 8 bytes (or the whole shorter key) are equal.
    let (ka, kb) = (entry_at(data, a.offset).0, entry_at(data, b.offset).0);
    let skip = ka.len().min(kb.len()).min(8);
    compare_keys(&ka[skip..], &kb[skip..])
}

/// Sorts `index` by (partition, prefix, ninth byte, length), stably, with
/// least-significant-digit radix passes of one byte each. Entries were pushed in input order
/// (increasing offsets) and every pass is stable, so equal entries stay in input order. A byte
/// that is the same in every entry (the leading `k0` of keys like `k00123456`, the high byte of
/// the partition) costs no pass. Each pass moves every entry once between `index` and `scratch`
/// (16 bytes, sequential reads, 256 write streams): for a spill of millions of pairs several
/// times faster than a comparison sort, whose key comparisons also reached into the data for
/// every tie. Keys longer than 9 bytes are put in order afterwards by [`order_long_keys`].
fn radix_sort(index: &mut Vec<IndexEntry>, scratch: &mut Vec<IndexEntry>) {
    /// Least significant first: length, ninth byte, the prefix's 8 bytes, the partition's 2.
    const DIGITS: usize = 12;
    #[inline]
    fn digit(e: &IndexEntry, d: usize) -> usize {
        match d {
            0 => e.len as usize,
            1 => e.ninth as usize,
            2..=9 => (e.prefix >> (8 * (d - 2))) as u8 as usize,
            _ => (e.partition >> (8 * (d - 10))) as u8 as usize,
        }
    }
    let n = index.len();
    let mut counts = vec![[0u32; 256]; DIGITS];
    for e in index.iter() {
        counts[0][e.len as usize] += 1;
        counts[1][e.ninth as usize] += 1;
        for (d, c) in counts[2..10].iter_mut().enumerate() {
            c[(e.prefix >> (8 * d)) as u8 as usize] += 1;
        }
        counts[10][e.partition as u8 as usize] += 1;
        counts[11][(e.partition >> 8) as usize] += 1;
    }
    scratch.clear();
    // As much room as the index: after an odd number of passes the two swap, and the next
    // spill's index must not grow by reallocating (which would hold both copies at once).
    scratch.reserve_exact(index.capacity());
    scratch.resize(n, IndexEntry::default());
    let mut in_index = true;
    for (d, count) in counts.iter().enumerate() {
        if count.iter().any(|&c| c as usize == n) {
            continue;
        }
        let mut next = [0usize; 256];
        let mut sum = 0usize;
        for (slot, &c) in next.iter_mut().zip(count.iter()) {
            *slot = sum;
            sum += c as usize;
        }
        let (from, to) = if in_index {
            (&index[..], &mut scratch[..])
        } else {
            (&scratch[..], &mut index[..])
        };
        for e in from {
            let b = digit(e, d);
            to[next[b]] = *e;
            next[b] += 1;
        }
        in_index = !in_index;
    }
    if !in_index {
        std::mem::swap(index, scratch);
    }
    scratch.clear();
}

/// After [`radix_sort`]: among entries with the same partition and first 9 key bytes, keys
/// longer than 9 bytes are ordered by the rest of their bytes (the radix sort ordered those
/// runs by a capped length, which is not key order). The sort is stable, so equal keys keep
/// input order. Runs of short keys only are already exact and are not touched.
fn order_long_keys(data: &[u8], index: &mut [IndexEntry]) {
    let mut start = 0;
    while start < index.len() {
        let first = index[start];
        let mut end = start + 1;
        let mut any_long = !first.is_short();
        while end < index.len()
            && index[end].prefix == first.prefix
            && index[end].ninth == first.ninth
            && index[end].partition == first.partition
        {
            any_long |= !index[end].is_short();
            end += 1;
        }
        if any_long && end - start > 1 {
            index[start..end].sort_by(|a, b| compare_tails(data, a, b));
        }
        start = end;
    }
}

/// One partition's pairs of a sorted [`SpillBuffer`], in order.
pub struct SortedPairs<'a> {
    data: &'a [u8],
    entries: std::slice::Iter<'a, IndexEntry>,
}

impl<'a> Iterator for SortedPairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.entries.next().map(|e| entry_at(self.data, e.offset))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.entries.size_hint()
    }
}

impl ExactSizeIterator for SortedPairs<'_> {}

impl<'a> SortedPairs<'a> {
    /// The same pairs, each with its encoded entry (for [`RunWriter::push_encoded`]).
    pub fn with_encoded(self) -> impl Iterator<Item = (&'a [u8], &'a [u8], &'a [u8])> {
        let data = self.data;
        let entries = self.entries.as_slice();
        entries.iter().enumerate().map(move |(i, e)| {
            // Sorted order visits the buffer at random: ask for an entry some steps ahead now,
            // so its cache miss overlaps the work on this one.
            if let Some(ahead) = entries.get(i + PREFETCH_DISTANCE) {
                prefetch(data, ahead.offset);
            }
            encoded_entry_at(data, e.offset)
        })
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
        self.records += 1;
        if key.len() + value.len() >= BLOCK_BYTES {
            // A pair larger than a block is a block of its own, written from where it is:
            // copying it into the block buffer would hold a huge record twice.
            self.flush_block()?;
            let (klen, vlen) = (len32(key.len()), len32(value.len()));
            let parts: [&[u8]; 4] = [&klen, key, &vlen, value];
            return self.write_block(&parts);
        }
        mr_codec::put_kv(&mut self.block, key, value);
        if self.block.len() >= BLOCK_BYTES {
            self.flush_block()?;
        }
        Ok(())
    }

    /// Appends a pair given as its encoded entry (`put_kv`'s layout): one copy where
    /// [`RunWriter::push`] makes four. Pairs must come in key order.
    #[inline]
    pub fn push_encoded(&mut self, entry: &[u8]) -> Result<(), ShuffleError> {
        if entry.len() >= BLOCK_BYTES + mr_codec::KV_OVERHEAD {
            let mut c = mr_codec::Cursor::new(entry);
            let key = c.bytes("key").expect("an encoded entry");
            let value = c.bytes("value").expect("an encoded entry");
            return self.push(key, value);
        }
        self.records += 1;
        self.block.extend_from_slice(entry);
        if self.block.len() >= BLOCK_BYTES {
            self.flush_block()?;
        }
        Ok(())
    }

    fn flush_block(&mut self) -> Result<(), ShuffleError> {
        if self.block.is_empty() {
            return Ok(());
        }
        let block = std::mem::take(&mut self.block);
        let written = self.write_block(&[&block]);
        self.block = block;
        self.block.clear();
        written
    }

    /// Writes one block whose payload is `parts` concatenated.
    fn write_block(&mut self, parts: &[&[u8]]) -> Result<(), ShuffleError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let len = u32::try_from(len).expect("records are capped far below 4 GiB");
        let mut hash = xxhash_rust::xxh3::Xxh3::new();
        for part in parts {
            hash.update(part);
        }
        let mut header = [0u8; BLOCK_HEADER];
        header[..4].copy_from_slice(&len.to_le_bytes());
        header[4..].copy_from_slice(&hash.digest().to_le_bytes());
        let io = |source| ShuffleError::Io {
            path: self.path.clone(),
            source,
        };
        self.file_hash.update(&header);
        self.out.write_all(&header).map_err(io)?;
        for part in parts {
            self.out.write_all(part).map_err(io)?;
        }
        self.bytes += BLOCK_HEADER as u64 + u64::from(len);
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

fn len32(n: usize) -> [u8; 4] {
    u32::try_from(n)
        .expect("records are capped far below 4 GiB")
        .to_le_bytes()
}

/// Reads a run written by [`RunWriter`], verifying every block.
pub struct RunReader {
    path: PathBuf,
    /// Read unbuffered, a whole block at a time: a reader holds one block (about 64 KiB), so a
    /// merge of N runs needs about N x 64 KiB.
    input: File,
    block: Vec<u8>,
    pos: usize,
    offset: u64,
    /// The file's length: a block may be as large as one record (whatever size the writer
    /// accepted), but never longer than what is left of the file.
    len: u64,
    /// Current entry as ranges into `block`.
    current: Option<(usize, usize, usize, usize)>,
    /// Blocks read (each verified against its checksum).
    blocks: u64,
}

impl RunReader {
    /// Opens a run and positions it on its first entry.
    pub fn open(path: &Path) -> Result<Self, ShuffleError> {
        let io = |source| ShuffleError::Io {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut reader = RunReader {
            path: path.to_owned(),
            input: file,
            block: Vec::new(),
            pos: 0,
            offset: 0,
            len,
            current: None,
            blocks: 0,
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

    /// Blocks read so far, each verified against its checksum (all of them at the end).
    pub fn blocks(&self) -> u64 {
        self.blocks
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
        let left = self.len.saturating_sub(self.offset + BLOCK_HEADER as u64);
        if len == 0 || len as u64 > left {
            return Err(corrupt(format!(
                "block length {len} does not fit the {left} bytes left in the file (truncated or damaged)"
            )));
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
        self.blocks += 1;
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

/// Memory one open run takes in a merge (its block buffer, with room for a large block).
pub const MERGE_BYTES_PER_RUN: usize = 2 * BLOCK_BYTES;

/// Most runs a merge holds open at once, whatever the budget (file descriptors).
pub const MAX_FAN_IN: usize = 512;

/// How many runs a merge may hold open within `memory` bytes (at least 2).
pub fn fan_in_for(memory: usize) -> usize {
    (memory / MERGE_BYTES_PER_RUN).clamp(2, MAX_FAN_IN)
}

/// Brings `runs` (in input order) down to at most `fan_in` runs by merging consecutive groups
/// of `fan_in` runs into intermediate runs under `dir`, named `{stem}-pass{P}-{N}.run`, pass
/// after pass. Merging neighbours keeps the run order, so the final merge still yields each
/// key's values in input order. Returns the runs to merge last; every intermediate file this
/// created is in `created` (whether this succeeded or not), for the caller to delete.
pub fn reduce_fan_in(
    runs: Vec<PathBuf>,
    fan_in: usize,
    dir: &Path,
    stem: &str,
    created: &mut Vec<PathBuf>,
) -> Result<Vec<PathBuf>, ShuffleError> {
    let fan_in = fan_in.max(2);
    // Each run with whether this function wrote it (and may delete it once merged further).
    let mut runs: Vec<(PathBuf, bool)> = runs.into_iter().map(|p| (p, false)).collect();
    let mut pass = 0;
    while runs.len() > fan_in {
        pass += 1;
        let mut next = Vec::with_capacity(runs.len().div_ceil(fan_in));
        for (n, group) in runs.chunks(fan_in).enumerate() {
            if let [single] = group {
                next.push(single.clone());
                continue;
            }
            let path = dir.join(format!("{stem}-pass{pass}-{n:05}.run"));
            created.push(path.clone());
            let inputs: Vec<PathBuf> = group.iter().map(|(p, _)| p.clone()).collect();
            let mut merger = Merger::open(&inputs)?;
            let mut out = RunWriter::create(&path)?;
            while let Some((k, v)) = merger.current() {
                out.push(k, v)?;
                merger.advance()?;
            }
            // Intermediate runs are rebuilt by a retry, so they need no fsync.
            out.finish(false)?;
            next.push((path, true));
            // This group's intermediate inputs are merged now (committed map runs stay).
            for (old, ours) in group {
                if *ours {
                    let _ = std::fs::remove_file(old);
                }
            }
        }
        runs = next;
    }
    Ok(runs.into_iter().map(|(p, _)| p).collect())
}

/// Merges sorted runs into one sorted stream; equal keys come out in run order.
///
/// A tree of losers (Knuth's replacement selection): advancing the winner replays only the
/// matches on its path to the root, one comparison per level, where a binary heap needs two.
/// Each run's current key prefix (8 bytes, big-endian) is kept beside the tree, so most
/// matches are one integer comparison that never touches a run's block.
pub struct Merger {
    runs: Vec<RunReader>,
    /// `tree[0]` is the winner (the run holding the smallest current entry); `tree[1..k]` hold
    /// the loser of the match at each inner node. Run `i` is the leaf at node `k + i`.
    tree: Vec<usize>,
    /// Per run: the start of its current key, or `None` when it is exhausted.
    heads: Vec<Option<Head>>,
}

/// The first 16 bytes of a key (zero-padded, big-endian words) and its length: for keys of up
/// to 16 bytes this orders them exactly (zero padding, then the length for keys that differ
/// only by trailing zero bytes); longer keys with equal heads are compared in full.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Head {
    first: u64,
    second: u64,
    len: usize,
}

impl Head {
    #[inline]
    fn of(key: &[u8]) -> Head {
        Head {
            first: prefix(key),
            second: prefix(key.get(8..).unwrap_or_default()),
            len: key.len(),
        }
    }
}

impl Merger {
    /// Opens the runs, which must be given in input order.
    pub fn open(paths: &[PathBuf]) -> Result<Self, ShuffleError> {
        let runs = paths
            .iter()
            .map(|p| RunReader::open(p))
            .collect::<Result<Vec<_>, _>>()?;
        let heads = runs
            .iter()
            .map(|r| r.current().map(|(k, _)| Head::of(k)))
            .collect();
        let k = runs.len();
        let mut merger = Merger {
            tree: vec![0; k.max(1)],
            runs,
            heads,
        };
        if k > 1 {
            // Play every match bottom-up: `winners[n]` is the winner below node `n`.
            let mut winners = vec![0usize; 2 * k];
            for (i, w) in winners[k..].iter_mut().enumerate() {
                *w = i;
            }
            for node in (1..k).rev() {
                let (l, r) = (winners[2 * node], winners[2 * node + 1]);
                let (winner, loser) = if merger.less(l, r) { (l, r) } else { (r, l) };
                winners[node] = winner;
                merger.tree[node] = loser;
            }
            merger.tree[0] = winners[1];
        }
        Ok(merger)
    }

    /// Whether run `a`'s current entry comes before run `b`'s: by key, then by run order. An
    /// exhausted run comes after every other.
    #[inline]
    fn less(&self, a: usize, b: usize) -> bool {
        match (self.heads[a], self.heads[b]) {
            (Some(ha), Some(hb)) => {
                if (ha.first, ha.second) != (hb.first, hb.second) {
                    return (ha.first, ha.second) < (hb.first, hb.second);
                }
                if ha.len <= 16 && hb.len <= 16 {
                    return (ha.len, a) < (hb.len, b);
                }
                let ka = self.runs[a]
                    .current()
                    .expect("a run with a head has an entry")
                    .0;
                let kb = self.runs[b]
                    .current()
                    .expect("a run with a head has an entry")
                    .0;
                match compare_keys(ka, kb) {
                    std::cmp::Ordering::Less => true,
                    std::cmp::Ordering::Equal => a < b,
                    std::cmp::Ordering::Greater => false,
                }
            }
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => a < b,
        }
    }

    /// The smallest current entry, `None` when all runs are exhausted.
    #[inline]
    pub fn current(&self) -> Option<(&[u8], &[u8])> {
        self.runs.get(self.tree[0]).and_then(RunReader::current)
    }

    /// Moves past the current entry.
    pub fn advance(&mut self) -> Result<(), ShuffleError> {
        let k = self.runs.len();
        let mut winner = self.tree[0];
        let Some(run) = self.runs.get_mut(winner) else {
            return Ok(());
        };
        if run.current().is_none() {
            return Ok(());
        }
        run.advance()?;
        self.heads[winner] = run.current().map(|(key, _)| Head::of(key));
        let mut node = (winner + k) / 2;
        while node > 0 {
            let loser = self.tree[node];
            if self.less(loser, winner) {
                self.tree[node] = winner;
                winner = loser;
            }
            node /= 2;
        }
        self.tree[0] = winner;
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

    /// A small deterministic generator for the randomized tests.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// Keys that stress the radix sort and its tie-breaking: shared 8-byte prefixes with
    /// different tails, keys that differ only by trailing zero bytes or by length, empty keys.
    fn tricky_key(state: &mut u64) -> Vec<u8> {
        let r = xorshift(state);
        match r % 6 {
            0 => Vec::new(),
            1 => format!("k{:08}", r % 3000).into_bytes(),
            2 => {
                let mut k = b"prefix00".to_vec();
                k.extend(std::iter::repeat_n(0u8, (r >> 8) as usize % 3));
                k
            }
            3 => vec![(r >> 8) as u8 % 4; (r >> 16) as usize % 12],
            4 => format!("same-prefix-{}", r % 50).into_bytes(),
            _ => (r >> 8).to_be_bytes()[..(r >> 4) as usize % 9].to_vec(),
        }
    }

    #[test]
    fn pushing_encoded_entries_writes_the_same_run() {
        let dir = tempfile::tempdir().unwrap();
        let big = vec![b'x'; BLOCK_BYTES + 10];
        let pairs: Vec<(&[u8], &[u8])> = vec![
            (b"", b"empty key"),
            (b"a", b""),
            (b"b", &big),
            (b"c", b"after the big one"),
        ];
        let (plain, encoded) = (dir.path().join("plain"), dir.path().join("encoded"));
        let mut w = RunWriter::create(&plain).unwrap();
        let mut e = RunWriter::create(&encoded).unwrap();
        for _ in 0..3000 {
            for (k, v) in &pairs {
                w.push(k, v).unwrap();
                let mut entry = Vec::new();
                mr_codec::put_kv(&mut entry, k, v);
                e.push_encoded(&entry).unwrap();
            }
        }
        assert_eq!(w.finish(false).unwrap(), e.finish(false).unwrap());
        assert_eq!(
            std::fs::read(&plain).unwrap(),
            std::fs::read(&encoded).unwrap()
        );
    }

    #[test]
    fn the_radix_sort_orders_like_a_comparison_sort() {
        for (pairs, partitions) in [(5_000, 1), (20_000, 3), (30_000, 700)] {
            let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ pairs as u64;
            let mut b = SpillBuffer::with_budget(64 << 20);
            let mut expected = Vec::new();
            for i in 0..pairs {
                let key = tricky_key(&mut state);
                let p = (xorshift(&mut state) % partitions) as u32;
                let value = i.to_string();
                b.push(p, &key, value.as_bytes());
                expected.push((p, key, i));
            }
            assert!(b.len() >= RADIX_MIN_ENTRIES);
            // Partition, then key bytes, then input order.
            expected.sort();
            let got: Vec<(u32, Vec<u8>, usize)> = b
                .sorted()
                .into_iter()
                .flat_map(|(p, pairs)| {
                    pairs.map(move |(k, v)| {
                        (
                            p,
                            k.to_vec(),
                            std::str::from_utf8(v).unwrap().parse().unwrap(),
                        )
                    })
                })
                .collect();
            assert_eq!(got, expected, "{pairs} pairs over {partitions} partitions");
        }
    }

    #[test]
    fn compare_keys_matches_slice_order_on_short_tails() {
        let mut state = 7u64;
        for _ in 0..20_000 {
            let (a, b) = (tricky_key(&mut state), tricky_key(&mut state));
            assert_eq!(compare_keys(&a, &b), a.cmp(&b), "{a:?} {b:?}");
            assert_eq!(same_key(&a, &b), a == b);
        }
    }

    #[test]
    fn merging_many_runs_orders_keys_then_runs() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = 11u64;
        let mut expected = Vec::new();
        let mut paths = Vec::new();
        // 13 runs (not a power of two), some empty, of different lengths.
        for run in 0..13usize {
            let mut pairs: Vec<(Vec<u8>, String)> = (0..(run * 37) % 200)
                .map(|i| (tricky_key(&mut state), format!("{run}.{i}")))
                .collect();
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            let path = dir.path().join(format!("{run}.run"));
            let mut w = RunWriter::create(&path).unwrap();
            for (k, v) in &pairs {
                w.push(k, v.as_bytes()).unwrap();
                expected.push((k.clone(), run, v.clone()));
            }
            w.finish(false).unwrap();
            paths.push(path);
        }
        // Stable: within a run, equal keys keep their written order.
        expected.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut m = Merger::open(&paths).unwrap();
        let mut got = Vec::new();
        while let Some((k, v)) = m.current() {
            let v = String::from_utf8(v.to_vec()).unwrap();
            let run: usize = v.split('.').next().unwrap().parse().unwrap();
            got.push((k.to_vec(), run, v));
            m.advance().unwrap();
        }
        m.advance().unwrap();
        assert_eq!(got, expected);
        // No runs at all, and one run.
        assert!(Merger::open(&[]).unwrap().current().is_none());
        let mut one = Merger::open(&paths[1..2]).unwrap();
        let mut n = 0;
        while one.current().is_some() {
            one.advance().unwrap();
            n += 1;
        }
        assert_eq!(n, 37);
    }

    #[test]
    fn sort_is_by_partition_then_key_then_input_order() {
        let mut b = SpillBuffer::with_budget(1 << 20);
        for (p, k, v) in [
            (1, "b", "1"),
            (0, "z", "0"),
            (1, "a", "2"),
            (1, "abcdefghij", "3"),
            (1, "b", "4"),
            (1, "abcdefghi", "5"),
            (1, "", "6"),
            (1, "b", "7"),
            // Equal zero-padded prefixes: only the bytes past them (and the length) decide.
            (1, "ab\0", "8"),
            (1, "ab", "9"),
            (1, "abcdefgh", "10"),
            (1, "abcdefgh\0", "11"),
        ] {
            b.push(p, k.as_bytes(), v.as_bytes());
        }
        let got: Vec<(u32, Vec<String>)> = b
            .sorted()
            .into_iter()
            .map(|(p, pairs)| {
                let pairs = pairs
                    .map(|(k, v)| {
                        format!(
                            "{}={}",
                            String::from_utf8_lossy(k),
                            String::from_utf8_lossy(v)
                        )
                    })
                    .collect();
                (p, pairs)
            })
            .collect();
        assert_eq!(
            got,
            [
                (0, vec!["z=0".to_string()]),
                (
                    1,
                    [
                        "=6",
                        "a=2",
                        "ab=9",
                        "ab\0=8",
                        "abcdefgh=10",
                        "abcdefgh\0=11",
                        "abcdefghi=5",
                        "abcdefghij=3",
                        "b=1",
                        "b=4",
                        "b=7"
                    ]
                    .map(String::from)
                    .to_vec()
                )
            ]
        );
    }

    #[test]
    fn compare_keys_is_byte_order() {
        let keys: Vec<&[u8]> = vec![
            b"",
            b"a",
            b"ab",
            b"abcdefgh",
            b"abcdefghi",
            b"abcdefgi",
            b"b",
            b"\xff",
            b"abcdefghij",
            b"abcdefghabcdefgh",
            b"abcdefghabcdefgg",
            b"abcdefghabcdefgh\x00",
        ];
        for a in &keys {
            for b in &keys {
                assert_eq!(compare_keys(a, b), a.cmp(b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn spill_buffer_reports_full_at_its_budget() {
        let mut b = SpillBuffer::with_budget(64 << 10);
        let mut n = 0;
        while !b.is_full() {
            b.push(0, b"key-0001", &[7u8; 100]);
            n += 1;
        }
        // 8 + 8 + 100 bytes of entry, 16 of index and 16 of radix scratch per pair.
        assert_eq!(n, (64 << 10) / 148 + 1);
        b.clear();
        assert!(b.is_empty() && !b.is_full());
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
    fn multi_pass_merge_keeps_input_order() {
        let dir = tempfile::tempdir().unwrap();
        // 23 runs, each holding key "k" (value = run number) and a key of its own.
        let paths: Vec<PathBuf> = (0..23)
            .map(|i| {
                let p = dir.path().join(format!("in{i}"));
                let own = format!("own{i:02}");
                let v = i.to_string();
                write_run(&p, &[("k", v.as_str()), (own.as_str(), "x")]);
                p
            })
            .collect();
        let mut created = Vec::new();
        let runs = reduce_fan_in(paths.clone(), 3, dir.path(), "r0", &mut created).unwrap();
        assert!(runs.len() <= 3, "{runs:?}");
        // 23 -> 8 -> 3: two passes.
        assert!(
            created
                .iter()
                .any(|p| p.to_string_lossy().contains("pass2"))
        );
        let mut m = Merger::open(&runs).unwrap();
        let mut ks = Vec::new();
        let mut own = 0;
        while let Some((k, v)) = m.current() {
            if k == b"k" {
                ks.push(String::from_utf8_lossy(v).into_owned());
            } else {
                own += 1;
            }
            m.advance().unwrap();
        }
        let want: Vec<String> = (0..23).map(|i| i.to_string()).collect();
        assert_eq!(ks, want);
        assert_eq!(own, 23);
        // Pass-1 intermediates were deleted once pass 2 had merged them.
        assert!(created.iter().filter(|p| p.exists()).count() <= 3);
        assert_eq!(fan_in_for(0), 2);
        assert_eq!(fan_in_for(usize::MAX), MAX_FAN_IN);
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
    fn a_record_larger_than_any_block_reads_back() {
        // Whatever size the writer accepts, the reader accepts: a 70 MiB value makes one block
        // larger than the old plausibility bound (64 blocks + 64 MiB).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge");
        let big = vec![b'v'; 70 << 20];
        let mut w = RunWriter::create(&path).unwrap();
        w.push(b"a", b"1").unwrap();
        w.push(b"b", &big).unwrap();
        w.push(b"c", b"3").unwrap();
        w.finish(false).unwrap();
        let mut r = RunReader::open(&path).unwrap();
        let mut seen = Vec::new();
        while let Some((k, v)) = r.current() {
            seen.push((k.to_vec(), v.len()));
            r.advance().unwrap();
        }
        assert_eq!(
            seen,
            [
                (b"a".to_vec(), 1),
                (b"b".to_vec(), 70 << 20),
                (b"c".to_vec(), 1)
            ]
        );
        // A length field pointing past the end of the file is corruption, named as such.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 10);
        std::fs::write(&path, &bytes).unwrap();
        let mut r = RunReader::open(&path).unwrap();
        let err = loop {
            match r.advance() {
                Ok(()) if r.current().is_none() => panic!("a truncated run read to its end"),
                Ok(()) => {}
                Err(e) => break e.to_string(),
            }
        };
        assert!(
            err.contains("does not fit") && err.contains("left in the file"),
            "{err}"
        );
    }

    #[test]
    fn a_buffer_adopted_from_a_batch_sorts_without_copying() {
        let mut batch = Vec::new();
        for (k, v) in [("b", "1"), ("a", "2"), ("b", "3"), ("c", "4")] {
            mr_codec::put_kv(&mut batch, k.as_bytes(), v.as_bytes());
        }
        let data = batch.as_ptr();
        let mut buffer = SpillBuffer::from_batch(batch, |k| u32::from(k == b"c")).unwrap();
        assert!(buffer.is_full());
        assert_eq!(buffer.data.as_ptr(), data, "the batch was not copied");
        let sorted: Vec<(u32, Vec<(String, String)>)> = buffer
            .sorted()
            .into_iter()
            .map(|(p, pairs)| {
                let pairs = pairs
                    .map(|(k, v)| {
                        (
                            String::from_utf8_lossy(k).into_owned(),
                            String::from_utf8_lossy(v).into_owned(),
                        )
                    })
                    .collect();
                (p, pairs)
            })
            .collect();
        let kv = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            sorted,
            [
                (0, vec![kv("a", "2"), kv("b", "1"), kv("b", "3")]),
                (1, vec![kv("c", "4")])
            ]
        );
        assert!(SpillBuffer::from_batch(vec![1, 0, 0, 0], |_| 0).is_err());
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

/// What [`dump`] printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dumped {
    /// Records.
    pub records: u64,
    /// Blocks, every one verified against its checksum.
    pub blocks: u64,
}

/// Writes run `path` to `out` as readable `key<TAB>value` lines: bytes that are not printable
/// UTF-8, and tab, newline, carriage return and backslash, are escaped (`\t`, `\n`, `\r`,
/// `\\`, `\xNN`), so every record is one line. Every block's checksum is verified; a
/// corrupt block stops the dump with an error naming the file and its byte offset.
pub fn dump(path: &Path, out: &mut impl Write) -> Result<Dumped, ShuffleError> {
    let mut reader = RunReader::open(path)?;
    let mut records = 0;
    let mut line = Vec::new();
    let io = |source| ShuffleError::Io {
        path: PathBuf::from("(output)"),
        source,
    };
    while let Some((k, v)) = reader.current() {
        line.clear();
        escape(k, &mut line);
        line.push(b'\t');
        escape(v, &mut line);
        line.push(b'\n');
        out.write_all(&line).map_err(io)?;
        records += 1;
        reader.advance()?;
    }
    Ok(Dumped {
        records,
        blocks: reader.blocks(),
    })
}

fn escape(bytes: &[u8], out: &mut Vec<u8>) {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\t' => out.extend_from_slice(b"\\t"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\\' => out.extend_from_slice(b"\\\\"),
                c if c.is_control() => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
                    }
                }
                c => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        for b in chunk.invalid() {
            out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
        }
    }
}

#[cfg(test)]
mod dump_tests {
    use super::*;

    #[test]
    fn a_run_dumps_as_escaped_lines_and_a_damaged_block_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.run");
        let mut w = RunWriter::create(&path).unwrap();
        w.push(b"apple", b"1").unwrap();
        w.push(b"tab\there", b"line\nbreak \xff\x01 \\").unwrap();
        w.push("caf\u{e9}".as_bytes(), b"").unwrap();
        w.finish(false).unwrap();
        let mut out = Vec::new();
        let dumped = dump(&path, &mut out).unwrap();
        assert_eq!(
            dumped,
            Dumped {
                records: 3,
                blocks: 1
            }
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "apple\t1\ntab\\there\tline\\nbreak \\xff\\x01 \\\\\ncaf\u{e9}\t\n"
        );
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let e = dump(&path, &mut Vec::new()).unwrap_err().to_string();
        assert!(
            e.contains("is corrupt at byte 0: block checksum mismatch"),
            "{e}"
        );
    }
}
