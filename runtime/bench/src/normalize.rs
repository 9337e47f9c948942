//! Output equality: every system's output, whatever its layout, becomes the same canonical form
//! (sorted `key<TAB>value…` lines), which is summarised by its line count and SHA-256.
//!
//! - An output is a file, or a directory whose regular files are read in name order, skipping
//!   names that start with `_` or `.` (mr's `_MANIFEST` and `_mr/`, Spark's `_SUCCESS` and
//!   `.crc` files).
//! - Lines are split at `\n`; a final line without one counts. Lines are kept byte for byte
//!   (nothing is trimmed), except in the `uniq -c` layout, where `   12 word` becomes
//!   `word<TAB>12` and the empty word that `tr -cs` makes of leading separators is dropped.
//! - The lines are sorted as bytes and hashed, each followed by `\n`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// How a system lays out its output lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Already `key<TAB>value…`.
    Tsv,
    /// `uniq -c`: right-aligned count, one space, the word.
    UniqC,
}

/// The canonical form of one output, summarised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canonical {
    /// Number of lines.
    pub lines: u64,
    /// SHA-256 of the sorted lines, each followed by `\n`, in hex.
    pub sha256: String,
}

/// Reads, converts and sorts an output; returns its lines (borrowing `storage`).
pub fn sorted_lines<'a>(
    path: &Path,
    layout: Layout,
    storage: &'a mut Vec<u8>,
) -> Result<Vec<&'a [u8]>> {
    storage.clear();
    for file in output_files(path)? {
        let bytes =
            std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
        match layout {
            Layout::Tsv => {
                storage.extend_from_slice(&bytes);
                if !bytes.is_empty() && !bytes.ends_with(b"\n") {
                    storage.push(b'\n');
                }
            }
            Layout::UniqC => {
                for line in lines(&bytes) {
                    let trimmed = line.trim_ascii_start();
                    let space = trimmed.iter().position(|&b| b == b' ');
                    let (count, word) = match space {
                        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
                        None => (trimmed, &b""[..]),
                    };
                    if count.is_empty() || !count.iter().all(u8::is_ascii_digit) {
                        bail!(
                            "{}: not a `uniq -c` line: {:?}",
                            file.display(),
                            String::from_utf8_lossy(line)
                        );
                    }
                    if word.is_empty() {
                        continue;
                    }
                    storage.extend_from_slice(word);
                    storage.push(b'\t');
                    storage.extend_from_slice(count);
                    storage.push(b'\n');
                }
            }
        }
    }
    let mut sorted: Vec<&[u8]> = lines(storage).collect();
    sorted.sort_unstable();
    Ok(sorted)
}

/// The canonical form's summary.
pub fn canonical(path: &Path, layout: Layout) -> Result<Canonical> {
    let mut storage = Vec::new();
    let sorted = sorted_lines(path, layout, &mut storage)?;
    Ok(summarise(&sorted))
}

/// Line count and SHA-256 of sorted lines.
pub fn summarise(sorted: &[&[u8]]) -> Canonical {
    let mut hasher = Sha256::new();
    for line in sorted {
        hasher.update(line);
        hasher.update(b"\n");
    }
    Canonical {
        lines: sorted.len() as u64,
        sha256: hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    }
}

/// Where two sorted outputs first differ, in words (for the report).
pub fn first_difference(a_name: &str, a: &[&[u8]], b_name: &str, b: &[&[u8]]) -> Option<String> {
    let show = |line: Option<&&[u8]>| match line {
        Some(l) => format!("{:?}", String::from_utf8_lossy(l)),
        None => "no line".to_owned(),
    };
    let i = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i))?;
    Some(format!(
        "{} vs {} lines; first difference at sorted line {}: {a_name} has {}, {b_name} has {}",
        a.len(),
        b.len(),
        i + 1,
        show(a.get(i)),
        show(b.get(i))
    ))
}

/// The files that make up an output (see the module documentation).
pub fn output_files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    if !path.is_dir() {
        bail!("no output at {}", path.display());
    }
    let mut files = Vec::new();
    for entry in
        std::fs::read_dir(path).with_context(|| format!("cannot list {}", path.display()))?
    {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('_') || name.starts_with('.') || !entry.file_type()?.is_file() {
            continue;
        }
        files.push(entry.path());
    }
    files.sort();
    Ok(files)
}

/// The lines of `bytes`: split at `\n`, a final line without one counts, no empty last line.
fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    body.split(|&b| b == b'\n')
        .filter(move |_| !bytes.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, content: &str) {
        std::fs::write(dir.join(name), content).unwrap();
    }

    #[test]
    fn layouts_and_file_sets_normalise_to_the_same_form() {
        let root = tempfile::tempdir().unwrap();
        // mr: sorted part files plus bookkeeping.
        let mr = root.path().join("mr");
        std::fs::create_dir_all(mr.join("_mr")).unwrap();
        write(&mr, "part-00000", "a\t3\nthe\t2\n");
        write(&mr, "part-00001", "b\t1\n");
        write(&mr, "_MANIFEST", "{}");
        write(&mr.join("_mr"), "state.db", "x");
        // Spark: part files in any order, _SUCCESS and .crc files, no final newline.
        let spark = root.path().join("spark");
        std::fs::create_dir_all(&spark).unwrap();
        write(&spark, "part-00000-c000.csv", "the\t2\nb\t1");
        write(&spark, "part-00001-c000.csv", "a\t3\n");
        write(&spark, "_SUCCESS", "");
        write(&spark, ".part-00000-c000.csv.crc", "junk");
        // One file, unsorted.
        let native = root.path().join("native.tsv");
        std::fs::write(&native, "b\t1\nthe\t2\na\t3\n").unwrap();
        // coreutils: `uniq -c`, with the empty word of a leading separator.
        let uniq = root.path().join("uniq");
        std::fs::write(&uniq, "      1 \n      3 a\n      1 b\n      2 the\n").unwrap();

        let expected = canonical(&native, Layout::Tsv).unwrap();
        assert_eq!(expected.lines, 3);
        assert_eq!(canonical(&mr, Layout::Tsv).unwrap(), expected);
        assert_eq!(canonical(&spark, Layout::Tsv).unwrap(), expected);
        assert_eq!(canonical(&uniq, Layout::UniqC).unwrap(), expected);
    }

    #[test]
    fn any_difference_is_detected_and_located() {
        let root = tempfile::tempdir().unwrap();
        let reference = root.path().join("reference");
        std::fs::write(&reference, "a\t3\nb\t1\nthe\t2\n").unwrap();
        let base = canonical(&reference, Layout::Tsv).unwrap();
        for different in [
            "a\t3\nb\t1\nthe\t3\n",         // a count
            "a\t3\nb\t1\n",                 // a missing line
            "a\t3\nb\t1\nthe\t2\nthe\t2\n", // a duplicate line
            "a\t3\nb\t1\nthe\t2 \n",        // trailing white space
            "a\t3\nB\t1\nthe\t2\n",         // case
            "a,3\nb\t1\nthe\t2\n",          // separator
        ] {
            let other = root.path().join("other");
            std::fs::write(&other, different).unwrap();
            assert_ne!(
                canonical(&other, Layout::Tsv).unwrap(),
                base,
                "{different:?}"
            );
            let (mut s1, mut s2) = (Vec::new(), Vec::new());
            let a = sorted_lines(&reference, Layout::Tsv, &mut s1).unwrap();
            let b = sorted_lines(&other, Layout::Tsv, &mut s2).unwrap();
            let diff = first_difference("native", &a, "mr", &b).unwrap();
            assert!(diff.contains("first difference"), "{diff}");
        }
        let (mut s1, mut s2) = (Vec::new(), Vec::new());
        let a = sorted_lines(&reference, Layout::Tsv, &mut s1).unwrap();
        let b = sorted_lines(&reference, Layout::Tsv, &mut s2).unwrap();
        assert_eq!(first_difference("a", &a, "b", &b), None);
    }

    #[test]
    fn empty_and_missing_outputs() {
        let root = tempfile::tempdir().unwrap();
        let empty = root.path().join("empty");
        std::fs::write(&empty, "").unwrap();
        assert_eq!(canonical(&empty, Layout::Tsv).unwrap().lines, 0);
        let err = canonical(&root.path().join("nothing"), Layout::Tsv).unwrap_err();
        assert!(err.to_string().contains("no output"), "{err}");
        let bad = root.path().join("bad");
        std::fs::write(&bad, "word without count\n").unwrap();
        assert!(canonical(&bad, Layout::UniqC).is_err());
    }
}
