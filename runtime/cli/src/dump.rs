//! `mr-host dump FILE`: a run file (a map task's sorted output for one partition, kept by
//! `--debug`) or an output part, as readable `key<TAB>value` lines on stdout, verified: every
//! block checksum of a run; a part's size and SHA-256 against its directory's `_MANIFEST`.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

pub fn dump(path: &Path) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if name.ends_with(".run") {
        let dumped = match mr_shuffle::dump(path, &mut out) {
            Err(mr_shuffle::ShuffleError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::BrokenPipe =>
            {
                return Ok(());
            }
            other => other?,
        };
        flush(&mut out)?;
        eprintln!(
            "{}: {} records in {} blocks, every block checksum verified",
            path.display(),
            dumped.records,
            dumped.blocks
        );
        return Ok(());
    }
    let manifest_path = path.with_file_name("_MANIFEST");
    let Ok(text) = std::fs::read(&manifest_path) else {
        bail!(
            "{} is not a run file (*.run), and there is no {} to verify it against: dump reads run files (kept by --debug under OUTPUT/_mr/work/) and files a _MANIFEST lists",
            path.display(),
            manifest_path.display()
        );
    };
    let manifest: serde_json::Value = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not an mr manifest", manifest_path.display()))?;
    let listed = manifest["files"]
        .as_array()
        .into_iter()
        .flatten()
        .chain([&manifest["composed"], &manifest["bad_records"]])
        .find(|f| f["name"].as_str() == Some(name.as_str()))
        .with_context(|| {
            format!(
                "{} does not list {name}: dump reads run files and the files a _MANIFEST lists",
                manifest_path.display()
            )
        })?;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let want_len = listed["bytes"].as_u64().unwrap_or(u64::MAX);
    if bytes.len() as u64 != want_len {
        bail!(
            "{} is {} bytes but {} lists {want_len} bytes: it changed after the job finished",
            path.display(),
            bytes.len(),
            manifest_path.display()
        );
    }
    let found = mr_engine::hex(&Sha256::digest(&bytes));
    let want = listed["sha256"].as_str().unwrap_or_default();
    if found != want {
        bail!(
            "{} has SHA-256 {found} but {} lists {want}: it changed after the job finished",
            path.display(),
            manifest_path.display()
        );
    }
    if let Err(e) = out.write_all(&bytes)
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e.into());
    }
    flush(&mut out)?;
    eprintln!(
        "{}: {} bytes, size and SHA-256 as {} lists them",
        path.display(),
        bytes.len(),
        manifest_path.display()
    );
    Ok(())
}

/// Flushes stdout; a closed pipe (`mr-host dump F | head`) is not an error.
fn flush(out: &mut impl Write) -> Result<()> {
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
