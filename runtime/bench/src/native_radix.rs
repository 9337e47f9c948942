//! The partition-first native group-by (`mr-bench native groupby INPUT OUTPUT --radix`): what
//! native code can do when memory is no object, as a second reference beside the hash-table one.
//!
//! 1. Each thread reads its byte range (as [`crate::native`] does) and scatters every record,
//!    `[key length u32][key][value u64]`, into one of 256 buffers by the top byte of the key's
//!    XXH3 hash. Appending is sequential per buffer: no hash table, no random access.
//! 2. Threads then take partitions one at a time and aggregate that partition of every thread
//!    in one `hashbrown::HashTable` keyed by slices of the buffers. A partition holds 1/256 of
//!    the keys (39K of 10M), so its table stays in cache, where the one-table reference misses
//!    it on most records.
//! 3. The formatted partitions are written in partition order, unsorted within.
//!
//! Semantics equal the other reference and mr's `plugins/groupby`.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use hashbrown::HashTable;
use xxhash_rust::xxh3::xxh3_64;

use crate::native::{for_each_key_value, push_u64};

/// Partitions of the key space (the hash's top byte).
const PARTITIONS: usize = 256;

/// Per-key count and sum of `input`'s `key,value` lines into `output`, partition first.
pub fn groupby(input: &Path, output: &Path, threads: usize) -> Result<()> {
    let threads = threads.max(1);
    // Phase 1: scatter.
    let scattered = crate::native::per_thread_ranges(
        input,
        threads,
        || vec![Vec::new(); PARTITIONS],
        |piece, offset, parts: &mut Vec<Vec<u8>>| scatter(piece, offset, parts),
    )?;
    // Phase 2: aggregate partition by partition.
    let next = AtomicUsize::new(0);
    let mut formatted: Vec<(usize, Vec<u8>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (scattered, next) = (&scattered, &next);
                s.spawn(move || -> Result<Vec<(usize, Vec<u8>)>> {
                    let mut done = Vec::new();
                    loop {
                        let p = next.fetch_add(1, Ordering::Relaxed);
                        if p >= PARTITIONS {
                            return Ok(done);
                        }
                        done.push((p, aggregate(scattered.iter().map(|t| &t[p][..]))?));
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.join().expect("aggregate thread panicked")?);
        }
        Ok::<_, anyhow::Error>(all)
    })?;
    formatted.sort_by_key(|(p, _)| *p);
    let parts: Vec<Vec<u8>> = formatted.into_iter().map(|(_, text)| text).collect();
    crate::native::write_parts(output, &parts)
}

/// Appends each line of `piece` (starting at byte `offset` of the input) to its partition.
fn scatter(piece: &[u8], offset: u64, parts: &mut [Vec<u8>]) -> Result<()> {
    for_each_key_value(piece, offset, |key, value| {
        let part = &mut parts[(xxh3_64(key) >> 56) as usize];
        part.extend_from_slice(&u32::try_from(key.len())?.to_le_bytes());
        part.extend_from_slice(key);
        part.extend_from_slice(&value.to_le_bytes());
        Ok(())
    })
}

/// Aggregates one partition of every thread; returns its `key<TAB>count<TAB>sum` lines.
fn aggregate<'a>(pieces: impl Iterator<Item = &'a [u8]> + Clone) -> Result<Vec<u8>> {
    let bytes: usize = pieces.clone().map(<[u8]>::len).sum();
    // About a fifth of the records are new keys in the benchmark; the table grows if not.
    let mut table: HashTable<(&[u8], u64, u64)> = HashTable::with_capacity(bytes / 21 / 4);
    for mut piece in pieces {
        while !piece.is_empty() {
            let len = u32::from_le_bytes(piece[..4].try_into().expect("4 bytes")) as usize;
            let key = &piece[4..4 + len];
            let value = u64::from_le_bytes(piece[4 + len..12 + len].try_into().expect("8 bytes"));
            piece = &piece[12 + len..];
            let hash = xxh3_64(key);
            match table.find_mut(hash, |e| e.0 == key) {
                Some(e) => {
                    e.1 += 1;
                    e.2 = e.2.checked_add(value).with_context(|| {
                        format!(
                            "the sum of key {:?} overflows u64",
                            String::from_utf8_lossy(key)
                        )
                    })?;
                }
                None => {
                    table.insert_unique(hash, (key, 1, value), |e| xxh3_64(e.0));
                }
            }
        }
    }
    let mut out = Vec::with_capacity(table.len() * 24);
    for (key, count, sum) in table.iter() {
        out.extend_from_slice(key);
        out.push(b'\t');
        push_u64(&mut out, *count);
        out.push(b'\t');
        push_u64(&mut out, *sum);
        out.push(b'\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_the_hash_table_reference() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.txt");
        let mut text = String::new();
        for i in 0..50_000u64 {
            text += &format!("k{},{}\r\n", (i * 7919) % 3001, i % 1000);
        }
        text += "x,y,5\n,7";
        std::fs::write(&input, text).unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        groupby(&input, &a, 3).unwrap();
        crate::native::groupby(&input, &b, 2).unwrap();
        let sorted = |p: &Path| {
            let mut lines: Vec<String> = std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect();
            lines.sort();
            lines
        };
        let got = sorted(&a);
        assert_eq!(got.len(), 3003);
        assert!(got.contains(&"x,y\t1\t5".to_string()), "{:?}", &got[..3]);
        assert_eq!(got, sorted(&b));
    }

    #[test]
    fn a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.txt");
        std::fs::write(&input, "a,1\nb,x\n").unwrap();
        let e = groupby(&input, &dir.path().join("o"), 1).unwrap_err();
        assert!(e.to_string().contains("byte 4"), "{e}");
    }
}
