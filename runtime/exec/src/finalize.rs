//! The finalize task: put the committed outputs in place as `part-NNNNN`, write `_MANIFEST`,
//! and only then mark the job done.
//!
//! Every step is idempotent, so a finalize attempt that crashes half way is simply run again:
//! a reduce output already renamed into place is recognised by its size and SHA-256; a map-only
//! job's parts are recomposed from the committed slice files, which stay until the job is done.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use mr_engine::LifecycleEvent;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::ExecError;
use crate::bad::{BAD_PART, BAD_RECORDS};
use crate::counters;
use crate::error::Step;
use crate::sink::{Sink, SinkReport};
use crate::spec::JobSpec;
use crate::task::{Task, TaskError};
use crate::writer::{TextWriter, part_name, sync_dir};
use mr_store::TaskKind;

/// The manifest's name in the output directory.
pub const MANIFEST: &str = "_MANIFEST";

/// `_MANIFEST`: what the job produced, deterministic (no times, ids or attempt counts), so two
/// runs over the same input write the same bytes.
#[derive(Serialize)]
struct Manifest<'a> {
    job: &'a str,
    component_sha256: &'a str,
    params: &'a BTreeMap<String, String>,
    inputs: Vec<ManifestInput<'a>>,
    files: Vec<ManifestFile>,
    counters: BTreeMap<String, u64>,
    job_counters: BTreeMap<String, i64>,
    /// `--compose`: the part files concatenated in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    composed: Option<ManifestFile>,
    /// `_bad_records`, when bad records were skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    bad_records: Option<ManifestFile>,
    /// What a SQLite sink wrote.
    #[serde(skip_serializing_if = "Option::is_none")]
    sink: Option<SinkReport>,
}

#[derive(Serialize)]
struct ManifestInput<'a> {
    path: &'a str,
    bytes: u64,
}

#[derive(Serialize)]
struct ManifestFile {
    name: String,
    bytes: u64,
    records: u64,
    sha256: String,
}

/// The job's output file names, in order.
pub(crate) fn output_names(spec: &JobSpec) -> Vec<String> {
    if matches!(spec.sink, Sink::Sqlite { .. }) {
        return Vec::new();
    }
    let n = if spec.reducers > 0 {
        spec.reducers
    } else {
        spec.shards.len() as u32
    };
    (0..n).map(part_name).collect()
}

pub(crate) fn run(task: &mut Task<'_>) -> Result<(), TaskError> {
    let spec = &task.job.spec;
    task.set_identity(Step::Finalize, 0);
    // The exact check of --max-bad-records, against what was committed.
    let bad_total = crate::bad::committed(task)?;
    if bad_total > spec.max_bad_records {
        return Err(TaskError::Failed(ExecError::TooManyBadRecords {
            count: bad_total,
            max: spec.max_bad_records,
            location: format!("{}", spec.output.join(BAD_RECORDS).display()),
            reason: "see the bad-record files of the committed slices".into(),
        }));
    }
    let mut sink = None;
    let files = if matches!(spec.sink, Sink::Sqlite { .. }) {
        let kind = if spec.reducers > 0 {
            TaskKind::Reduce
        } else {
            TaskKind::Map
        };
        let sources: Vec<_> = task
            .store
            .outputs(task.job.id, kind)?
            .into_iter()
            .filter(|o| o.file.part != BAD_PART)
            .map(|o| spec.output.join(&o.file.path))
            .collect();
        sink = Some(crate::sink::apply_sqlite(
            &spec.sink,
            &spec.fingerprint,
            &sources,
        )?);
        Vec::new()
    } else if spec.reducers > 0 {
        place_reduce_outputs(task)?
    } else {
        compose_map_outputs(task)?
    };
    let bad_sources: Vec<_> = task
        .store
        .outputs(task.job.id, TaskKind::Map)?
        .into_iter()
        .filter(|o| o.file.part == BAD_PART)
        .map(|o| spec.output.join(&o.file.path))
        .collect();
    let bad_records = if bad_sources.is_empty() {
        None
    } else {
        Some(concatenate(&bad_sources, &spec.output.join(BAD_RECORDS))?)
    };
    let composed = match &spec.compose {
        Some(name) => {
            let parts: Vec<_> = files.iter().map(|f| spec.output.join(&f.name)).collect();
            Some(concatenate(&parts, &spec.output.join(name))?)
        }
        None => None,
    };
    sync_dir(&spec.output)?;
    let (builtin, job_counters) = counters::split(task.store.job_counters(task.job.id)?);
    let manifest = Manifest {
        job: &spec.name,
        component_sha256: &spec.component_sha256,
        params: &spec.params,
        inputs: spec
            .files
            .iter()
            .map(|f| ManifestInput {
                path: &f.display,
                bytes: f.len,
            })
            .collect(),
        files,
        counters: builtin,
        job_counters,
        composed,
        bad_records,
        sink,
    };
    let mut text = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
    text.push(b'\n');
    let mut writer = TextWriter::create(&spec.output.join(MANIFEST))?;
    writer.write_raw(&text, 0)?;
    writer.commit()?;
    sync_dir(&spec.output)?;
    mr_store::failpoint("before-commit-finalize");
    task.store.commit_slice(
        task.lease,
        &mr_store::SliceCommit {
            cursor: "done",
            outputs: &[],
            counters: &[],
            last: true,
            max_job_counters: None,
        },
    )?;
    tracing::info!("job completed");
    cleanup(spec);
    task.notify_done(LifecycleEvent::TaskCompleted);
    task.notify_done(LifecycleEvent::JobCompleted);
    Ok(())
}

/// Removes a finished job's work directory. Its files are no longer referenced; failing to
/// remove them wastes space but loses nothing, so it is a warning.
pub(crate) fn cleanup(spec: &JobSpec) {
    let dir = spec.work_dir();
    if dir.exists()
        && let Err(e) = std::fs::remove_dir_all(&dir)
    {
        tracing::warn!("cannot remove the work directory {}: {e}", dir.display());
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ExecError + '_ {
    move |source| ExecError::Output {
        path: path.to_owned(),
        source,
    }
}

/// Renames each committed reduce output to `part-NNNNN`.
fn place_reduce_outputs(task: &mut Task<'_>) -> Result<Vec<ManifestFile>, TaskError> {
    let spec = &task.job.spec;
    let mut files = Vec::new();
    for o in task.store.outputs(task.job.id, TaskKind::Reduce)? {
        let source = spec.output.join(&o.file.path);
        let name = part_name(o.idx);
        let dest = spec.output.join(&name);
        if source.exists() {
            std::fs::rename(&source, &dest).map_err(io(&dest))?;
        } else if file_sha256(&dest).map_err(io(&dest))?.as_deref() != Some(&o.file.checksum) {
            return Err(TaskError::Failed(ExecError::Output {
                path: source,
                source: std::io::Error::other(format!(
                    "the committed output of reduce task {} is missing, and {} does not hold it",
                    o.idx,
                    dest.display()
                )),
            }));
        }
        files.push(ManifestFile {
            name,
            bytes: o.file.bytes,
            records: o.file.records,
            sha256: o.file.checksum,
        });
    }
    Ok(files)
}

/// Concatenates each shard's committed slice outputs, in slice order, into `part-NNNNN`.
fn compose_map_outputs(task: &mut Task<'_>) -> Result<Vec<ManifestFile>, TaskError> {
    let spec = &task.job.spec;
    let mut by_shard: Vec<Vec<mr_store::CommittedOutput>> = vec![Vec::new(); spec.shards.len()];
    for o in task.store.outputs(task.job.id, TaskKind::Map)? {
        if o.file.part != BAD_PART {
            by_shard[o.idx as usize].push(o);
        }
    }
    let mut files = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    for (shard, outputs) in by_shard.iter().enumerate() {
        let name = part_name(shard as u32);
        let mut writer = TextWriter::create(&spec.output.join(&name))?;
        for o in outputs {
            let path = spec.output.join(&o.file.path);
            let mut file = std::fs::File::open(&path).map_err(io(&path))?;
            loop {
                let n = file.read(&mut buf).map_err(io(&path))?;
                if n == 0 {
                    break;
                }
                writer.write_raw(&buf[..n], 0)?;
            }
            writer.write_raw(&[], o.file.records)?;
        }
        let written = writer.commit()?;
        files.push(ManifestFile {
            name,
            bytes: written.bytes,
            records: written.records,
            sha256: written.sha256,
        });
    }
    Ok(files)
}

/// Concatenates `sources`, in order, into `dest` (temporary name, fsync, rename), counting its
/// lines as records.
fn concatenate(sources: &[std::path::PathBuf], dest: &Path) -> Result<ManifestFile, TaskError> {
    let mut writer = TextWriter::create(dest)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut records = 0;
    for path in sources {
        let mut file = std::fs::File::open(path).map_err(io(path))?;
        loop {
            let n = file.read(&mut buf).map_err(io(path))?;
            if n == 0 {
                break;
            }
            records += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
            writer.write_raw(&buf[..n], 0)?;
        }
    }
    writer.write_raw(&[], records)?;
    let written = writer.commit()?;
    Ok(ManifestFile {
        name: dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        bytes: written.bytes,
        records: written.records,
        sha256: written.sha256,
    })
}

/// SHA-256 of a file, `None` when it does not exist.
fn file_sha256(path: &Path) -> std::io::Result<Option<String>> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(Some(mr_engine::hex(&hash.finalize())))
}
