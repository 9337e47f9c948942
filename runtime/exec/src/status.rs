//! The status document of a job (`mr-host status --json`, `GET /api/jobs/{id}`): the store's
//! [`JobStatus`] with what only the plan knows (input bytes, each map task's planned bytes)
//! and the job's completion hooks.

use std::collections::BTreeMap;

use mr_store::{HookRow, JobStatus, JobStore, TaskKind, TaskRow, TaskState};
use serde::Serialize;

use crate::ExecError;
use crate::spec::JobSpec;

/// A job's status with what only the plan knows.
#[derive(Debug, Clone, Serialize)]
pub struct StatusDocument {
    /// What the store knows.
    #[serde(flatten)]
    pub status: JobStatus,
    /// Built-in counters over committed work, every one present: the shape of `run --json`.
    pub counters: BTreeMap<String, u64>,
    /// The job's own counters over committed work (`run --json`'s `job_counters`).
    pub job_counters: BTreeMap<String, i64>,
    /// Input bytes of the whole job.
    pub input_bytes: u64,
    /// Of those, the bytes mapped by committed work: whole shards once done, and part-way
    /// shards by their records' bytes, except shards reading compressed files (whose
    /// decompressed bytes say nothing of the file's progress), counted once done. Never more
    /// than `input_bytes` (unlike `bytes-in`, which counts decompressed bytes).
    pub mapped_bytes: u64,
    /// Every task, when asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<TaskView>,
    /// The job's completion hooks and how their delivery went.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<HookRow>,
}

/// One task, with the input bytes its shard covers (map tasks).
#[derive(Debug, Clone, Serialize)]
pub struct TaskView {
    /// What the store knows.
    #[serde(flatten)]
    pub row: TaskRow,
    /// For a map task, the bytes of its shard (compare with its `bytes-in` counter).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planned_bytes: Option<u64>,
}

/// The status document of job `id`, with up to `events` recent events and, with `tasks`, every
/// task.
pub fn status_document(
    store: &dyn JobStore,
    id: i64,
    events: u32,
    tasks: bool,
) -> Result<StatusDocument, ExecError> {
    let mut status = store.status(id, events)?;
    let spec = JobSpec::parse(&store.job(id)?.spec, id)?;
    // A lease whose process is gone (on this host) is held by nobody: `status` must not show
    // it as running. A worker takes it over at once; until one does, it is stale.
    for lease in &mut status.leases {
        lease.stale |= crate::owner::is_dead(&lease.owner);
    }
    let (counters, job_counters) = crate::counters::split(status.counters.clone());
    let rows = store.tasks(id)?;
    Ok(StatusDocument {
        counters,
        job_counters,
        input_bytes: spec.files.iter().map(|f| f.len).sum(),
        mapped_bytes: mapped_bytes(&spec, &rows),
        tasks: if tasks {
            views(rows, &spec)
        } else {
            Vec::new()
        },
        hooks: store.hooks(id)?,
        status,
    })
}

/// Every task of job `id`, with its planned bytes.
pub fn task_views(store: &dyn JobStore, id: i64) -> Result<Vec<TaskView>, ExecError> {
    let spec = JobSpec::parse(&store.job(id)?.spec, id)?;
    Ok(views(store.tasks(id)?, &spec))
}

/// Input bytes mapped by committed work (see [`StatusDocument::mapped_bytes`]).
pub(crate) fn mapped_bytes(spec: &JobSpec, tasks: &[TaskRow]) -> u64 {
    tasks
        .iter()
        .filter(|t| t.kind == TaskKind::Map)
        .map(|t| {
            let Some(shard) = task_shard(spec, t) else {
                return 0;
            };
            let planned = shard.bytes();
            if t.state == TaskState::Done {
                return planned;
            }
            let compressed = shard.ranges.iter().any(|r| {
                spec.files
                    .get(r.file)
                    .is_some_and(mr_io::InputFile::is_compressed)
            });
            if compressed {
                return 0;
            }
            let read = t
                .counters
                .iter()
                .find(|(n, _)| n == "bytes-in")
                .map_or(0, |(_, v)| (*v).max(0) as u64);
            read.min(planned)
        })
        .sum()
}

fn views(rows: Vec<TaskRow>, spec: &JobSpec) -> Vec<TaskView> {
    rows.into_iter()
        .map(|row| TaskView {
            planned_bytes: (row.kind == TaskKind::Map)
                .then(|| task_shard(spec, &row).map(|s| s.bytes()))
                .flatten(),
            row,
        })
        .collect()
}

/// What map task `t` reads now: its planned shard, or its bounds after a straggler split.
fn task_shard(spec: &JobSpec, t: &TaskRow) -> Option<mr_io::Shard> {
    if t.bounds.is_none() && spec.shards.get(t.idx as usize).is_none() {
        return None;
    }
    crate::split::shard_of(0, spec, t.idx, t.bounds.as_deref())
        .ok()
        .map(|(shard, _)| shard)
}
