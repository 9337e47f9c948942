//! JavaScript job projects: a `package.json` whose `"mr": {"job": "FILE.js"}` names the job
//! module.
//!
//! The JavaScript SDK (`sdk/js`, npm package `mr-sdk`) does the building: `mr-sdk build DIR`
//! bundles the job with esbuild and compiles it with componentize-js, both pinned by the SDK's
//! `package-lock.json`. The SDK used is the project's own `node_modules/mr-sdk` (what `npm
//! install` put there), else `$MR_JS_SDK`, else this checkout's `sdk/js`; Node is `$MR_NODE` or
//! `node` on PATH.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Result, bail};

pub fn build(dir: &Path, output: Option<&Path>) -> Result<PathBuf> {
    let Some(sdk) = find_sdk(dir) else {
        bail!(
            "no JavaScript SDK for {}: run `npm install` there (its package.json should depend on \"mr-sdk\": \"file:<mr checkout>/sdk/js\"), or set MR_JS_SDK to the SDK's directory",
            dir.display()
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
            bail!(
                "the JavaScript SDK at {} cannot load its build tools ({why}); run `npm install` in {}",
                sdk.display(),
                sdk.display()
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
