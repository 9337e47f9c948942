//! Which component a job argument means, and whether it is older than its sources: the edit-run
//! loop of `mr-host run`.
//!
//! - `mr-host run DIR` on a job project builds it first when its sources changed since the last
//!   build (Rust: always asks cargo, which knows; Python and JavaScript: compares the newest
//!   source file's modification time with the component's, whose path the last `mr-host build`
//!   recorded in `DIR/target/mr/last-build.json`), then runs the fresh component.
//! - `mr-host run x.wasm` warns when the job project the component was built from (the nearest
//!   directory above it with a job manifest) has a source file newer than it.
//! - Anything else (a directory that is no project, a source file, a missing path) fails with
//!   one line saying what to give instead.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result, bail};

use super::Lang;

/// Where a Python or JavaScript project's last build is recorded, relative to the project.
const LAST_BUILD: &str = "target/mr/last-build.json";

/// What a build recorded: the component and when it was built.
#[derive(serde::Serialize, serde::Deserialize)]
struct LastBuild {
    /// Relative to the project when inside it (so a moved project keeps it), else absolute.
    component: PathBuf,
    /// Seconds since the Unix epoch.
    built_at: u64,
}

/// The component a `run`/`submit`/`inspect` JOB argument means (see the module docs).
pub fn resolve_job(job: &Path) -> Result<PathBuf> {
    if job.is_dir() {
        if super::detect(job).is_err() {
            bail!(
                "{} is a directory but not a job project (no Cargo.toml, pyproject.toml with [tool.mr] or package.json with \"mr\"): give a component (.wasm, as `mr-host build DIR` prints it) or a job project directory (`mr-host new NAME` creates one)",
                job.display()
            );
        }
        return fresh_component(job);
    }
    if !job.exists() {
        let hint = match project_of(job) {
            Some(project) => format!(
                "`mr-host run {}` builds and runs the project it would come from",
                project.display()
            ),
            None => "`mr-host build DIR` builds a job project and prints its component's path"
                .to_owned(),
        };
        bail!("{} does not exist; {hint}", job.display());
    }
    let mut magic = [0u8; 4];
    let read =
        std::fs::File::open(job).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic));
    if let Err(e) = &read
        && e.kind() != std::io::ErrorKind::UnexpectedEof
    {
        bail!("cannot read {}: {e}", job.display());
    }
    let is_wasm = read.is_ok() && magic == *b"\0asm";
    if !is_wasm {
        let hint = match project_of(job) {
            Some(project) => format!(
                "it looks like a file of the job project {p}: `mr-host run {p}` builds and runs it (`mr-host build {p}` only builds)",
                p = project.display()
            ),
            None => "build a component with `mr-host build DIR`, which prints its path".to_owned(),
        };
        bail!("{} is not a WebAssembly component; {hint}", job.display());
    }
    warn_if_stale(job);
    Ok(job.to_owned())
}

/// Builds the project when it changed since its last build; returns the fresh component.
fn fresh_component(dir: &Path) -> Result<PathBuf> {
    let lang = super::detect(dir)?;
    if lang == Lang::Rust {
        // Cargo knows when to rebuild (dependencies included) and does nothing otherwise.
        return super::build(dir, None);
    }
    let last = read_last_build(dir);
    let reason = match &last {
        None => "it has not been built yet".to_owned(),
        Some((component, _)) if !component.is_file() => {
            format!("its last component {} is gone", component.display())
        }
        Some((component, _)) => match newer_source(dir, modified(component)) {
            Some(source) => format!(
                "{} changed since its last build",
                source.strip_prefix(dir).unwrap_or(&source).display()
            ),
            None => return Ok(component.clone()),
        },
    };
    eprintln!("mr-host: building {} ({reason})", dir.display());
    super::build(dir, None)
}

/// Records a Python or JavaScript project's build, for `mr-host run DIR` and `inspect`.
pub fn record_build(dir: &Path, component: &Path) -> Result<()> {
    let component_abs = component
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", component.display()))?;
    let dir_abs = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    let record = LastBuild {
        component: component_abs
            .strip_prefix(&dir_abs)
            .map(Path::to_owned)
            .unwrap_or(component_abs.clone()),
        built_at: unix_seconds(SystemTime::now()),
    };
    let path = dir.join(LAST_BUILD);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(&path, serde_json::to_string_pretty(&record)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The last build of `dir`: its component and when it was built.
fn read_last_build(dir: &Path) -> Option<(PathBuf, u64)> {
    let text = std::fs::read_to_string(dir.join(LAST_BUILD)).ok()?;
    let record: LastBuild = serde_json::from_str(&text).ok()?;
    Some((dir.join(record.component), record.built_at))
}

/// When `component` was built: what its project's last build recorded if that build made it,
/// else its modification time; and which of the two it is.
pub fn built_at(component: &Path) -> Option<(SystemTime, &'static str)> {
    let recorded = project_of(component).and_then(|project| {
        let (recorded, at) = read_last_build(&project)?;
        same_file(&recorded, component).then(|| {
            (
                SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(at),
                "recorded by mr-host build",
            )
        })
    });
    recorded.or_else(|| {
        std::fs::metadata(component)
            .and_then(|m| m.modified())
            .ok()
            .map(|t| (t, "file modification time"))
    })
}

fn same_file(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
}

/// Warns on stderr when the project `component` came from has a source newer than it.
fn warn_if_stale(component: &Path) {
    let Some(project) = project_of(component) else {
        return;
    };
    if let Some(source) = newer_source(&project, modified(component)) {
        eprintln!(
            "warning: {} is older than {} (changed since it was built); `mr-host run {}` rebuilds the project and runs the fresh component",
            component.display(),
            source.display(),
            project.display()
        );
    }
}

/// The nearest directory at or above `path`'s parent that is a job project: a Cargo package
/// (not a virtual workspace: its members' sources are not one job's), a Python project with
/// `[tool.mr]`, or a JavaScript project with an `"mr"` field.
fn project_of(path: &Path) -> Option<PathBuf> {
    // The path itself may not exist (a component not built yet): start at what does.
    let start = path
        .ancestors()
        .skip(1)
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .find(|p| p.is_dir())?
        .canonicalize()
        .ok()?;
    start
        .ancestors()
        .find(|dir| is_job_project(dir))
        .map(Path::to_owned)
}

fn is_job_project(dir: &Path) -> bool {
    let has = |file: &str, needle: &str| {
        std::fs::read_to_string(dir.join(file)).is_ok_and(|text| text.contains(needle))
    };
    has("Cargo.toml", "[package]")
        || has("pyproject.toml", "[tool.mr]")
        || has("package.json", "\"mr\"")
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// A source file of `project` modified after `than`, if any (the newest such file).
fn newer_source(project: &Path, than: SystemTime) -> Option<PathBuf> {
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    walk_sources(project, &mut |path, time| {
        if time > than && newest.as_ref().is_none_or(|(t, _)| time > *t) {
            newest = Some((time, path.to_owned()));
        }
    });
    newest.map(|(_, path)| path)
}

/// Calls `found` with every source file of a project and its modification time: everything but
/// build output, installed dependencies, caches and hidden entries (`.venv`, `.git`).
fn walk_sources(dir: &Path, found: &mut dyn FnMut(&Path, SystemTime)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let path = entry.path();
        if name.starts_with('.')
            || matches!(name.as_ref(), "target" | "node_modules" | "__pycache__")
            || name.ends_with(".egg-info")
            // What pip leaves in the vendored Python SDK when it installs it.
            || path.ends_with(Path::new(super::sdk::VENDOR_DIR).join("build"))
        {
            continue;
        }
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if meta.is_dir() {
            walk_sources(&path, found);
        } else if let Ok(time) = meta.modified() {
            found(&path, time);
        }
    }
}

pub fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn touch(path: &Path, at: SystemTime) {
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(at)
            .unwrap();
    }

    #[test]
    fn sources_exclude_build_output_dependencies_and_hidden_entries() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        for f in [
            "job.py",
            "sub/helper.py",
            "target/mr/x.wasm",
            ".venv/lib/x.py",
            "node_modules/m/index.js",
            "__pycache__/job.pyc",
            "vendor/mr-sdk/build/lib/x.py",
            "vendor/mr-sdk/src/mr_sdk/__init__.py",
        ] {
            std::fs::create_dir_all(p.join(f).parent().unwrap()).unwrap();
            std::fs::write(p.join(f), "").unwrap();
        }
        let mut seen = Vec::new();
        walk_sources(p, &mut |path, _| {
            seen.push(path.strip_prefix(p).unwrap().to_string_lossy().into_owned())
        });
        seen.sort();
        assert_eq!(
            seen,
            [
                "job.py",
                "sub/helper.py",
                "vendor/mr-sdk/src/mr_sdk/__init__.py"
            ]
        );
        let past = SystemTime::now() - Duration::from_secs(3600);
        for f in &seen {
            touch(&p.join(f), past);
        }
        let component = p.join("target/mr/x.wasm");
        assert_eq!(newer_source(p, modified(&component)), None);
        touch(
            &p.join("sub/helper.py"),
            SystemTime::now() + Duration::from_secs(60),
        );
        assert_eq!(
            newer_source(p, modified(&component)),
            Some(p.join("sub/helper.py"))
        );
    }

    #[test]
    fn a_component_belongs_to_the_nearest_job_project_above_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().canonicalize().unwrap();
        std::fs::write(p.join("Cargo.toml"), "[workspace]\nmembers = [\"job\"]\n").unwrap();
        std::fs::create_dir_all(p.join("job/src")).unwrap();
        std::fs::write(p.join("job/Cargo.toml"), "[package]\nname = \"job\"\n").unwrap();
        std::fs::create_dir_all(p.join("target/wasm32-wasip2/release")).unwrap();
        std::fs::create_dir_all(p.join("job/target/mr")).unwrap();
        // The workspace root is no job project: its shared target dir maps to none.
        assert_eq!(
            project_of(&p.join("target/wasm32-wasip2/release/job.wasm")),
            None
        );
        assert_eq!(
            project_of(&p.join("job/target/mr/job.wasm")),
            Some(p.join("job"))
        );
        assert_eq!(project_of(&p.join("job/src/lib.rs")), Some(p.join("job")));
    }

    #[test]
    fn builds_are_recorded_relative_to_a_movable_project() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("proj");
        std::fs::create_dir_all(p.join("target/mr")).unwrap();
        std::fs::write(p.join("pyproject.toml"), "[tool.mr]\njob = \"j\"\n").unwrap();
        let component = p.join("target/mr/j.wasm");
        std::fs::write(&component, b"\0asm").unwrap();
        record_build(&p, &component).unwrap();
        let moved = dir.path().join("moved");
        std::fs::rename(&p, &moved).unwrap();
        let (recorded, _) = read_last_build(&moved).unwrap();
        assert_eq!(recorded, moved.join("target/mr/j.wasm"));
        let (_, how) = built_at(&moved.join("target/mr/j.wasm")).unwrap();
        assert_eq!(how, "recorded by mr-host build");
    }
}
