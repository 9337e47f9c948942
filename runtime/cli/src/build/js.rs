//! JavaScript job projects: a `package.json` whose `"mr": {"job": "FILE.js"}` names the job
//! module.
//!
//! The JavaScript SDK (npm package `mr-sdk`) does the building: `mr-sdk build DIR` bundles the
//! job with esbuild and compiles it with componentize-js, both pinned by the SDK's
//! `package-lock.json`. The SDK used is the project's own `node_modules/mr-sdk` (for a project
//! with a vendored SDK, `npm install` is run first when that is missing), else `$MR_JS_SDK`,
//! else this checkout's `sdk/js`. Node is `$MR_NODE` or `node` on PATH.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Result, bail};

use super::sdk;

pub fn build(dir: &Path, output: Option<&Path>) -> Result<PathBuf> {
    let installed = dir.join("node_modules/mr-sdk/src/build.js");
    if !installed.is_file() && dir.join(sdk::VENDOR_DIR).join("package.json").is_file() {
        npm_install(dir)?;
    }
    let Some(sdk) = find_sdk(dir) else {
        bail!(
            "no JavaScript SDK for {}: it has no node_modules/mr-sdk and no vendored SDK ({}); run `mr-host sdk vendor {}` and depend on it in package.json (\"mr-sdk\": \"file:{}\"), or set MR_JS_SDK to the SDK's directory",
            dir.display(),
            sdk::VENDOR_DIR,
            dir.display(),
            sdk::VENDOR_DIR
        );
    };
    let node = std::env::var_os("MR_NODE").unwrap_or_else(|| OsString::from("node"));
    let shown = Path::new(&node).display().to_string();
    // Loading the SDK's build module loads esbuild and componentize-js: a missing `npm install` shows
    // here, with the command that fixes it, instead of as a module resolution stack.
    // (`mr-sdk wit` only prints a path, but its module imports them.)
    let probe = Command::new(&node)
        .arg(sdk.join("src/cli.js"))
        .arg("wit")
        .stdin(Stdio::null())
        .output();
    match probe {
        Err(e) => bail!(
            "cannot run {shown} ({e}); building a JavaScript job needs Node.js 20+ (set MR_NODE to its path)"
        ),
        Ok(out) if !out.status.success() => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let why = stderr
                .lines()
                .find(|l| l.contains("Error"))
                .unwrap_or("")
                .trim();
            let fix = if sdk.starts_with(dir.canonicalize().unwrap_or_default()) {
                dir.to_owned()
            } else {
                sdk.clone()
            };
            bail!(
                "the JavaScript SDK at {} cannot load its build tools ({why}); run `npm install` in {}",
                sdk.display(),
                fix.display()
            );
        }
        Ok(_) => {}
    }
    let mut cmd = Command::new(&node);
    cmd.arg(sdk.join("src/cli.js")).arg("build").arg(dir);
    if let Some(out) = output {
        cmd.arg("--output").arg(out);
    }
    super::run_sdk_build(
        cmd,
        "the JavaScript SDK's build (esbuild, componentize-js)",
        dir,
    )
}

/// `npm install` in the project: links the vendored SDK and installs its pinned esbuild and
/// componentize-js. Says what it does, as it takes a while.
pub fn npm_install(dir: &Path) -> Result<()> {
    eprintln!(
        "mr-host: installing the project's JavaScript dependencies in {} (npm install: the vendored SDK with its pinned esbuild and componentize-js): about 20 s, longer when npm downloads them (about 100 MB) the first time",
        dir.display()
    );
    let started = std::time::Instant::now();
    super::run_setup(
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(dir),
        "npm install (building a JavaScript job needs Node.js 20+ with npm)",
        dir,
    )?;
    eprintln!(
        "mr-host: node_modules is ready ({:.0} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn find_sdk(dir: &Path) -> Option<PathBuf> {
    let candidates = [
        Some(dir.join("node_modules/mr-sdk")),
        std::env::var_os("MR_JS_SDK").map(PathBuf::from),
        super::source_tree().map(|root| root.join("sdk/js")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|sdk| sdk.join("src/build.js").is_file())
        .and_then(|sdk| sdk.canonicalize().ok())
}
