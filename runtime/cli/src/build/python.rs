//! Python job projects: a `pyproject.toml` whose `[tool.mr]` table names the job module.
//!
//! The Python SDK (`sdk/python`, import name `mr_sdk`) does the building: `python -m mr_sdk
//! build DIR` imports the job to learn its world, writes the app module componentize-py wants
//! and runs componentize-py, which the SDK pins. This module finds an interpreter that has the
//! SDK, and says how to get one when there is none: `$MR_PYTHON` if set, else `python3` on PATH
//! (so an activated virtualenv is used).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Result, bail};

pub fn build(dir: &Path, output: Option<&Path>) -> Result<PathBuf> {
    let python = std::env::var_os("MR_PYTHON").unwrap_or_else(|| OsString::from("python3"));
    let shown = Path::new(&python).display().to_string();
    // Checked first so that a missing SDK gets an install command, not an ImportError.
    let probe = Command::new(&python)
        .args(["-c", "import mr_sdk.build"])
        .stdin(Stdio::null())
        .output();
    match probe {
        Err(e) => bail!(
            "cannot run {shown} ({e}); building a Python job needs Python 3.11+ with the mr Python SDK: {}, or set MR_PYTHON to an interpreter that has it",
            install_hint(&shown)
        ),
        Ok(out) if !out.status.success() => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let why = stderr.lines().last().unwrap_or("").trim();
            bail!(
                "{shown} cannot import the mr Python SDK ({why}); install it (with its pinned componentize-py) by {}, or set MR_PYTHON to an interpreter that has it",
                install_hint(&shown)
            );
        }
        Ok(_) => {}
    }
    let mut cmd = Command::new(&python);
    cmd.args(["-m", "mr_sdk", "build"]).arg(dir);
    if let Some(out) = output {
        cmd.arg("--output").arg(out);
    }
    super::run_sdk_build(cmd, "the Python SDK's build (componentize-py)", dir)
}

fn install_hint(python: &str) -> String {
    match super::source_tree() {
        Some(root) => format!(
            "`{python} -m pip install {}`",
            root.join("sdk/python").display()
        ),
        None => format!("`{python} -m pip install <mr checkout>/sdk/python`"),
    }
}
