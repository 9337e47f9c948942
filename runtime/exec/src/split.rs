//! Straggler splitting (the seeds' "liquid sharding"): a worker with nothing to do asks the
//! owner of the map task with the most unread input to give part of it away, and the owner
//! cuts its unread rest in two at its next slice commit.
//!
//! Why the owner cuts, not the idle worker: only the owner knows how far its reader has got
//! past the committed cursor (the slice in flight), so only it can cut where nothing was read
//! yet; and its commit is fenced by its lease, so a split by a worker that lost its lease is
//! refused with the rest of its slice. The protocol:
//!
//! 1. The idle worker picks the leased map task with the most input a split could give away
//!    ([`mr_io::splittable_bytes`] from its committed cursor, at least [`MIN_SPLIT_BYTES`]) and
//!    records a request ([`mr_store::JobStore::request_split`]).
//! 2. The owner looks for a request when its slice ends ([`mr_store::JobStore::split_wanted`],
//!    one read per slice), and plans a cut ([`mr_io::ShardReader::plan_split`]) at the start
//!    of a later slice, about halfway through what is left: exactly where that slice would
//!    start if the shard were read whole. It commits the slice with the cut; the store applies
//!    it in the same transaction, if it is still wanted: the task keeps a prefix of its ranges
//!    (its cursors stay valid) and a new pending map task gets the rest.
//! 3. Only then does the owner's reader stop at the cut ([`mr_io::ShardReader::apply_split`]).
//!
//! Nothing about the output changes, `_MANIFEST` included. Both parts are read in the same
//! slices as without the split, so in the same batches: every map call gets the same records,
//! every slice spills the same runs, every counter adds up the same. The owner answers at the
//! end of a slice rather than at once for that reason: ending a slice early would change the
//! batches, and with them what a guest that combines within a call emits. And every task
//! records the planned shard it reads part of and where in it it starts ([`position`]); the
//! store lists committed outputs by (planned shard, position, slice), so the reduce side
//! merges runs, and a map-only job composes its part files, in input order.
//!
//! Not split: jobs with `--limit` (its count is per shard) or `--slice-records` (slice ends
//! could not be worked out without reading), and input past the plain text (a compressed
//! file, a zip member or a table being read, and what follows one).

use mr_io::{FileRange, InputFile, Shard};
use mr_store::{JobStore, TaskKind, TaskState};
use serde::{Deserialize, Serialize};

use crate::ExecError;
use crate::spec::JobSpec;

/// Less unread input than this is not worth a new task.
pub(crate) const MIN_SPLIT_BYTES: u64 = 1 << 20;

/// Whether the job's map tasks may be split.
pub(crate) fn allowed(spec: &JobSpec) -> bool {
    spec.limit.is_none() && spec.slice.records == u64::MAX
}

/// What a map task reads when it is not its whole planned shard (stored as its `bounds`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Bounds {
    /// The index of `ranges[0]` among the planned shard's ranges: where [`position`]s count
    /// from.
    pub first_range: usize,
    /// The ranges, in input order.
    pub ranges: Vec<FileRange>,
}

impl Bounds {
    pub(crate) fn encode(&self) -> String {
        serde_json::to_string(self).expect("bounds serialize")
    }
}

/// The ranges map task `idx` reads and where its first one is in its planned shard.
pub(crate) fn shard_of(
    job: i64,
    spec: &JobSpec,
    idx: u32,
    bounds: Option<&str>,
) -> Result<(Shard, usize), ExecError> {
    match bounds {
        Some(text) => {
            let bounds: Bounds = serde_json::from_str(text)
                .map_err(|source| ExecError::PlanUnreadable { id: job, source })?;
            Ok((
                Shard {
                    index: idx,
                    ranges: bounds.ranges,
                },
                bounds.first_range,
            ))
        }
        None => Ok((spec.shards[idx as usize].clone(), 0)),
    }
}

/// Where a task starting at byte (or member, or index) `at` of range `range` of its planned
/// shard is, as text that sorts in input order (fixed-width numbers).
pub(crate) fn position(range: usize, at: u64) -> String {
    format!("{range:010}.{at:020}")
}

/// The split `plan` cut in the task reading `shard` (whose first range is `first_range` of its
/// planned shard): the kept and given bounds, the given part's position, and a description.
pub(crate) fn encode(
    files: &[InputFile],
    first_range: usize,
    plan: &mr_io::SplitPlan,
) -> (String, String, String, String) {
    let kept = Bounds {
        first_range,
        ranges: plan.kept.clone(),
    };
    let given = Bounds {
        first_range: first_range + plan.at_range,
        ranges: plan.given.clone(),
    };
    let start = &plan.given[0];
    let file = &files[start.file].display;
    let detail = if start.members.is_none() && start.keys.is_none() && start.start > 0 {
        // A cut's line is known only when its range numbers its lines in the file (a plan of
        // an older version): splitting counts no lines.
        let line = if start.relative {
            String::new()
        } else {
            format!(" (line {})", start.first_line)
        };
        format!(
            "{} range(s) from {file} byte {}{line}",
            plan.given.len(),
            start.start,
        )
    } else {
        format!("{} range(s) from {file}", plan.given.len())
    };
    (
        kept.encode(),
        given.encode(),
        position(given.first_range, plan.at),
        detail,
    )
}

/// An idle worker's part: asks the owner of the running map task with the most input a split
/// could give away to split it. Returns whether a split is on its way (asked for now or
/// before), so the caller looks for the new task again soon.
pub(crate) fn request(
    store: &mut dyn JobStore,
    job: i64,
    spec: &JobSpec,
) -> Result<bool, ExecError> {
    if !allowed(spec) {
        return Ok(false);
    }
    // The owner cuts at a slice start past the slice it is reading: less than two slices
    // cannot be cut.
    let least = MIN_SPLIT_BYTES.max(spec.slice.bytes.saturating_mul(2));
    let tasks = store.tasks(job)?;
    let maps = || tasks.iter().filter(|t| t.kind == TaskKind::Map);
    if maps().any(|t| t.split_wanted && t.state == TaskState::Leased) {
        return Ok(true);
    }
    if maps().any(|t| t.state == TaskState::Pending) {
        // One waits out a retry backoff: it will be taken then.
        return Ok(false);
    }
    let mut best: Option<(u64, u32)> = None;
    for t in maps().filter(|t| t.state == TaskState::Leased) {
        let Ok((shard, _)) = shard_of(job, spec, t.idx, t.bounds.as_deref()) else {
            continue;
        };
        let bytes = mr_io::splittable_bytes(&spec.files, &shard.ranges, &t.cursor);
        if bytes >= least && best.is_none_or(|(b, _)| bytes > b) {
            best = Some((bytes, t.idx));
        }
    }
    match best {
        Some((_, idx)) => Ok(store.request_split(job, idx)?),
        None => Ok(false),
    }
}
