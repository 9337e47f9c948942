//! The benchmark's inputs, generated deterministically and kept between runs.
//!
//! - Word count: `corpus-BYTES.txt`, the mr-corpus text of `--size` bytes with seed 1.
//! - Group-by: `groupby-BYTES-KEYS.txt`, lines `key,value` until the file holds `--size` bytes.
//!   Line `i` has key id `(i * P) mod KEYS` for a prime `P` coprime to `KEYS`, so every key
//!   appears equally often (±1) and consecutive lines hit far-apart keys; the key is `k`
//!   followed by the id in at least 8 digits (`k00012345`). The value is uniform in `0..1000`
//!   from a SplitMix64 generator with a fixed seed.
//!
//! Files are written under a temporary name and renamed when complete, so an interrupted run
//! never leaves a truncated input behind to be reused.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use mr_corpus::SplitMix64;

/// Distinct group-by keys at 1 GiB; scaled linearly with the input size.
pub const KEYS_PER_GIB: u64 = 10_000_000;

/// The default number of distinct keys for a group-by input of `bytes` bytes: 10M per GiB.
pub fn default_keys(bytes: u64) -> u64 {
    ((u128::from(bytes) * u128::from(KEYS_PER_GIB) + (1 << 29)) >> 30).max(1) as u64
}

/// The word-count corpus (created if missing).
pub fn wordcount_input(dir: &Path, bytes: u64) -> Result<PathBuf> {
    let path = dir.join(format!("corpus-{bytes}.txt"));
    create_once(&path, |file| {
        let spec = mr_corpus::CorpusSpec {
            bytes,
            seed: 1,
            edge_cases: false,
        };
        mr_corpus::write_corpus(file, &spec)?;
        Ok(())
    })?;
    Ok(path)
}

/// The group-by input (created if missing).
pub fn groupby_input(dir: &Path, bytes: u64, keys: u64) -> Result<PathBuf> {
    let path = dir.join(format!("groupby-{bytes}-{keys}.txt"));
    create_once(&path, |file| write_groupby(file, bytes, keys))?;
    Ok(path)
}

pub(crate) fn create_once(
    path: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<()> {
    if path.is_file() {
        return Ok(());
    }
    let dir = path.parent().expect("a file in a directory");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let partial = path.with_extension("partial");
    let started = std::time::Instant::now();
    let mut file =
        File::create(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    write(&mut file)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, path)
        .with_context(|| format!("cannot rename {} into place", partial.display()))?;
    let bytes = std::fs::metadata(path)?.len();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "mr-bench: generated {} ({:.0} MB in {secs:.1} s, {:.0} MB/s)",
        path.display(),
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / secs.max(1e-9)
    );
    Ok(())
}

/// The prime multiplier of the key sequence (the golden-ratio prime of Knuth's multiplicative
/// hashing: `P mod KEYS` lands far from 0 and from `KEYS`, so neighbouring lines get distant
/// keys).
const KEY_PRIME: u64 = 2_654_435_761;
/// Fixed seed of the value generator.
const VALUE_SEED: u64 = 0x6D72_2D67_726F_7570; // "mr-group"

/// Writes `key,value` lines until at least `bytes` bytes (at most one line more).
pub fn write_groupby(out: &mut impl Write, bytes: u64, keys: u64) -> io::Result<()> {
    assert!(keys > 0);
    let step = coprime_step(keys);
    let mut rng = SplitMix64::new(VALUE_SEED);
    let mut buf: Vec<u8> = Vec::with_capacity((1 << 20) + 64);
    let mut written = 0u64;
    let mut key = 0u64;
    let mut digits = [0u8; 20];
    while written + (buf.len() as u64) < bytes {
        buf.push(b'k');
        push_padded(&mut buf, key, 8, &mut digits);
        buf.push(b',');
        let value = ((u128::from(rng.next_u64()) * 1000) >> 64) as u64;
        push_padded(&mut buf, value, 1, &mut digits);
        buf.push(b'\n');
        // key = (i * P) mod keys, incrementally; `step < keys`, so this cannot overflow for
        // keys < 2^63.
        key += step;
        if key >= keys {
            key -= keys;
        }
        if buf.len() >= 1 << 20 {
            out.write_all(&buf)?;
            written += buf.len() as u64;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.flush()
}

/// `P mod keys` for the first prime `P` (from [`KEY_PRIME`] on) that is coprime to `keys`.
fn coprime_step(keys: u64) -> u64 {
    let mut p = KEY_PRIME;
    loop {
        if gcd(p, keys) == 1 {
            return p % keys;
        }
        p = next_prime(p + 1);
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn next_prime(mut n: u64) -> u64 {
    let is_prime = |n: u64| {
        n >= 2
            && (2..)
                .take_while(|d| d * d <= n)
                .all(|d| !n.is_multiple_of(d))
    };
    while !is_prime(n) {
        n += 1;
    }
    n
}

/// Appends `n` in decimal, left-padded with zeros to at least `width` digits.
#[inline]
fn push_padded(buf: &mut Vec<u8>, mut n: u64, width: usize, digits: &mut [u8; 20]) {
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    while digits.len() - at < width {
        at -= 1;
        digits[at] = b'0';
    }
    buf.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn keys_scale_with_the_size() {
        assert_eq!(default_keys(1 << 30), 10_000_000);
        assert_eq!(default_keys(2 << 20), 19_531);
        assert_eq!(default_keys(1), 1);
    }

    #[test]
    fn every_key_appears_equally_often() {
        let keys = 1000;
        let mut out = Vec::new();
        write_groupby(&mut out, 200_000, keys).unwrap();
        assert!(out.len() >= 200_000 && out.len() < 200_100);
        let mut counts: HashMap<&[u8], u64> = HashMap::new();
        let mut lines = 0;
        for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let (key, value) = line.split_at(line.iter().position(|&b| b == b',').unwrap());
            let value: u64 = std::str::from_utf8(&value[1..]).unwrap().parse().unwrap();
            assert!(value < 1000);
            assert_eq!(key.len(), 9, "{}", String::from_utf8_lossy(key));
            *counts.entry(key).or_default() += 1;
            lines += 1;
        }
        assert_eq!(counts.len() as u64, keys);
        let (min, max) = (
            counts.values().min().unwrap(),
            counts.values().max().unwrap(),
        );
        assert!(max - min <= 1, "{min}..{max} over {lines} lines");
        // Neighbouring lines hit distant keys.
        assert!(out.starts_with(b"k00000000,"));
        let step = coprime_step(keys);
        assert!(step > keys / 10 && step < keys - keys / 10, "{step}");
    }

    #[test]
    fn the_same_arguments_give_the_same_bytes() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        write_groupby(&mut a, 50_000, 77).unwrap();
        write_groupby(&mut b, 50_000, 77).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn steps_are_coprime() {
        for keys in [1, 2, 3, 10, 97, 1000, 10_000_000, KEY_PRIME * 3] {
            let step = coprime_step(keys);
            assert!(step < keys);
            assert_eq!(gcd(step, keys), 1, "{keys}: {step}");
        }
    }
}
