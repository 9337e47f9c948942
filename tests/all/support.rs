//! Helpers shared by the end-to-end tests: the `mr-host` binary, guests built from source, and
//! output readers.
#![allow(dead_code)]

#[path = "server.rs"]
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
    // A guest that failed to build panics its test while holding the lock; the list stays
    // valid, so later tests go on (and fail on their own account, not on a poisoned lock).
    let mut built = built
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
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

/// A real S3-compatible server (`mr_io::test_server::S3Server`: s3s-fs, installed by
/// `scripts/setup-services.sh`) serving a temporary directory, with one bucket (`bucket`);
/// stopped when dropped. Panics, never skips, when it cannot start.
pub struct S3Server {
    server: mr_io::test_server::S3Server,
    /// The directory it serves: `root/BUCKET/KEY` is object `s3://BUCKET/KEY`.
    pub root: tempfile::TempDir,
    /// `http://ADDRESS:PORT`.
    pub endpoint: String,
}

impl S3Server {
    /// A server on a free loopback port.
    pub fn start() -> S3Server {
        S3Server::start_at(None, "127.0.0.1", None)
    }

    /// A server listening on `address:port`, inside network namespace `netns` when one is
    /// given (a simulated host; `address` must then be reachable from this process).
    pub fn start_at(netns: Option<&str>, address: &str, port: Option<u16>) -> S3Server {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("bucket")).unwrap();
        let server = mr_io::test_server::S3Server::start(root.path(), netns, address, port)
            .unwrap_or_else(|e| panic!("{e}"));
        S3Server {
            endpoint: server.endpoint.clone(),
            server,
            root,
        }
    }

    /// The environment every S3 tool reads, pointing at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        self.server.env()
    }

    /// `mr-host` with this server's environment.
    pub fn mr_host(&self) -> Command {
        let mut cmd = mr_host();
        cmd.envs(self.env());
        cmd
    }

    /// Puts a local file at `s3://bucket/KEY` (through the directory the server serves).
    pub fn put(&self, key: &str, bytes: &[u8]) {
        let path = self.root.path().join("bucket").join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// The bytes of `s3://bucket/KEY`, `None` when there is no such object.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.root.path().join("bucket").join(key)).ok()
    }
}

/// A TCP port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `lines` lines of `per_line` words from an eight-word vocabulary, deterministic in `seed`:
/// small, highly compressible text whose batches combine heavily.
pub fn few_words(lines: usize, per_line: usize, seed: u64) -> Vec<u8> {
    let vocab = [
        "alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta",
    ];
    let mut x = seed | 1;
    let mut text = String::new();
    for _ in 0..lines {
        for w in 0..per_line {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if w > 0 {
                text.push(' ');
            }
            text.push_str(vocab[(x % vocab.len() as u64) as usize]);
        }
        text.push('\n');
    }
    text.into_bytes()
}

/// `data` gzip-compressed (one member).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Fails with the install command when the Python toolchain (the SDK with componentize-py) is
/// missing: tests that need it never skip.
pub fn require_python() {
    let python = python();
    let ok = Command::new(&python)
        .args(["-c", "import mr_sdk.build, componentize_py"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{} has no Python SDK with componentize-py: run ./scripts/setup-languages.sh (or set MR_PYTHON to an interpreter where `pip install sdk/python` was done)",
        python.display()
    );
}
