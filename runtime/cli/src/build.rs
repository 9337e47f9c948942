//! `mr-host build`: compiles a job project to a WebAssembly component.
//!
//! The project's language is told by its manifest, checked in this order:
//! - `Cargo.toml`: Rust. `cargo build --release --target wasm32-wasip2` emits a component
//!   directly; the component's path is read from cargo's JSON messages rather than guessed from
//!   the target directory layout.
//! - `pyproject.toml`: Python ([`python`]), built by the Python SDK with componentize-py.
//! - `package.json`: JavaScript ([`js`]), built by the JavaScript SDK with componentize-js.

pub mod js;
pub mod python;
pub mod sdk;
pub mod stale;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The languages `mr-host build` and `mr-host new` know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// A Rust crate (Cargo.toml).
    Rust,
    /// A Python project (pyproject.toml with a [tool.mr] table).
    Python,
    /// A JavaScript project (package.json with an "mr" field).
    Js,
}

/// The language of the project in `dir`, by its manifest.
pub fn detect(dir: &Path) -> Result<Lang> {
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let markers = [
        ("Cargo.toml", Lang::Rust),
        ("pyproject.toml", Lang::Python),
        ("package.json", Lang::Js),
    ];
    match markers.iter().find(|(file, _)| dir.join(file).is_file()) {
        Some(&(_, lang)) => Ok(lang),
        None => bail!(
            "{} is not a job project: it has no Cargo.toml (Rust), pyproject.toml (Python) or package.json (JavaScript); `mr-host new NAME --lang rust|python|js` creates one",
            dir.display()
        ),
    }
}

/// Builds the project in `dir` and returns the component's path (copied to `output` if given).
/// A Python or JavaScript build is recorded for `mr-host run DIR` (see [`stale`]).
pub fn build(dir: &Path, output: Option<&Path>) -> Result<PathBuf> {
    let component = match detect(dir)? {
        Lang::Rust => return build_rust(dir, output),
        Lang::Python => python::build(dir, output)?,
        Lang::Js => js::build(dir, output)?,
    };
    stale::record_build(dir, &component)?;
    Ok(component)
}

/// This repository's checkout, as of when `mr-host` was compiled, if it is still there: where
/// the SDKs are found when a project does not bring its own. A moved or installed binary has
/// none, and says so in its errors.
pub fn source_tree() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.join("wit/job.wit")
        .is_file()
        .then(|| root.canonicalize().ok())
        .flatten()
}

/// Runs a toolchain setup command (`python3 -m venv`, `pip install`, `npm install`) with its
/// output shown on stderr (stdout is for the component's path); an error names it.
fn run_setup(cmd: &mut Command, what: &str, dir: &Path) -> Result<()> {
    let status = cmd
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .status()
        .with_context(|| format!("cannot run {what} in {}", dir.display()))?;
    if !status.success() {
        bail!(
            "{what} failed in {} ({status}); its own message is above",
            dir.display()
        );
    }
    Ok(())
}

/// Runs an SDK's build command (stdin closed, its stderr shown to the user) and returns the
/// component path it prints as the last line of its stdout.
fn run_sdk_build(mut cmd: Command, what: &str, dir: &Path) -> Result<PathBuf> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed for {} ({}); its own message is above",
            dir.display(),
            out.status
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let path = stdout.lines().rev().map(str::trim).find(|l| !l.is_empty());
    match path.map(PathBuf::from) {
        Some(path) if path.is_file() => Ok(path),
        _ => bail!(
            "{what} succeeded for {} but printed no component path (stdout: {stdout:?})",
            dir.display()
        ),
    }
}

fn build_rust(dir: &Path, output: Option<&Path>) -> Result<PathBuf> {
    let manifest = dir.join("Cargo.toml");
    let manifest = manifest
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", manifest.display()))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo (is Rust installed?)")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "cargo build failed for {} (status {}); if it says the wasm32-wasip2 target may not be installed, run `rustup target add wasm32-wasip2`",
            dir.display(),
            out.status
        );
    }
    let mut component = None;
    for line in stdout.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let same_manifest = msg["manifest_path"]
            .as_str()
            .and_then(|p| Path::new(p).canonicalize().ok())
            .is_some_and(|p| p == manifest);
        if !same_manifest {
            continue;
        }
        if let Some(files) = msg["filenames"].as_array() {
            for f in files.iter().filter_map(|f| f.as_str()) {
                if f.ends_with(".wasm") {
                    component = Some(PathBuf::from(f));
                }
            }
        }
    }
    let Some(component) = component else {
        bail!(
            "cargo built {} but produced no .wasm; a job crate needs `[lib] crate-type = [\"cdylib\"]`",
            dir.display()
        );
    };
    match output {
        Some(dest) => {
            std::fs::copy(&component, dest).with_context(|| {
                format!("cannot copy {} to {}", component.display(), dest.display())
            })?;
            Ok(dest.to_owned())
        }
        None => Ok(component),
    }
}
