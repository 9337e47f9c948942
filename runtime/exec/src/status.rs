//! The status document of a job (`mr-host status --json`, `GET /api/jobs/{id}`): the store's
//! [`JobStatus`] with what only the plan knows (input bytes, each map task's planned bytes)
//! and the job's completion hooks.

use mr_store::{HookRow, JobStatus, JobStore, TaskKind, TaskRow};
use serde::Serialize;

use crate::ExecError;
use crate::spec::JobSpec;

/// A job's status with what only the plan knows.
#[derive(Debug, Clone, Serialize)]
pub struct StatusDocument {
    /// What the store knows.
    #[serde(flatten)]
    pub status: JobStatus,
    /// Input bytes of the whole job (compare with the `bytes-in` counter).
    pub input_bytes: u64,
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
    let status = store.status(id, events)?;
    let spec = JobSpec::parse(&store.job(id)?.spec, id)?;
    Ok(StatusDocument {
        input_bytes: spec.files.iter().map(|f| f.len).sum(),
        tasks: if tasks {
            views(store.tasks(id)?, &spec)
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

fn views(rows: Vec<TaskRow>, spec: &JobSpec) -> Vec<TaskView> {
    rows.into_iter()
        .map(|row| TaskView {
            planned_bytes: (row.kind == TaskKind::Map)
                .then(|| spec.shards.get(row.idx as usize).map(|s| s.bytes()))
                .flatten(),
            row,
        })
        .collect()
}
