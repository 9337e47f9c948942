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

use crate::ExecError;
use crate::bad::{BAD_PART, BAD_RECORDS};
use crate::counters;
use crate::error::Step;
use crate::sink::{Sink, SinkReport};
use crate::spec::JobSpec;
use crate::task::{Task, TaskError};
use crate::writer::{TextWriter, part_name};
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
    let out = &task.job.out;
    task.set_identity(Step::Finalize, 0);
    // The exact check of --max-bad-records, against what was committed.
    let bad_total = crate::bad::committed(task)?;
    if bad_total > spec.max_bad_records {
        return Err(TaskError::Failed(ExecError::TooManyBadRecords {
            count: bad_total,
            max: spec.max_bad_records,
            location: out.show(BAD_RECORDS).display().to_string(),
            reason: "see the bad-record files of the committed slices".into(),
        }));
    }
    // Files finalize composes are written here (in place for a local output), then published.
    let staging = task.job.work_dir.with_file_name("final");
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    let fetch = |o: &mr_store::CommittedOutput| out.fetch(&o.file.path, &task.job.work_dir);
    let mut sink = None;
    let files = if matches!(spec.sink, Sink::Sqlite { .. }) {
        let kind = if spec.reducers > 0 {
            TaskKind::Reduce
        } else {
            TaskKind::Map
        };
        let sources = task
            .store
            .outputs(task.job.id, kind)?
            .iter()
            .filter(|o| o.file.part != BAD_PART)
            .map(fetch)
            .collect::<Result<Vec<_>, _>>()?;
        sink = Some(crate::sink::apply_sqlite(
            &spec.sink,
            &spec.fingerprint,
            &sources,
        )?);
        Vec::new()
    } else if spec.reducers > 0 {
        place_reduce_outputs(task)?
    } else {
        compose_map_outputs(task, &staging)?
    };
    let bad_sources = task
        .store
        .outputs(task.job.id, TaskKind::Map)?
        .iter()
        .filter(|o| o.file.part == BAD_PART)
        .map(fetch)
        .collect::<Result<Vec<_>, _>>()?;
    let bad_records = if bad_sources.is_empty() {
        None
    } else {
        let local = out.staging(BAD_RECORDS, &staging);
        let file = concatenate(&bad_sources, &local)?;
        out.publish(BAD_RECORDS, &local)?;
        Some(file)
    };
    let composed = match &spec.compose {
        Some(name) => {
            let parts = files
                .iter()
                .map(|f| out.fetch(&f.name, &staging))
                .collect::<Result<Vec<_>, _>>()?;
            let local = out.staging(name, &staging);
            let file = concatenate(&parts, &local)?;
            out.publish(name, &local)?;
            Some(file)
        }
        None => None,
    };
    out.sync()?;
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
    // `_MANIFEST` last: a reader that trusts it never sees a half-written output.
    let local = out.staging(MANIFEST, &staging);
    let mut writer = TextWriter::create(&local)?;
    writer.write_raw(&text, 0)?;
    writer.commit()?;
    out.publish(MANIFEST, &local)?;
    out.sync()?;
    mr_store::failpoint("before-commit-finalize");
    task.store.commit_slice(
        task.lease,
        &mr_store::SliceCommit {
            cursor: "done",
            outputs: &[],
            counters: &[],
            last: true,
            max_job_counters: None,
            answers_split: false,
            split: None,
        },
    )?;
    tracing::info!("job completed");
    if spec.debug {
        // Kept for `mr-host dump`; only finalize's staging goes.
        cleanup_staging(&task.job.work_dir);
    } else {
        cleanup(&task.job.work_dir);
        out.remove_work();
    }
    task.notify_done(LifecycleEvent::TaskCompleted);
    task.notify_done(LifecycleEvent::JobCompleted);
    Ok(())
}

/// Removes a finished job's local work directory (and its finalize staging). Its files are no
/// longer referenced; failing to remove them wastes space but loses nothing, so it is a
/// warning.
pub(crate) fn cleanup(work_dir: &Path) {
    for dir in [work_dir.to_owned(), work_dir.with_file_name("final")] {
        if dir.exists()
            && let Err(e) = std::fs::remove_dir_all(&dir)
        {
            tracing::warn!("cannot remove the work directory {}: {e}", dir.display());
        }
    }
}

/// Removes finalize's staging directory only (`--debug` keeps the work directory).
pub(crate) fn cleanup_staging(work_dir: &Path) {
    let dir = work_dir.with_file_name("final");
    if dir.exists()
        && let Err(e) = std::fs::remove_dir_all(&dir)
    {
        tracing::warn!("cannot remove the staging directory {}: {e}", dir.display());
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ExecError + '_ {
    move |source| ExecError::Output {
        path: path.to_owned(),
        source,
    }
}

/// Puts each committed reduce output in place as `part-NNNNN`.
fn place_reduce_outputs(task: &mut Task<'_>) -> Result<Vec<ManifestFile>, TaskError> {
    let mut files = Vec::new();
    for o in task.store.outputs(task.job.id, TaskKind::Reduce)? {
        let name = part_name(o.idx);
        task.job.out.place(&o.file.path, &name, &o.file.checksum)?;
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
fn compose_map_outputs(
    task: &mut Task<'_>,
    staging: &Path,
) -> Result<Vec<ManifestFile>, TaskError> {
    let spec = &task.job.spec;
    let out = &task.job.out;
    let mut by_shard: Vec<Vec<mr_store::CommittedOutput>> = vec![Vec::new(); spec.shards.len()];
    for o in task.store.outputs(task.job.id, TaskKind::Map)? {
        if o.file.part != BAD_PART {
            // A task split off a shard writes into that shard's part, after it (the store
            // lists outputs in input order).
            by_shard[o.origin as usize].push(o);
        }
    }
    let mut files = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    for (shard, outputs) in by_shard.iter().enumerate() {
        let name = part_name(shard as u32);
        let local = out.staging(&name, staging);
        let mut writer = TextWriter::create(&local)?;
        for o in outputs {
            let path = out.fetch(&o.file.path, &task.job.work_dir)?;
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
        out.publish(&name, &local)?;
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
