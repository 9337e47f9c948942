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
/// compares two words instead of chasing the entry and its key bytes (most keys are short).
///
/// The table is open addressing with linear probing over a power-of-two array. A slot whose
/// `generation` is not the table's current one is empty, so emptying the table between batches
/// is one increment, not a sweep. (Measured against hashbrown's `HashTable`, whose portable
/// group probing Cranelift compiles less well, word count's table took 38% fewer instructions
/// under callgrind: 116 M instead of 186 M for 5 MB of text.)
#[derive(Clone, Copy, Default)]
struct Slot {
    head: [u64; 2],
    len: u32,
    entry: u32,
    generation: u32,
}

/// The first 16 bytes of a key as two little-endian words, zero-padded. Built with shifts
/// rather than `copy_from_slice`: in wasm a variable-length copy becomes a `memory.copy`, which
/// the runtime implements as a call, far too costly for a 5-byte word.
#[inline]
fn head(key: &[u8]) -> [u64; 2] {
    let mut h = [0u64; 2];
    if key.len() >= 16 {
        h[0] = u64::from_le_bytes(key[..8].try_into().expect("8 bytes"));
        h[1] = u64::from_le_bytes(key[8..16].try_into().expect("8 bytes"));
        return h;
    }
    let (lo, hi) = key.split_at(key.len().min(8));
    if lo.len() == 8 {
        h[0] = u64::from_le_bytes(lo.try_into().expect("8 bytes"));
    } else {
        for (j, &b) in lo.iter().enumerate() {
            h[0] |= u64::from(b) << (8 * j);
        }
    }
    for (j, &b) in hi.iter().enumerate() {
        h[1] |= u64::from(b) << (8 * j);
    }
    h
}

#[derive(Default)]
struct Entry {
    key_at: u32,
    key_len: u32,
    hash: u64,
    /// Framed (length-prefixed) values not yet combined.
    values: Vec<u8>,
    count: u32,
    /// The running sum of values given with `Emitter::add`, not yet among `values`.
    sum: Option<u64>,
    /// `count` at which this entry is combined next.
    combine_at: u32,
}

/// The per-batch combining table (its allocations are reused from batch to batch).
#[derive(Default)]
pub(crate) struct CombineTable {
    slots: Vec<Slot>,
    /// Slots of the current batch have this generation; others are empty.
    generation: u32,
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
        let i = self.entry(key);
        let e = &mut self.entries[i];
        mr_codec::put_value(&mut e.values, value);
        e.count += 1;
        if e.count == e.combine_at {
            self.due.push(i as u32);
        }
    }

    /// Adds `n` to the running sum of `key` (see [`Emitter::add`]).
    #[inline]
    pub(crate) fn add_sum(&mut self, key: &[u8], n: u64) {
        self.emits += 1;
        let i = self.entry(key);
        let e = &mut self.entries[i];
        match e.sum.and_then(|s| s.checked_add(n)) {
            Some(total) => e.sum = Some(total),
            None if e.sum.is_none() => e.sum = Some(n),
            None => {
                // Overflow: keep the full sum as a value of its own and start again.
                let full = e.sum.replace(n).expect("checked above");
                let mut digits = [0u8; 20];
                mr_codec::put_value(&mut e.values, crate::format_u64(full, &mut digits));
                e.count += 1;
                if e.count == e.combine_at {
                    self.due.push(i as u32);
                }
            }
        }
    }

    /// The entry of `key`, created empty if new.
    #[inline]
    fn entry(&mut self, key: &[u8]) -> usize {
        let head = head(key);
        let len = key.len() as u32;
        let hash = if key.len() <= 16 {
            let h = (head[0] ^ u64::from(len).rotate_left(56)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let h = (h.rotate_left(5) ^ head[1]).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            h ^ (h >> 32)
        } else {
            key_hash(key)
        };
        if (self.used + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut at = hash as usize & mask;
        loop {
            let slot = &self.slots[at];
            if slot.generation != self.generation {
                break;
            }
            if slot.head == head
                && slot.len == len
                && (len <= 16 || {
                    // A longer key matched on its first 16 bytes: compare the whole of it.
                    let e = &self.entries[slot.entry as usize];
                    &self.keys[e.key_at as usize..(e.key_at + e.key_len) as usize] == key
                })
            {
                return slot.entry as usize;
            }
            at = (at + 1) & mask;
        }
        let i = self.used;
        if i == self.entries.len() {
            self.entries.push(Entry::default());
        }
        let key_at = u32::try_from(self.keys.len()).expect("a map batch's keys stay below 4 GiB");
        self.keys.extend_from_slice(key);
        let e = &mut self.entries[i];
        e.key_at = key_at;
        e.key_len = key.len() as u32;
        e.hash = hash;
        e.values.clear();
        e.count = 0;
        e.sum = None;
        e.combine_at = COMBINE_AT;
        self.slots[at] = Slot {
            head,
            len,
            entry: i as u32,
            generation: self.generation,
        };
        self.used += 1;
        i
    }

    /// Doubles the slot array (at least 1024 slots) and re-inserts the live entries.
    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(1024);
        self.slots = vec![Slot::default(); size];
        self.generation = 1;
        let mask = size - 1;
        for (i, e) in self.entries[..self.used].iter().enumerate() {
            let key = &self.keys[e.key_at as usize..(e.key_at + e.key_len) as usize];
            let mut at = e.hash as usize & mask;
            while self.slots[at].generation == self.generation {
                at = (at + 1) & mask;
            }
            self.slots[at] = Slot {
                head: head(key),
                len: e.key_len,
                entry: i as u32,
                generation: self.generation,
            };
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
            if let Some(sum) = e.sum.take() {
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
}
