//! `mr-corpus`: writes a deterministic text corpus (see the `mr_corpus` library).
//!
//! ```text
//! mr-corpus --bytes SIZE [--seed N] [--edge-cases] [--files N] --out PATH
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use mr_corpus::{CorpusSpec, parse_size, write_corpus, write_corpus_files};

const USAGE: &str = "\
usage: mr-corpus --bytes SIZE [--seed N] [--edge-cases] [--files N] --out PATH

Writes a deterministic text corpus of at least SIZE bytes (at most one line more).

  --bytes SIZE    total size: 1000, 64k, 100M, 256MiB, 1G (K/M/G/T are powers of 1024)
  --seed N        seed of the generator (default 0); decimal or 0x-prefixed hex
  --edge-cases    include empty lines, CRLF, non-ASCII words, tabs, very long lines and no
                  final newline
  --files N       with N > 1, write N files part-000.txt, ... into the directory PATH
                  (default 1: a single file at PATH)
  --out PATH      output file, or directory with --files N > 1 (parent directories are created)
  -h, --help      print this help";

struct Args {
    bytes: u64,
    seed: u64,
    edge_cases: bool,
    files: usize,
    out: PathBuf,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut bytes = None;
    let mut seed = 0u64;
    let mut edge_cases = false;
    let mut files = 1usize;
    let mut out = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args.next().ok_or_else(|| format!("{name} needs a value")),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--bytes" => bytes = Some(parse_size(&value("--bytes")?)?),
            "--seed" => {
                let v = value("--seed")?;
                let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
                    Some(hex) => u64::from_str_radix(hex, 16),
                    None => v.parse(),
                };
                seed = parsed.map_err(|_| {
                    format!("invalid --seed {v:?}: expected an unsigned 64-bit integer")
                })?;
            }
            "--edge-cases" => {
                if inline.is_some() {
                    return Err("--edge-cases takes no value".to_string());
                }
                edge_cases = true;
            }
            "--files" => {
                let v = value("--files")?;
                files = match v.parse::<usize>() {
                    Ok(n) if n >= 1 => n,
                    _ => return Err(format!("invalid --files {v:?}: expected an integer >= 1")),
                };
            }
            "--out" => {
                let v = value("--out")?;
                if v.is_empty() {
                    return Err("--out needs a non-empty path".to_string());
                }
                out = Some(PathBuf::from(v));
            }
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    Ok(Some(Args {
        bytes: bytes.ok_or("missing --bytes SIZE")?,
        seed,
        edge_cases,
        files,
        out: out.ok_or("missing --out PATH")?,
    }))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            let synopsis = USAGE.lines().next().unwrap_or_default();
            eprintln!("mr-corpus: {message}\n{synopsis}\n(mr-corpus --help for details)");
            return ExitCode::from(2);
        }
    };
    let spec = CorpusSpec {
        bytes: args.bytes,
        seed: args.seed,
        edge_cases: args.edge_cases,
    };
    let started = Instant::now();
    let written = if args.files > 1 {
        write_corpus_files(&args.out, args.files, &spec).and_then(|paths| {
            paths
                .iter()
                .map(|p| std::fs::metadata(p).map(|m| m.len()))
                .sum::<std::io::Result<u64>>()
        })
    } else {
        let create = || -> std::io::Result<u64> {
            if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            let file = std::fs::File::create(&args.out)?;
            write_corpus(file, &spec)
        };
        create()
    };
    let written = match written {
        Ok(n) => n,
        Err(e) => {
            eprintln!("mr-corpus: cannot write {}: {e}", args.out.display());
            return ExitCode::FAILURE;
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "mr-corpus: wrote {written} bytes in {} file{} to {} ({:.2} s, {:.0} MB/s, seed {}{})",
        args.files,
        if args.files == 1 { "" } else { "s" },
        args.out.display(),
        seconds,
        written as f64 / 1e6 / seconds.max(1e-9),
        args.seed,
        if args.edge_cases { ", edge cases" } else { "" },
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Args>, String> {
        parse_args(args.iter().map(|s| (*s).to_string()))
    }

    #[test]
    fn parses_all_flags() {
        let a = parse(&[
            "--bytes",
            "64k",
            "--seed=0x10",
            "--edge-cases",
            "--files",
            "3",
            "--out",
            "d",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            (a.bytes, a.seed, a.edge_cases, a.files),
            (65_536, 16, true, 3)
        );
        assert_eq!(a.out, PathBuf::from("d"));
        let a = parse(&["--out=f.txt", "--bytes=1000"]).unwrap().unwrap();
        assert_eq!(
            (a.bytes, a.seed, a.edge_cases, a.files),
            (1000, 0, false, 1)
        );
        assert!(parse(&["--help"]).unwrap().is_none());
    }

    #[test]
    fn rejects_bad_arguments() {
        for (args, needle) in [
            (&["--out", "f"][..], "missing --bytes"),
            (&["--bytes", "1k"][..], "missing --out"),
            (&["--bytes", "1q", "--out", "f"][..], "\"1q\""),
            (&["--bytes"][..], "--bytes needs a value"),
            (
                &["--bytes", "1k", "--out", "f", "--files", "0"][..],
                "--files",
            ),
            (
                &["--bytes", "1k", "--out", "f", "--seed", "x"][..],
                "--seed",
            ),
            (
                &["--bytes", "1k", "--out", "f", "--frobnicate"][..],
                "--frobnicate",
            ),
        ] {
            let err = parse(args).err().unwrap_or_default();
            assert!(err.contains(needle), "{args:?}: {err:?}");
        }
    }
}
