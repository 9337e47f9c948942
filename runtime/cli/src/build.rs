//! `mr-host build`: compiles a job project to a WebAssembly component.
//!
//! Rust projects (a `Cargo.toml`) build with `cargo build --release --target wasm32-wasip2`,
//! which emits a component directly; the component's path is read from cargo's JSON messages
//! rather than guessed from the target directory layout.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

pub fn build(dir: &Path, output: Option<&Path>) -> Result<PathBuf> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        bail!(
            "{} is not a job project: it has no Cargo.toml (mr-host build supports Rust projects)",
            dir.display()
        );
    }
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
