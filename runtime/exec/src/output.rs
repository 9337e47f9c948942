//! The output directory before a job is planned: where it really is, that it does not overlap
//! the inputs, and what `--overwrite` may remove.
//!
//! Everything here runs *before* anything is written, so a refused output leaves no trace (no
//! directory, no store) and an input is never deleted: `--overwrite` removes only what an
//! earlier mr job wrote into the directory (`_MANIFEST`, the files it lists, `_bad_records`,
//! `_mr/`, and the part files the store's jobs for this output planned), and refuses when the
//! directory holds anything else.

use std::path::{Component, Path, PathBuf};

use mr_io::InputFile;
use mr_io::objects::Location;

use crate::finalize::MANIFEST;
use crate::outdir::OutputDir;
use crate::{BAD_RECORDS, ExecError, STATE_DIR};

/// `path` made absolute with every symlink of its existing part resolved (the part that does
/// not exist yet is appended as written, without `.` and `..`): what it will be once created,
/// so that two spellings of one directory compare equal.
pub(crate) fn resolved(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            let mut out = real;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return lexical(&absolute),
        }
    }
}

/// Refuses `path` (`what` names it in the message) unless it is inside `root` once its links
/// are resolved: a job confined to a data root (`mr-host serve --data-root`) reads and writes
/// nothing outside it, whether through `..`, an absolute path or a symbolic link.
pub(crate) fn check_within(root: &Path, path: &Path, what: &str) -> Result<(), ExecError> {
    if resolved(path).starts_with(resolved(root)) {
        Ok(())
    } else {
        Err(ExecError::OutsideRoot {
            what: what.to_owned(),
            path: path.to_owned(),
            root: root.to_owned(),
        })
    }
}

/// `path` without `.` components and with `..` applied lexically.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// The output a request names: a local directory (made absolute, links resolved) or an
/// object storage prefix (without its trailing `/`).
pub(crate) fn target(output: &Path) -> Result<OutputDir, ExecError> {
    match output.to_str().filter(|o| mr_io::objects::is_url(o)) {
        Some(url) => OutputDir::of(Path::new(url.trim_end_matches('/'))),
        None => Ok(OutputDir::Local(resolved(output))),
    }
}

impl OutputDir {
    /// The output as a plan records it: a path, or a URL in a `PathBuf`.
    pub(crate) fn path(&self) -> PathBuf {
        match self {
            OutputDir::Local(dir) => dir.clone(),
            OutputDir::Object(prefix) => PathBuf::from(prefix.url()),
        }
    }
}

/// Refuses an output that is an input, or that contains one (writing the output, or
/// `--overwrite`, would destroy it). An output *inside* an input directory is fine: directory
/// walks never read it (see `mr_io::resolve_inputs`).
pub(crate) fn check_against_inputs(
    output: &Path,
    specs: &[String],
    files: &[InputFile],
) -> Result<(), ExecError> {
    let is_url = |p: &Path| p.to_str().is_some_and(mr_io::objects::is_url);
    // The same place, or inside it: compared as URLs for object storage, as resolved paths
    // for files.
    let within = |p: &Path, exact: bool| {
        if is_url(p) != is_url(output) {
            return false;
        }
        let (p, o) = if is_url(p) {
            let (p, o) = (p.to_string_lossy(), output.to_string_lossy());
            (
                PathBuf::from(p.trim_end_matches('/')),
                PathBuf::from(o.trim_end_matches('/')),
            )
        } else {
            (resolved(p), output.to_owned())
        };
        if exact { p == o } else { p.starts_with(&o) }
    };
    for spec in specs {
        let path = Path::new(spec);
        if (is_url(path) || path.exists()) && within(path, true) {
            return Err(ExecError::OutputIsInput {
                output: output.to_owned(),
                input: spec.clone(),
            });
        }
    }
    for file in files.iter().filter(|f| f.format.is_file()) {
        if within(&file.path, false) {
            return Err(ExecError::OutputHoldsInput {
                output: output.to_owned(),
                input: file.display.clone(),
            });
        }
    }
    Ok(())
}

/// The names directly in the output (objects: the first path component of every object under
/// the prefix); `None` when it does not exist.
fn entries(output: &OutputDir) -> Result<Option<Vec<String>>, ExecError> {
    match output {
        OutputDir::Local(dir) => match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .map(|e| {
                    e.map(|e| e.file_name().to_string_lossy().into_owned())
                        .map_err(|source| io(dir, source))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(io(dir, source)),
        },
        OutputDir::Object(prefix) => {
            let mut names: Vec<String> = prefix
                .list()
                .map_err(crate::outdir::object_error)?
                .iter()
                .map(|o| {
                    let rel = prefix.relative(&o.url);
                    rel.split('/').next().unwrap_or(rel).to_owned()
                })
                .collect();
            names.dedup();
            Ok(Some(names))
        }
    }
}

/// The names in `output` that an earlier mr job wrote there: `_MANIFEST` and every file it
/// lists, `_bad_records`, `_mr`, and `planned` (the outputs of the store's jobs for this
/// directory), with their temporary `.NAME.tmp` forms.
fn written_by_mr(output: &Path, planned: &[String]) -> Vec<String> {
    let manifest = std::fs::read(output.join(MANIFEST)).ok();
    written_by_mr_listed(manifest.as_deref(), planned)
}

/// [`written_by_mr`] from the manifest's bytes, if there is one.
fn written_by_mr_listed(manifest: Option<&[u8]>, planned: &[String]) -> Vec<String> {
    let mut names: Vec<String> = [MANIFEST, BAD_RECORDS, STATE_DIR]
        .iter()
        .map(|n| (*n).to_owned())
        .chain(planned.iter().cloned())
        .collect();
    if let Some(manifest) =
        manifest.and_then(|m| serde_json::from_slice::<serde_json::Value>(m).ok())
    {
        let listed = manifest["files"]
            .as_array()
            .into_iter()
            .flatten()
            .chain([&manifest["composed"], &manifest["bad_records"]]);
        names.extend(
            listed
                .filter_map(|f| f["name"].as_str())
                .filter(|n| !n.contains('/') && !n.is_empty())
                .map(str::to_owned),
        );
    }
    let temps: Vec<String> = names.iter().map(|n| format!(".{n}.tmp")).collect();
    names.extend(temps);
    names
}

/// What `--overwrite` does before a new job is planned on `output`: removes everything an
/// earlier mr job wrote there (see [`written_by_mr`]), except the store `db` if it lives inside;
/// refuses, removing nothing, when the output also holds anything else.
pub(crate) fn clear_previous(
    output: &OutputDir,
    db: Option<&Path>,
    planned: &[String],
) -> Result<(), ExecError> {
    let Some(names) = entries(output)? else {
        return Ok(());
    };
    let ours = match output {
        OutputDir::Local(dir) => written_by_mr(dir, planned),
        OutputDir::Object(prefix) => {
            let manifest = prefix.join(MANIFEST).get().ok();
            written_by_mr_listed(manifest.as_deref(), planned)
        }
    };
    let (remove, mut foreign): (Vec<String>, Vec<String>) =
        names.into_iter().partition(|n| ours.contains(n));
    if !foreign.is_empty() {
        foreign.sort();
        return Err(ExecError::ForeignFiles {
            output: output.path(),
            names: foreign,
        });
    }
    match output {
        OutputDir::Local(dir) => {
            let db = db.map(resolved);
            for name in remove {
                let path = dir.join(&name);
                if path.file_name() == Some(STATE_DIR.as_ref())
                    && let Some(db) = db.as_ref().filter(|db| db.starts_with(&path))
                {
                    // The store stays (the caller deletes its jobs for this output); the rest
                    // of the state directory (work files of the old job) goes.
                    let keep = db.file_name().map(|n| n.to_string_lossy().into_owned());
                    for inner in std::fs::read_dir(&path).map_err(|e| io(&path, e))? {
                        let inner = inner.map_err(|e| io(&path, e))?.path();
                        let name = inner.file_name().map(|n| n.to_string_lossy().into_owned());
                        // `state.db`, `state.db-wal`, `state.db-shm`.
                        if let (Some(keep), Some(name)) = (&keep, &name)
                            && name.starts_with(keep.as_str())
                        {
                            continue;
                        }
                        remove_path(&inner)?;
                    }
                } else {
                    remove_path(&path)?;
                }
            }
        }
        OutputDir::Object(prefix) => {
            for object in prefix.list().map_err(crate::outdir::object_error)? {
                let rel = prefix.relative(&object.url);
                if remove
                    .iter()
                    .any(|n| rel == n || rel.starts_with(&format!("{n}/")))
                {
                    Location::parse(&object.url)
                        .and_then(|l| l.delete())
                        .map_err(crate::outdir::object_error)?;
                }
            }
        }
    }
    Ok(())
}

fn remove_path(path: &Path) -> Result<(), ExecError> {
    let removed = if path.is_dir() && !path.is_symlink() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    removed.map_err(|e| io(path, e))
}

fn io(path: &Path, source: std::io::Error) -> ExecError {
    ExecError::Output {
        path: path.to_owned(),
        source,
    }
}

/// A new job's output may hold nothing but the state directory.
pub(crate) fn ensure_only_state(output: &OutputDir) -> Result<(), ExecError> {
    if entries(output)?
        .unwrap_or_default()
        .iter()
        .any(|n| n != STATE_DIR)
    {
        return Err(ExecError::OutputNotEmpty {
            path: output.path(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolved_paths_compare_equal_across_spellings() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap();
        std::fs::create_dir(real.join("a")).unwrap();
        std::os::unix::fs::symlink(real.join("a"), real.join("link")).unwrap();
        assert_eq!(resolved(&real.join("link/new/x")), real.join("a/new/x"));
        assert_eq!(resolved(&real.join("a/./new/../y")), real.join("a/y"));
    }

    #[test]
    fn overwrite_refuses_foreign_files_and_removes_only_mr_files() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        for name in [
            "_MANIFEST",
            "part-00000",
            "part-00001",
            "notes.txt",
            ".part-00001.tmp",
        ] {
            std::fs::write(out.join(name), "x").unwrap();
        }
        std::fs::create_dir_all(out.join("_mr/work")).unwrap();
        std::fs::write(out.join("_mr/state.db"), "db").unwrap();
        let planned = vec!["part-00000".to_owned(), "part-00001".to_owned()];
        let db = out.join("_mr/state.db");
        let dir = OutputDir::Local(out.to_owned());
        let err = clear_previous(&dir, Some(&db), &planned)
            .unwrap_err()
            .to_string();
        assert!(err.contains("notes.txt"), "{err}");
        assert!(
            out.join("part-00000").exists(),
            "nothing removed on refusal"
        );
        std::fs::remove_file(out.join("notes.txt")).unwrap();
        clear_previous(&dir, Some(&db), &planned).unwrap();
        let mut left: Vec<_> = walk(out);
        left.sort();
        assert_eq!(left, ["_mr", "_mr/state.db"]);
    }

    fn walk(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                out.push(name.clone());
                out.extend(walk(&p).into_iter().map(|n| format!("{name}/{n}")));
            } else {
                out.push(name);
            }
        }
        out
    }
}
