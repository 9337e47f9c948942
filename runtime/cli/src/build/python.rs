//! Python job projects: a `pyproject.toml` whose `[tool.mr]` table names the job module.
//!
//! The Python SDK (import name `mr_sdk`) does the building: `python -m mr_sdk build DIR`
//! imports the job to learn its world, writes the app module componentize-py wants and runs
//! componentize-py, which the SDK pins. This module finds the interpreter to run it with:
//!
//! 1. `$MR_PYTHON`, if set (the user's explicit choice; it must have the SDK);
//! 2. for a project with a vendored SDK (`vendor/mr-sdk`, what `mr-host new` writes): the
//!    project's `.venv`, created with `python3 -m venv` and given the vendored SDK (with its
//!    pinned componentize-py, and pytest for the project's tests) when it is missing, and the
//!    SDK reinstalled when `mr-host sdk vendor` replaced the copy since;
//! 3. otherwise the first that has the SDK: the project's `.venv`, `python3` on PATH (an
//!    activated virtualenv), this checkout's `target/lang/venv` (what
//!    `scripts/setup-languages.sh` installs).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use super::sdk;

pub fn build(dir: &Path, output: Option<&Path>) -> Result<PathBuf> {
    let python = interpreter(dir)?;
    let mut cmd = Command::new(&python);
    cmd.args(["-m", "mr_sdk", "build"]).arg(dir);
    if let Some(out) = output {
        cmd.arg("--output").arg(out);
    }
    super::run_sdk_build(cmd, "the Python SDK's build (componentize-py)", dir)
}

/// The interpreter that builds `dir` (see the module docs).
fn interpreter(dir: &Path) -> Result<OsString> {
    if let Some(python) = std::env::var_os("MR_PYTHON") {
        check_has_sdk(&python, "MR_PYTHON")?;
        return Ok(python);
    }
    if dir.join(sdk::VENDOR_DIR).join("pyproject.toml").is_file() {
        ensure_venv(dir)?;
        return Ok(venv_python(dir).into_os_string());
    }
    let mut candidates = vec![venv_python(dir).into_os_string(), OsString::from("python3")];
    if let Some(root) = super::source_tree() {
        candidates.push(root.join("target/lang/venv/bin/python").into_os_string());
    }
    if let Some(python) = candidates.iter().find(|p| has_sdk(p)) {
        return Ok(python.clone());
    }
    bail!(
        "no Python with the mr SDK for {}: it has no vendored SDK ({}), and neither its .venv, python3 on PATH nor this checkout's target/lang/venv can import mr_sdk. Run `mr-host sdk vendor {}` (the next build then sets up {}/.venv), or set MR_PYTHON to an interpreter where the SDK is installed",
        dir.display(),
        sdk::VENDOR_DIR,
        dir.display(),
        dir.display()
    )
}

fn venv_python(dir: &Path) -> PathBuf {
    dir.join(".venv/bin/python")
}

/// Whether `python` runs and can import the SDK's build module.
fn has_sdk(python: &OsString) -> bool {
    Command::new(python)
        .args(["-c", "import mr_sdk.build"])
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Says what is wrong with an interpreter the user chose.
fn check_has_sdk(python: &OsString, chosen_by: &str) -> Result<()> {
    let shown = Path::new(python).display().to_string();
    let probe = Command::new(python)
        .args(["-c", "import mr_sdk.build"])
        .stdin(Stdio::null())
        .output();
    match probe {
        Err(e) => bail!(
            "cannot run {shown} ({chosen_by}): {e}; building a Python job needs Python 3.11+ with the mr Python SDK (`pip install ./vendor/mr-sdk` in a project made by `mr-host new`)"
        ),
        Ok(out) if !out.status.success() => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let why = stderr.lines().last().unwrap_or("").trim();
            bail!(
                "{shown} ({chosen_by}) cannot import the mr Python SDK ({why}); install it there with `{shown} -m pip install ./vendor/mr-sdk` (in a project made by `mr-host new`), or unset {chosen_by}"
            );
        }
        Ok(_) => Ok(()),
    }
}

/// Makes the project's `.venv` hold its vendored SDK: creates the virtualenv when missing,
/// installs the SDK (with componentize-py and pytest) when the venv has not got this copy yet.
/// Says what it does, as it takes a while.
pub fn ensure_venv(dir: &Path) -> Result<()> {
    // Absolute: the commands below run in `dir`.
    let dir = &dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    let want = sdk::vendored_fingerprint(dir).with_context(|| {
        format!(
            "{} has no vendored Python SDK ({}): run `mr-host sdk vendor {}`",
            dir.display(),
            sdk::VENDOR_DIR,
            dir.display()
        )
    })?;
    let stamp = dir.join(".venv/.mr-sdk-fingerprint");
    let python = venv_python(dir);
    if python.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == want) {
        return Ok(());
    }
    let started = std::time::Instant::now();
    if !python.is_file() {
        eprintln!(
            "mr-host: creating the project's virtualenv {} (python3 -m venv)",
            dir.join(".venv").display()
        );
        super::run_setup(
            Command::new("python3")
                .args(["-m", "venv", ".venv"])
                .current_dir(dir),
            "python3 -m venv .venv (building a Python job needs Python 3.11+ as python3)",
            dir,
        )?;
    }
    eprintln!(
        "mr-host: installing the vendored Python SDK with its pinned componentize-py and pytest into .venv (pip install './{}[test]'): about 20 s, longer when pip downloads them (about 40 MB) the first time",
        sdk::VENDOR_DIR
    );
    let pip = |args: &[&str]| {
        let mut cmd = Command::new(&python);
        cmd.args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
        ])
        .args(args)
        .current_dir(dir);
        cmd
    };
    // The copy keeps its version number when `mr-host sdk vendor` replaces it: reinstall the SDK
    // itself unconditionally, then whatever of its dependencies is missing.
    let sdk_dir = format!("./{}", sdk::VENDOR_DIR);
    super::run_setup(
        &mut pip(&["--force-reinstall", "--no-deps", &sdk_dir]),
        "pip install of the vendored SDK",
        dir,
    )?;
    super::run_setup(
        &mut pip(&[&format!("{sdk_dir}[test]")]),
        "pip install of the SDK's dependencies (componentize-py, pytest)",
        dir,
    )?;
    std::fs::write(&stamp, format!("{want}\n"))
        .with_context(|| format!("cannot write {}", stamp.display()))?;
    eprintln!(
        "mr-host: .venv is ready ({:.0} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
