//! Helpers shared by the end-to-end tests: the `mr-host` binary, guests built from source, and
//! output readers.
#![allow(dead_code)]

pub mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn mr_host() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mr-host"));
    cmd.env("MR_CACHE_DIR", repo().join("target/test-component-cache"));
    // Python guests build with the interpreter scripts/setup-languages.sh prepared, unless the
    // caller chose one.
    if std::env::var_os("MR_PYTHON").is_none() {
        cmd.env("MR_PYTHON", python());
    }
    cmd
}

/// The Python interpreter with the Python SDK: `$MR_PYTHON`, else the virtualenv that
/// `scripts/setup-languages.sh` creates.
pub fn python() -> PathBuf {
    std::env::var_os("MR_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/lang/venv/bin/python"))
}

/// Builds a guest (a plugin under plugins/ or a fixture under tests/guests/, in any language)
/// with `mr-host build`, once per test process, and returns its component.
pub fn guest(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<Vec<(String, PathBuf)>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(Vec::new()));
    let mut built = built.lock().unwrap();
    if let Some((_, p)) = built.iter().find(|(n, _)| n == name) {
        return p.clone();
    }
    let dir = [
        repo().join("plugins").join(name),
        repo().join("tests/guests").join(name),
    ]
    .into_iter()
    .find(|d| d.is_dir())
    .unwrap_or_else(|| panic!("no guest named {name}"));
    let out = mr_host().arg("build").arg(&dir).output().unwrap();
    assert!(
        out.status.success(),
        "building {name} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    assert!(path.is_file(), "{} is missing", path.display());
    built.push((name.to_owned(), path.clone()));
    path
}

/// Arguments of `mr-host run JOB --input INPUT --output OUT EXTRA...`.
pub fn run_args(job: &Path, input: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["run", s(job), "--input", s(input), "--output", s(out)];
    args.extend_from_slice(extra);
    args.into_iter().map(str::to_owned).collect()
}

/// Arguments of `mr-host submit JOB -i INPUT -o OUT --db DB EXTRA...`.
pub fn submit_args(job: &Path, input: &Path, out: &Path, db: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "submit",
        s(job),
        "-i",
        s(input),
        "-o",
        s(out),
        "--db",
        s(db),
    ];
    args.extend_from_slice(extra);
    args.into_iter().map(str::to_owned).collect()
}

/// Runs `mr-host` and returns its output, asserting success.
pub fn run_ok<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(args: &[S]) -> Output {
    let out = mr_host().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "mr-host {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `mr-host`, asserts failure, returns stderr.
pub fn run_err<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(args: &[S]) -> String {
    let out = mr_host().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "mr-host {args:?} should have failed; stderr:\n{stderr}"
    );
    assert!(stderr.contains("error:"), "no error paragraph:\n{stderr}");
    stderr
}

/// The part files of an output directory, in order.
pub fn parts(dir: &Path) -> Vec<PathBuf> {
    let mut parts: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("part-")
        })
        .collect();
    parts.sort();
    parts
}

/// All output lines of all part files, each part asserted sorted by key bytes, then sorted.
pub fn sorted_lines(dir: &Path) -> Vec<String> {
    let mut all = Vec::new();
    for part in parts(dir) {
        let text = std::fs::read_to_string(&part).unwrap();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let keys: Vec<&[u8]> = lines
            .iter()
            .map(|l| l.split('\t').next().unwrap().as_bytes())
            .collect();
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "{} is not sorted by key",
            part.display()
        );
        all.extend(lines);
    }
    all.sort();
    all
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
