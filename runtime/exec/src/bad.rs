//! Bad input records under `--max-bad-records N`: each one skipped is counted in the built-in
//! `bad-records` counter and logged, with its location and reason, to a per-slice file committed
//! with the slice like any output (part number [`BAD_PART`]). Finalize composes the committed
//! files, in (shard, slice) order, into `OUTPUT/_bad_records`, so reruns after crashes produce
//! the same file, and counts are exact because they are committed with their slice.
//!
//! The allowance is checked twice: while reading (committed count + this slice's, so a job over
//! it fails early), and at finalize against the committed total (exact even when concurrent
//! slices each stayed under it while reading).

use crate::task::{SliceFiles, Task, TaskError};
use crate::writer::{TextWriter, temp_name};
use crate::{ExecError, counters::SliceCounters};

/// The `part` that marks a committed bad-record file among a map task's outputs.
pub(crate) const BAD_PART: u32 = u32::MAX;

/// The composed bad-record log in the output directory.
pub const BAD_RECORDS: &str = "_bad_records";

pub(crate) struct BadRecords {
    max: u64,
    committed: u64,
    count: u64,
    writer: Option<TextWriter>,
}

impl BadRecords {
    pub(crate) fn new(task: &Task<'_>) -> Result<Self, TaskError> {
        let max = task.job.spec.max_bad_records;
        let committed = if max > 0 { committed(task)? } else { 0 };
        Ok(BadRecords {
            max,
            committed,
            count: 0,
            writer: None,
        })
    }

    pub(crate) fn add(
        &mut self,
        task: &Task<'_>,
        bad: Vec<mr_io::BadRecord>,
        counters: &mut SliceCounters,
        files: &mut SliceFiles,
    ) -> Result<(), TaskError> {
        for b in bad {
            self.count += 1;
            counters.add("bad-records", 1);
            if self.committed + self.count > self.max {
                return Err(TaskError::Failed(ExecError::TooManyBadRecords {
                    count: self.committed + self.count,
                    max: self.max,
                    location: b.location,
                    reason: b.reason,
                }));
            }
            tracing::warn!(
                job = task.job.id,
                "skipped bad record at {}: {}",
                b.location,
                b.reason
            );
            if self.writer.is_none() {
                let (shard, slice, attempt) =
                    (task.lease.idx, task.lease.slices, task.lease.attempt);
                let path = task
                    .job
                    .work_dir
                    .join(format!("b{shard:05}-{slice:05}-a{attempt}.bad"));
                files.created.push(temp_name(&path));
                self.writer = Some(TextWriter::create(&path)?);
            }
            let line = serde_json::json!({"location": b.location, "reason": b.reason});
            let mut text = line.to_string();
            text.push('\n');
            self.writer
                .as_mut()
                .expect("created above")
                .write_raw(text.as_bytes(), 1)?;
        }
        Ok(())
    }

    /// Puts the slice's bad-record file (if any) among its outputs.
    pub(crate) fn finish(self, task: &Task<'_>, files: &mut SliceFiles) -> Result<(), TaskError> {
        if let Some(writer) = self.writer {
            files.push_written(task, writer.commit()?, BAD_PART);
        }
        Ok(())
    }
}

/// Bad records committed so far by the whole job.
pub(crate) fn committed(task: &Task<'_>) -> Result<u64, TaskError> {
    Ok(task
        .store
        .job_counters(task.job.id)?
        .into_iter()
        .find(|(n, _)| n == "bad-records")
        .map_or(0, |(_, v)| v.max(0) as u64))
}
