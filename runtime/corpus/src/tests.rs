use super::*;

fn corpus(bytes: u64, seed: u64, edge_cases: bool) -> Vec<u8> {
    let spec = CorpusSpec {
        bytes,
        seed,
        edge_cases,
    };
    let mut out = Vec::new();
    let n = write_corpus(&mut out, &spec).unwrap();
    assert_eq!(n, out.len() as u64, "returned count matches bytes written");
    out
}

/// Lines split on `\n` only (a CRLF line keeps its `\r`).
fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(|&b| b == b'\n')
}

fn max_line(text: &[u8]) -> usize {
    lines(text).map(<[u8]>::len).max().unwrap_or(0)
}

#[test]
fn same_seed_same_bytes() {
    for edge in [false, true] {
        let a = corpus(300_000, 7, edge);
        let b = corpus(300_000, 7, edge);
        assert_eq!(a, b);
    }
}

#[test]
fn different_seed_different_bytes() {
    for edge in [false, true] {
        let a = corpus(100_000, 1, edge);
        let b = corpus(100_000, 2, edge);
        assert_ne!(a[..1000], b[..1000]);
    }
}

#[test]
fn output_does_not_depend_on_the_writer_chunking() {
    // Larger than the internal flush threshold, so several chunks reach the writer.
    struct Chunks(Vec<u8>, usize);
    impl Write for Chunks {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(777);
            self.0.extend_from_slice(&buf[..n]);
            self.1 += 1;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let spec = CorpusSpec {
        bytes: 3 << 20,
        seed: 11,
        edge_cases: true,
    };
    let mut chunks = Chunks(Vec::new(), 0);
    write_corpus(&mut chunks, &spec).unwrap();
    assert_eq!(chunks.0, corpus(3 << 20, 11, true));
}

#[test]
fn a_prefix_of_a_larger_corpus() {
    // Generation does not look at the size except to stop (and, with edge cases, to place the
    // last lines), so a smaller plain corpus is a prefix of a larger one.
    let small = corpus(50_000, 3, false);
    let large = corpus(500_000, 3, false);
    assert!(large.starts_with(&small));
}

#[test]
fn size_bounds() {
    for edge in [false, true] {
        for bytes in [
            1, 2, 3, 5, 40, 100, 1000, 4097, 65_536, 1_000_000, 2_500_000,
        ] {
            for seed in 0..4 {
                let out = corpus(bytes, seed, edge);
                let len = out.len() as u64;
                assert!(
                    len >= bytes,
                    "edge={edge} bytes={bytes} seed={seed}: {len} < {bytes}"
                );
                // At most one line more: the last line (plus its terminator) is what crosses.
                let last = if edge {
                    out.rsplit(|&b| b == b'\n').next().unwrap().len()
                } else {
                    out[..out.len() - 1]
                        .rsplit(|&b| b == b'\n')
                        .next()
                        .unwrap()
                        .len()
                        + 1
                };
                assert!(
                    len - (last as u64) < bytes,
                    "edge={edge} bytes={bytes} seed={seed}: {len} bytes, last line {last}"
                );
            }
        }
    }
}

#[test]
fn zero_bytes_writes_nothing() {
    assert!(corpus(0, 1, false).is_empty());
    assert!(corpus(0, 1, true).is_empty());
}

#[test]
fn plain_corpus_is_ascii_lines_ending_in_newline() {
    let out = corpus(1_000_000, 5, false);
    assert!(out.is_ascii());
    assert_eq!(out.last(), Some(&b'\n'));
    assert!(!out.contains(&b'\r'));
    assert!(!out.contains(&b'\t'));
    let body = &out[..out.len() - 1];
    let mut count = 0;
    let mut total = 0;
    for line in lines(body) {
        assert!(!line.is_empty(), "no empty lines without edge cases");
        assert!(line.len() <= 250, "line of {} bytes", line.len());
        assert_ne!(line[0], b' ', "no leading space");
        assert_ne!(*line.last().unwrap(), b' ', "no trailing space");
        count += 1;
        total += line.len();
    }
    let average = total / count;
    assert!(
        (40..=120).contains(&average),
        "average line length {average}"
    );
}

#[test]
fn plain_corpus_has_case_digits_and_punctuation() {
    let out = corpus(500_000, 9, false);
    let text = std::str::from_utf8(&out).unwrap();
    let words: Vec<&str> = text
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .collect();
    assert!(
        words
            .iter()
            .any(|w| w.chars().all(|c| c.is_ascii_lowercase()))
    );
    assert!(words.iter().any(|w| {
        w.len() > 1
            && w.starts_with(|c: char| c.is_ascii_uppercase())
            && w[1..].chars().all(|c| c.is_ascii_lowercase())
    }));
    assert!(
        words
            .iter()
            .any(|w| w.len() > 2 && w.chars().all(|c| c.is_ascii_uppercase()))
    );
    assert!(
        words
            .iter()
            .any(|w| w.eq_ignore_ascii_case("r2d2") || w.chars().any(|c| c.is_ascii_digit()))
    );
    for p in [',', '.', ';', ':', '!', '?', '\'', '"', '(', ')', '-'] {
        assert!(text.contains(p), "missing {p:?}");
    }
    // Zipf: "the" is by far the most common word.
    let the = words
        .iter()
        .filter(|w| w.eq_ignore_ascii_case("the"))
        .count();
    let share = the as f64 / words.len() as f64;
    assert!((0.07..0.15).contains(&share), "share of 'the': {share}");
}

#[test]
fn edge_corpus_properties() {
    let out = corpus(2 << 20, 42, true);
    let text = std::str::from_utf8(&out).expect("edge corpus is valid UTF-8");
    assert!(text.contains("\r\n"), "CRLF");
    assert!(!text.is_ascii(), "non-ASCII words");
    assert!(text.contains('\t'), "tabs");
    assert!(
        text.contains("\n\n") || text.contains("\n\r\n"),
        "an empty line"
    );
    assert!(!text.ends_with('\n'), "no final newline");
    assert!(max_line(&out) > 100_000, "a very long line");
    assert!(max_line(&out) <= 310_000, "long lines stay near 300 KB");
    let unicode_seen = UNICODE_WORDS
        .iter()
        .filter(|w| text.contains(*w) || text.contains(&w.to_uppercase()))
        .count();
    assert!(
        unicode_seen > UNICODE_WORDS.len() / 2,
        "{unicode_seen} non-ASCII words seen"
    );
}

#[test]
fn small_edge_corpus_still_has_edge_cases() {
    for seed in 0..20 {
        let out = corpus(4096, seed, true);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.contains("\r\n"));
        assert!(!text.is_ascii());
        assert!(text.contains('\t'));
        assert!(text.contains("\r\n\n"), "second line is empty");
        assert!(!text.ends_with('\n') && !text.ends_with('\r'));
    }
}

#[test]
fn edge_corpus_never_ends_with_a_terminator() {
    for seed in 0..50 {
        for bytes in [1, 2, 3, 7, 50, 333, 10_000] {
            let out = corpus(bytes, seed, true);
            assert!(out.len() as u64 >= bytes);
            let last = *out.last().unwrap();
            assert!(last != b'\n' && last != b'\r', "seed {seed} bytes {bytes}");
        }
    }
}

#[test]
fn vocabulary_is_fully_reachable() {
    let v = vocab();
    assert!(v.ascii_words > 4000 && v.ascii_words < 5000);
    let mut reached = vec![false; v.ascii_words];
    for &w in &v.zipf {
        reached[usize::from(w)] = true;
    }
    assert!(reached.iter().all(|&r| r));
    assert_eq!(v.render(0, LOWER), b"the");
    assert_eq!(v.render(0, TITLE), b"The");
    assert_eq!(v.render(0, UPPER), b"THE");
    for w in 0..v.ascii_words {
        for case in [LOWER, TITLE, UPPER] {
            let r = v.render(w, case);
            assert!(!r.is_empty() && r.is_ascii() && !r.contains(&b' '));
        }
    }
}

#[test]
fn files_split_the_size_and_derive_seeds() {
    let dir = std::env::temp_dir().join(format!("mr-corpus-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let spec = CorpusSpec {
        bytes: 100_003,
        seed: 99,
        edge_cases: false,
    };
    let paths = write_corpus_files(&dir.join("nested"), 4, &spec).unwrap();
    let names: Vec<_> = paths
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "part-000.txt",
            "part-001.txt",
            "part-002.txt",
            "part-003.txt"
        ]
    );
    let contents: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    for (i, c) in contents.iter().enumerate() {
        let share = if i < 3 { 25_001 } else { 25_000 };
        assert_eq!(*c, corpus(share, file_seed(99, i), false));
    }
    assert_ne!(contents[0][..200], contents[1][..200]);
    // Deterministic across runs.
    let again = write_corpus_files(&dir.join("nested"), 4, &spec).unwrap();
    for (p, c) in again.iter().zip(&contents) {
        assert_eq!(std::fs::read(p).unwrap(), *c);
    }
    assert!(write_corpus_files(&dir, 0, &spec).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn file_seeds_differ() {
    let seeds: HashSet<u64> = (0..1000).map(|i| file_seed(0, i)).collect();
    assert_eq!(seeds.len(), 1000);
    assert_ne!(file_seed(1, 0), file_seed(2, 0));
}

#[test]
fn parse_size_accepts() {
    let cases: &[(&str, u64)] = &[
        ("1000", 1000),
        ("0", 0),
        ("1000B", 1000),
        ("64k", 64 << 10),
        ("64K", 64 << 10),
        ("64KB", 64 << 10),
        ("64kib", 64 << 10),
        ("100M", 100 << 20),
        ("100m", 100 << 20),
        ("256MiB", 256 << 20),
        ("256MB", 256 << 20),
        ("1G", 1 << 30),
        ("1gib", 1 << 30),
        ("2T", 2 << 40),
        (" 10M ", 10 << 20),
    ];
    for &(input, expected) in cases {
        assert_eq!(parse_size(input), Ok(expected), "{input:?}");
    }
}

#[test]
fn parse_size_rejects() {
    for input in [
        "",
        "  ",
        "M",
        "abc",
        "10X",
        "1.5G",
        "-1",
        "10 M",
        "10MiBB",
        "1iB",
        "99999999999999999999",
        "20000000000G",
    ] {
        let err = parse_size(input).expect_err(input);
        assert!(
            err.contains(&format!("{input:?}")),
            "{err:?} names {input:?}"
        );
    }
}
