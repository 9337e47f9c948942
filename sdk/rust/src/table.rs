//! In-map combining: when a job has a combiner, `emit` inside `map` does not append to the
//! output; it adds the value to its key's entry in a hash table that lives for one map batch.
//! An entry whose pending values reach a threshold is combined right away (after the record
//! that filled it), and at the end of the batch every entry is combined and written out once.
//!
//! For word count this turns ~180,000 words per 1 MiB batch into about 4,000 `(word, count)`
//! pairs without ever materialising the pairs: with `Emitter::add`, the cost per word is one
//! hash, one probe and one addition.
//!
//! The combiner's contract (any number of times, on any subset of a key's values) is what makes
//! this legal. The table is per batch, so a map call stays a pure function of its input: no
//! state crosses calls, and a failed or retried batch cannot leave values behind.
//!
//! When keys rarely repeat within a batch (a group-by over millions of keys), hashing only costs:
//! once a batch's first [`PROBE_EMITS`] emits show fewer than [`MIN_REPEAT`] emits per distinct
//! key, the table is written out and the rest of the batch is emitted as plain pairs (adaptive
//! partial aggregation, as query engines do it). The decision is made inside each batch, from
//! that batch alone: a map call stays a pure function of its input, so the pairs it returns (and
//! the `map-output-records` counter) are the same on every run and every worker. (An earlier
//! version carried a "bypass the next 32 batches" state across calls; on an instance reused for
//! other shards the counters then depended on scheduling.)

use crate::glue::Failure;
use crate::{Combiner, Emitter, Error, Mapper, Record, ValueEmitter, Values};

/// Pending values of one key that trigger an early combine.
const COMBINE_AT: u32 = 32;
/// A batch whose emits are fewer than this many times its distinct keys is "not combining".
const MIN_REPEAT: f64 = 1.5;
/// Emits of a batch after which the table decides whether the batch is combining.
const PROBE_EMITS: u64 = 16 * 1024;

/// What the hash table holds per key: the key's first 16 bytes and length inline, so a probe
/// compares two words instead of chasing the entry and its key bytes (most keys are short), and
/// the key's running sum (see [`Emitter::add`]), so adding to it touches the slot alone.
///
/// The table is open addressing with linear probing over a power-of-two array. A slot whose
/// `generation` is not the table's current one is empty, so emptying the table between batches
/// is one increment, not a sweep. (Measured against hashbrown's `HashTable`, whose portable
/// group probing Cranelift compiles less well, word count's table took 38% fewer instructions
/// under callgrind: 116 M instead of 186 M for 5 MB of text.) The slot is 32 bytes, two to a
/// cache line: a word count's batch has a few thousand distinct words, and an add that had to
/// load the entry as well as the slot stalled on that second cache line for a third of the
/// table's time.
#[derive(Clone, Copy, Default)]
struct Slot {
    head: [u64; 2],
    /// The running sum, when `entry` has [`HAS_SUM`].
    sum: u64,
    /// The key's length, capped at `u16::MAX` (keys over 16 bytes compare in full anyway).
    len: u16,
    generation: u16,
    /// The entry's index, with [`HAS_SUM`] once `sum` holds a running sum.
    entry: u32,
}

/// The bit of [`Slot::entry`] that says the slot holds a running sum.
const HAS_SUM: u32 = 1 << 31;

impl Slot {
    /// The index of the slot's entry.
    #[inline(always)]
    fn entry_index(&self) -> usize {
        (self.entry & !HAS_SUM) as usize
    }
}

/// A key's length as a slot holds it.
#[inline(always)]
fn slot_len(key: &[u8]) -> u16 {
    key.len().min(usize::from(u16::MAX)) as u16
}

/// The first 16 bytes of a key as two little-endian words, zero-padded.
///
/// Built from a few loads that overlap instead of a loop over the bytes or a `copy_from_slice`:
/// in wasm a variable-length copy becomes a `memory.copy`, which the runtime implements as a
/// call, and Cranelift does not unroll a byte loop, so either costs several times these loads
/// for a 5-byte word.
#[inline(always)]
fn head(key: &[u8]) -> [u64; 2] {
    let n = key.len();
    if n >= 16 {
        return [le64(key, 0), le64(key, 8)];
    }
    if n > 8 {
        // The last 8 bytes, shifted right past those already in the first word.
        return [le64(key, 0), le64(key, n - 8) >> (8 * (16 - n))];
    }
    [short_word(key), 0]
}

/// Up to 8 bytes as a zero-padded little-endian word.
#[inline(always)]
fn short_word(key: &[u8]) -> u64 {
    let n = key.len();
    if n == 8 {
        le64(key, 0)
    } else if n >= 4 {
        // Two 4-byte loads that overlap in the middle: OR-ing the same byte twice is harmless.
        let lo = u64::from(u32::from_le_bytes(key[..4].try_into().expect("4 bytes")));
        let hi = u64::from(u32::from_le_bytes(
            key[n - 4..].try_into().expect("4 bytes"),
        ));
        lo | hi << (8 * (n - 4))
    } else if n > 0 {
        // First, middle and last byte cover every length from 1 to 3.
        u64::from(key[0])
            | u64::from(key[n / 2]) << (8 * (n / 2))
            | u64::from(key[n - 1]) << (8 * (n - 1))
    } else {
        0
    }
}

/// The 8 bytes of `key` at `at`, little-endian.
#[inline(always)]
fn le64(key: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(key[at..at + 8].try_into().expect("8 bytes"))
}

#[derive(Default)]
struct Entry {
    key_at: u32,
    key_len: u32,
    hash: u64,
    /// The entry's slot (moved when the table grows).
    slot: u32,
    /// Framed (length-prefixed) values not yet combined.
    values: Vec<u8>,
    count: u32,
    /// `count` at which this entry is combined next.
    combine_at: u32,
}

/// The per-batch combining table (its allocations are reused from batch to batch).
#[derive(Default)]
pub(crate) struct CombineTable {
    slots: Vec<Slot>,
    /// Slots of the current batch have this generation; others are empty.
    generation: u16,
    /// Entries `0..used` are live; those beyond keep their allocations for later batches.
    entries: Vec<Entry>,
    used: usize,
    keys: Vec<u8>,
    /// Entries that reached `combine_at` during the current record.
    due: Vec<u32>,
    emits: u64,
    scratch: Vec<u8>,
}

/// Hashes a key 8 bytes at a time (the tail as one zero-padded word, mixed with the length):
/// words are short, so this is one or two multiplies where a byte-wise hash takes one per byte.
#[inline]
fn key_hash(key: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = (key.len() as u64).wrapping_mul(K);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut w = [0u8; 8];
        w[..tail.len()].copy_from_slice(tail);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    // Mix the high bits down: the table indexes its slots with the low bits.
    h ^ (h >> 32)
}

impl CombineTable {
    /// Adds one emitted pair.
    #[inline]
    pub(crate) fn add(&mut self, key: &[u8], value: &[u8]) {
        self.emits += 1;
        let at = self.slot_of(key);
        let i = self.slots[at].entry_index();
        self.push_value(i, value);
    }

    /// Adds `n` to the running sum of `key` (see [`Emitter::add`]). Inlined into the job's
    /// `map`: for word count this is the whole cost of a word past finding it, and a call costs
    /// Cranelift a stack check and spills.
    #[inline(always)]
    pub(crate) fn add_sum(&mut self, key: &[u8], n: u64) {
        self.emits += 1;
        let at = self.slot_of(key);
        let slot = &mut self.slots[at];
        if slot.entry & HAS_SUM == 0 {
            slot.entry |= HAS_SUM;
            slot.sum = n;
        } else if let Some(total) = slot.sum.checked_add(n) {
            slot.sum = total;
        } else {
            self.overflow(at, n);
        }
    }

    /// A running sum would overflow: keeps the full sum as a value of its own and starts again.
    #[cold]
    #[inline(never)]
    fn overflow(&mut self, at: usize, n: u64) {
        let slot = &mut self.slots[at];
        let full = std::mem::replace(&mut slot.sum, n);
        let i = slot.entry_index();
        let mut digits = [0u8; 20];
        self.push_value(i, crate::format_u64(full, &mut digits));
    }

    /// Appends a framed value to entry `i`, marking it due for a combine when it filled up.
    #[inline]
    fn push_value(&mut self, i: usize, value: &[u8]) {
        let e = &mut self.entries[i];
        mr_codec::put_value(&mut e.values, value);
        e.count += 1;
        if e.count == e.combine_at {
            self.due.push(i as u32);
        }
    }

    /// The slot of `key`, with a new empty entry if the key is new.
    #[inline(always)]
    fn slot_of(&mut self, key: &[u8]) -> usize {
        let head = head(key);
        let len = slot_len(key);
        let hash = if key.len() <= 16 {
            let h =
                (head[0] ^ (key.len() as u64).rotate_left(56)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let h = (h.rotate_left(5) ^ head[1]).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            h ^ (h >> 32)
        } else {
            key_hash(key)
        };
        let mask = self.slots.len().wrapping_sub(1);
        let mut at = hash as usize & mask;
        loop {
            let Some(slot) = self.slots.get(at) else {
                // No slots yet (the first key of a table).
                return self.insert(key, hash);
            };
            if slot.generation != self.generation {
                return self.insert(key, hash);
            }
            if slot.head == head && slot.len == len && (key.len() <= 16 || self.same_key(slot, key))
            {
                return at;
            }
            at = (at + 1) & mask;
        }
    }

    /// Whether a longer key that matched a slot on its first 16 bytes is the slot's key.
    #[inline(never)]
    fn same_key(&self, slot: &Slot, key: &[u8]) -> bool {
        let e = &self.entries[slot.entry_index()];
        &self.keys[e.key_at as usize..(e.key_at + e.key_len) as usize] == key
    }

    /// Adds `key` (not in the table) as a new entry; returns its slot.
    #[cold]
    #[inline(never)]
    fn insert(&mut self, key: &[u8], hash: u64) -> usize {
        if (self.used + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut at = hash as usize & mask;
        while self.slots[at].generation == self.generation {
            at = (at + 1) & mask;
        }
        let i = self.used;
        // Below HAS_SUM: a batch's keys stay below 4 GiB, and 2^31 distinct keys would not.
        assert!(i < HAS_SUM as usize, "a map batch has 2^31 distinct keys");
        if i == self.entries.len() {
            self.entries.push(Entry::default());
        }
        let key_at = u32::try_from(self.keys.len()).expect("a map batch's keys stay below 4 GiB");
        self.keys.extend_from_slice(key);
        let e = &mut self.entries[i];
        e.key_at = key_at;
        e.key_len = key.len() as u32;
        e.hash = hash;
        e.slot = at as u32;
        e.values.clear();
        e.count = 0;
        e.combine_at = COMBINE_AT;
        self.slots[at] = Slot {
            head: head(key),
            sum: 0,
            len: slot_len(key),
            entry: i as u32,
            generation: self.generation,
        };
        self.used += 1;
        at
    }

    /// Doubles the slot array (at least 1024 slots) and re-inserts the live entries.
    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(1024);
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); size]);
        let old_generation = self.generation;
        self.generation = 1;
        let mask = size - 1;
        for e in self.entries[..self.used].iter_mut() {
            let mut slot = old[e.slot as usize];
            debug_assert_eq!(slot.generation, old_generation);
            slot.generation = self.generation;
            let mut at = e.hash as usize & mask;
            while self.slots[at].generation == self.generation {
                at = (at + 1) & mask;
            }
            self.slots[at] = slot;
            e.slot = at as u32;
        }
    }

    /// Combines one entry's pending values into what the combiner emits for them.
    fn combine_entry<J: Combiner>(&mut self, job: &mut J, i: usize) -> Result<(), Error> {
        let e = &mut self.entries[i];
        let key = &self.keys[e.key_at as usize..(e.key_at + e.key_len) as usize];
        self.scratch.clear();
        let mut values = Values::new(mr_codec::values(&e.values), None);
        let mut out = ValueEmitter {
            buf: &mut self.scratch,
            count: 0,
        };
        job.combine(key, &mut values, &mut out)?;
        e.count = out.count;
        std::mem::swap(&mut e.values, &mut self.scratch);
        // A combiner that does not shrink its input is not combined again until it doubled.
        e.combine_at = e.count.saturating_mul(2).max(COMBINE_AT);
        Ok(())
    }

    /// Combines the entries that filled up during the last record.
    #[inline]
    fn combine_due<J: Combiner>(&mut self, job: &mut J) -> Result<(), Error> {
        while let Some(i) = self.due.pop() {
            self.combine_entry(job, i as usize)?;
        }
        Ok(())
    }

    /// Combines every entry with more than one value, writes all entries to `out` as kv pairs
    /// (in first-emitted order, so the output is a pure function of the batch) and empties the
    /// table.
    fn drain<J: Combiner>(&mut self, job: &mut J, out: &mut Vec<u8>) -> Result<(), Error> {
        for i in 0..self.used {
            let e = &mut self.entries[i];
            // A running sum (in the slot) joins the entry's values as one more value.
            let slot = &self.slots[e.slot as usize];
            if slot.entry & HAS_SUM != 0 {
                let sum = slot.sum;
                let mut digits = [0u8; 20];
                mr_codec::put_value(&mut e.values, crate::format_u64(sum, &mut digits));
                e.count += 1;
            }
            if self.entries[i].count > 1 {
                self.combine_entry(job, i)?;
            }
            let e = &self.entries[i];
            let key = &self.keys[e.key_at as usize..(e.key_at + e.key_len) as usize];
            for value in mr_codec::values(&e.values) {
                mr_codec::put_kv(out, key, value.expect("framed by this table"));
            }
        }
        self.clear();
        Ok(())
    }

    /// Whether the batch so far repeats its keys too rarely for the table to pay.
    fn not_combining(&self) -> bool {
        self.used > 0 && (self.emits as f64) < MIN_REPEAT * self.used as f64
    }

    fn clear(&mut self) {
        // Empties every slot at once; on wrap-around, really clear them.
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.slots.fill(Slot::default());
            self.generation = 1;
        }
        self.keys.clear();
        self.due.clear();
        self.used = 0;
        self.emits = 0;
        // Keep the allocations of a typical batch, not those of an outlier.
        if self.entries.len() > 1 << 16 {
            self.entries.truncate(1 << 16);
            self.entries.shrink_to_fit();
        }
    }
}

/// Maps a batch, combining in the table as described in the module docs.
pub(crate) fn map_and_combine<J: Mapper + Combiner>(
    job: &mut J,
    table: &mut Option<Box<CombineTable>>,
    input: &[u8],
) -> Result<Vec<u8>, Failure> {
    let t = table.take().unwrap_or_default();
    let mut out = Emitter::combining(Vec::with_capacity(input.len() / 4), t);
    // Set when the batch's first emits showed it does not combine: the table, written out,
    // waits here while the rest of the batch is emitted as plain pairs.
    let mut set_aside: Option<Box<CombineTable>> = None;
    let mut probing = true;
    let mut result = Ok(());
    for (index, entry) in mr_codec::kvs(input).enumerate() {
        let (key, value) = match entry {
            Ok(kv) => kv,
            Err(e) => {
                result = Err(Failure::malformed("map batch", e));
                break;
            }
        };
        let mapped = job
            .map(Record::at(key, value, index as u32), &mut out)
            .and_then(|()| {
                if set_aside.is_none() {
                    out.table_mut().combine_due(job)?;
                }
                Ok(())
            });
        if let Err(e) = mapped {
            result = Err(Failure::job(e, Some(index as u32)));
            break;
        }
        if probing && out.table_mut().emits >= PROBE_EMITS {
            probing = false;
            if out.table_mut().not_combining() {
                let (mut buf, mut t) = out.into_parts();
                if let Err(e) = t.drain(job, &mut buf) {
                    t.clear();
                    *table = Some(t);
                    return Err(Failure::job(e, None));
                }
                set_aside = Some(t);
                out = Emitter::with_buffer(buf);
            }
        }
    }
    let (buf, result) = match set_aside {
        Some(t) => {
            *table = Some(t);
            (out.into_buffer(), result)
        }
        None => {
            let (mut buf, mut t) = out.into_parts();
            let result =
                result.and_then(|()| t.drain(job, &mut buf).map_err(|e| Failure::job(e, None)));
            if result.is_err() {
                t.clear();
            }
            *table = Some(t);
            (buf, result)
        }
    };
    result.map(|()| buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::input_batch as batch;
    use crate::{Job, JobInfo, Result};

    #[derive(Default)]
    struct Sum {
        combines: u32,
    }
    impl Job for Sum {
        const INFO: JobInfo = JobInfo::new("sum", "0");
    }
    impl Mapper for Sum {
        fn map(&mut self, record: Record<'_>, out: &mut Emitter) -> Result {
            for w in record.value.split(|b| *b == b' ') {
                out.emit(w, b"1");
            }
            Ok(())
        }
    }
    impl Combiner for Sum {
        fn combine(&mut self, _k: &[u8], v: &mut Values<'_>, out: &mut ValueEmitter<'_>) -> Result {
            self.combines += 1;
            out.emit_u64(v.sum_u64()?);
            Ok(())
        }
    }

    fn pairs(buf: &[u8]) -> Vec<(String, String)> {
        mr_codec::kvs(buf)
            .map(|kv| {
                let (k, v) = kv.unwrap();
                (
                    String::from_utf8_lossy(k).into(),
                    String::from_utf8_lossy(v).into(),
                )
            })
            .collect()
    }

    #[test]
    fn combines_within_a_batch_in_first_seen_order() {
        let mut job = Sum::default();
        let mut table = None;
        let line = vec!["a b a"; 40].join(" ");
        let out = map_and_combine(&mut job, &mut table, &batch(&[&line, "c a"])).unwrap();
        assert_eq!(
            pairs(&out),
            [
                ("a".into(), "81".into()),
                ("b".into(), "40".into()),
                ("c".into(), "1".into())
            ]
        );
        // Early combines at 32 pending values of `a`, then one final combine each for a and b.
        assert!(job.combines >= 3, "{}", job.combines);
        // The table is empty again: a second batch sees nothing of the first.
        let out = map_and_combine(&mut job, &mut table, &batch(&["a"])).unwrap();
        assert_eq!(pairs(&out), [("a".into(), "1".into())]);
    }

    #[test]
    fn running_sums_join_emitted_values_and_survive_overflow() {
        #[derive(Default)]
        struct Adder;
        impl Job for Adder {
            const INFO: JobInfo = JobInfo::new("adder", "0");
        }
        impl Mapper for Adder {
            fn map(&mut self, record: Record<'_>, out: &mut Emitter) -> Result {
                match record.value {
                    b"big" => out.add("k", u64::MAX - 1),
                    b"text" => out.emit("k", "5"),
                    _ => out.add("k", 1),
                }
                Ok(())
            }
        }
        impl Combiner for Adder {
            fn combine(
                &mut self,
                _k: &[u8],
                v: &mut Values<'_>,
                out: &mut ValueEmitter<'_>,
            ) -> Result {
                // Keeps values apart so the test sees what reached the combiner.
                v.for_each(|x| out.emit(x));
                Ok(())
            }
        }
        let mut table = None;
        let out = map_and_combine(
            &mut Adder,
            &mut table,
            &batch(&["1", "1", "text", "big", "1"]),
        )
        .unwrap();
        let got: Vec<String> = pairs(&out).into_iter().map(|(_, v)| v).collect();
        // 1+1 overflowed when `big` came: 2 was kept as a value, then big+1 is the running sum.
        assert_eq!(got, ["5", "2", (u64::MAX).to_string().as_str()]);
    }

    #[test]
    fn the_table_grows_and_long_keys_compare_in_full() {
        let mut job = Sum::default();
        let mut table = None;
        // 5,000 distinct keys (the table grows from 1,024 slots several times), some longer
        // than the 16 bytes held in a slot and equal in those 16, each emitted three times.
        let keys: Vec<String> = (0..5000)
            .map(|i| {
                if i % 2 == 0 {
                    format!("k{i}")
                } else {
                    format!("a-long-shared-prefix-{i}")
                }
            })
            .collect();
        let line = keys.join(" ");
        let out = map_and_combine(&mut job, &mut table, &batch(&[&line, &line, &line])).unwrap();
        let got = pairs(&out);
        assert_eq!(got.len(), 5000);
        for ((k, v), want) in got.iter().zip(&keys) {
            assert_eq!((k.as_str(), v.as_str()), (want.as_str(), "3"));
        }
        // The next batch starts empty (generation bump), with the grown array.
        let out = map_and_combine(&mut job, &mut table, &batch(&["k0 k0"])).unwrap();
        assert_eq!(pairs(&out), [("k0".into(), "2".into())]);
    }

    #[test]
    fn a_batch_without_repeats_stops_combining_and_the_next_batch_starts_afresh() {
        let mut job = Sum::default();
        let mut table = None;
        // PROBE_EMITS distinct keys, then a key repeated: the table is written out at the
        // probe and the rest of the batch goes out as plain pairs.
        let distinct: Vec<String> = (0..PROBE_EMITS).map(|i| format!("k{i}")).collect();
        let line = distinct.join(" ");
        let out = map_and_combine(&mut job, &mut table, &batch(&[&line, "x x", "x"])).unwrap();
        let got = pairs(&out);
        assert_eq!(got.len(), PROBE_EMITS as usize + 3);
        assert_eq!(
            &got[got.len() - 3..],
            [
                ("x".into(), "1".into()),
                ("x".into(), "1".into()),
                ("x".into(), "1".into())
            ]
        );
        // The decision does not outlive the batch: the next one combines again.
        let out = map_and_combine(&mut job, &mut table, &batch(&["x x"])).unwrap();
        assert_eq!(pairs(&out), [("x".into(), "2".into())]);
        // And the same batch gives the same pairs whatever came before it.
        let again = map_and_combine(&mut job, &mut table, &batch(&[&line, "x x", "x"])).unwrap();
        assert_eq!(pairs(&again), got);
    }

    #[test]
    fn a_failing_record_leaves_nothing_behind() {
        #[derive(Default)]
        struct Picky;
        impl Job for Picky {
            const INFO: JobInfo = JobInfo::new("picky", "0");
        }
        impl Mapper for Picky {
            fn map(&mut self, record: Record<'_>, out: &mut Emitter) -> Result {
                out.emit(record.value, b"1");
                if record.value == b"bad" {
                    return Err(Error::new("bad record"));
                }
                Ok(())
            }
        }
        impl Combiner for Picky {
            fn combine(
                &mut self,
                _k: &[u8],
                v: &mut Values<'_>,
                out: &mut ValueEmitter<'_>,
            ) -> Result {
                out.emit_u64(v.sum_u64()?);
                Ok(())
            }
        }
        let mut table = None;
        let err =
            map_and_combine(&mut Picky, &mut table, &batch(&["ok", "ok", "bad"])).unwrap_err();
        assert_eq!(err.record_index, Some(2));
        let out = map_and_combine(&mut Picky, &mut table, &batch(&["ok"])).unwrap();
        assert_eq!(pairs(&out), [("ok".into(), "1".into())]);
    }

    #[test]
    fn a_key_head_is_its_first_16_bytes_zero_padded_at_every_length() {
        let bytes: Vec<u8> = (0..40u8)
            .map(|i| i.wrapping_mul(37).wrapping_add(1))
            .collect();
        for n in 0..=bytes.len() {
            let key = &bytes[..n];
            let mut want = [0u8; 16];
            let take = n.min(16);
            want[..take].copy_from_slice(&key[..take]);
            let want = [
                u64::from_le_bytes(want[..8].try_into().unwrap()),
                u64::from_le_bytes(want[8..].try_into().unwrap()),
            ];
            assert_eq!(head(key), want, "length {n}");
        }
    }

    #[test]
    fn running_sums_stay_with_their_keys_when_the_table_grows() {
        #[derive(Default)]
        struct Counter;
        impl Job for Counter {
            const INFO: JobInfo = JobInfo::new("counter", "0");
        }
        impl Mapper for Counter {
            fn map(&mut self, record: Record<'_>, out: &mut Emitter) -> Result {
                for w in record.value.split(|b| *b == b' ') {
                    // Key i gets i + 1 on each of its emits, so sums tell keys apart.
                    let i: u64 = std::str::from_utf8(&w[1..]).unwrap().parse().unwrap();
                    out.add(w, i + 1);
                }
                Ok(())
            }
        }
        impl Combiner for Counter {
            fn combine(
                &mut self,
                _k: &[u8],
                v: &mut Values<'_>,
                out: &mut ValueEmitter<'_>,
            ) -> Result {
                out.emit_u64(v.sum_u64()?);
                Ok(())
            }
        }
        let mut table = None;
        // 3,000 keys (the slot array grows from 1,024 to 8,192 slots while sums are running),
        // every key emitted once before the growth and twice after it.
        let keys: Vec<String> = (0..3000).map(|i| format!("k{i}")).collect();
        let line = keys.join(" ");
        let out =
            map_and_combine(&mut Counter, &mut table, &batch(&[&line, &line, &line])).unwrap();
        let got = pairs(&out);
        assert_eq!(got.len(), keys.len());
        for (i, (k, v)) in got.iter().enumerate() {
            assert_eq!(k, &keys[i]);
            assert_eq!(v, &(3 * (i as u64 + 1)).to_string(), "key {k}");
        }
    }
}
