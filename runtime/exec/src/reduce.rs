//! A reduce task: merge the committed runs of one partition, group by key, call the guest in
//! group batches, write the partition's output file and commit it (one slice).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mr_engine::{LifecycleEvent, ValueSource};
use mr_shuffle::Merger;
use mr_store::{OutputFile, TaskKind};

use crate::Progress;
use crate::counters::SliceCounters;
use crate::error::Step;
use crate::task::{Task, TaskError, guest_error, remove, write_failure};
use crate::writer::{TextWriter, shown, sync_dir, temp_name};

/// Bytes of values per reduce call before a group is continued through the value stream.
const REDUCE_BATCH_BYTES: usize = 256 * 1024;

pub(crate) fn run(task: &mut Task<'_>) -> Result<(), TaskError> {
    task.announce_reduce();
    let spec = &task.job.spec;
    let partition = task.lease.idx;
    task.set_identity(Step::Reduce, 0);
    task.store.slice_started(task.lease)?;
    // The map runs of this partition, in input order: (shard, slice, spill).
    let work_dir = &task.job.work_dir;
    let runs = task
        .store
        .outputs(task.job.id, TaskKind::Map)?
        .into_iter()
        .filter(|o| o.file.part == partition)
        .map(|o| task.job.out.fetch(&o.file.path, work_dir))
        .collect::<Result<Vec<_>, _>>()?;
    let path = work_dir.join(format!("r{partition:05}-a{}.out", task.lease.attempt));
    let mut counters = SliceCounters::new(spec.max_counters);
    // More runs than this thread's memory share can hold open are merged in passes first.
    let mut intermediate = Vec::new();
    let merged = mr_shuffle::reduce_fan_in(
        runs,
        mr_shuffle::fan_in_for(task.env.memory_share),
        work_dir,
        &format!("r{partition:05}-a{}", task.lease.attempt),
        &mut intermediate,
    )
    .map_err(TaskError::from)
    .and_then(|runs| {
        if !intermediate.is_empty() {
            counters.add("merge-intermediate-runs", intermediate.len() as u64);
        }
        reduce_partition(task, &runs, &path, &mut counters)
    });
    for file in &intermediate {
        remove(file);
    }
    let written = match merged {
        Ok(w) => w,
        Err(e) => {
            remove(&temp_name(&path));
            return Err(e);
        }
    };
    sync_dir(work_dir)?;
    let rel = task.relative(&path);
    task.job.out.publish_work(&path, &rel)?;
    mr_store::failpoint("before-commit-reduce");
    let output = OutputFile {
        path: rel,
        part: partition,
        bytes: written.bytes,
        records: written.records,
        checksum: written.sha256,
    };
    let committed = task.store.commit_slice(
        task.lease,
        &mr_store::SliceCommit {
            cursor: "done",
            outputs: &[output],
            counters: &counters.deltas(),
            last: true,
            max_job_counters: Some(spec.max_counters),
            answers_split: false,
            split: None,
        },
    );
    if let Err(e) = committed {
        remove(&path);
        return Err(e.into());
    }
    task.progress(Progress::PartitionDone);
    task.notify_done(LifecycleEvent::SliceCommitted);
    task.notify_done(LifecycleEvent::TaskCompleted);
    Ok(())
}

/// Streams the rest of one key's values out of the shared merger, counting what it streamed
/// (the reduce loop reads the count after the call, when the guest has dropped its handle).
struct GroupTail {
    merger: Arc<Mutex<Merger>>,
    key: Vec<u8>,
    streamed: Arc<AtomicU64>,
}

impl ValueSource for GroupTail {
    fn next_batch(&mut self, max_bytes: u32, out: &mut Vec<u8>) -> Result<(), String> {
        // The guest may ask for anything up to 4 GiB; the host's batch size bounds what one
        // call builds (the guest gets the rest in later calls).
        let max_bytes = (max_bytes as usize).min(REDUCE_BATCH_BYTES);
        let mut merger = self.merger.lock().expect("merger lock");
        while let Some((key, value)) = merger.current() {
            if !mr_shuffle::same_key(key, &self.key) || (out.len() >= max_bytes && !out.is_empty())
            {
                break;
            }
            mr_codec::put_value(out, value);
            self.streamed.fetch_add(1, Ordering::Relaxed);
            merger.advance().map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

fn reduce_partition(
    task: &mut Task<'_>,
    runs: &[std::path::PathBuf],
    path: &std::path::Path,
    counters: &mut SliceCounters,
) -> Result<crate::writer::WrittenFile, TaskError> {
    let merger = Arc::new(Mutex::new(Merger::open(runs)?));
    let mut writer = TextWriter::create_as(path, task.job.spec.sink.file_format())?;
    let mut batch = Vec::with_capacity(REDUCE_BATCH_BYTES + 4096);
    let mut key = Vec::new();
    // The first key of the current batch, for messages.
    let mut first = Vec::new();
    let (mut groups, mut values) = (0u64, 0u64);
    loop {
        if task.stopped() {
            // Never commit part of a partition: give the task up.
            return Err(TaskError::Refused(format!(
                "reduce task {} attempt {}: the lease was taken over (or the job cancelled) while reducing",
                task.lease.idx, task.lease.attempt
            )));
        }
        batch.clear();
        let mut more = false;
        {
            let mut m = merger.lock().expect("merger lock");
            first.clear();
            if let Some((k, _)) = m.current() {
                first.extend_from_slice(k);
            }
            while batch.len() < REDUCE_BATCH_BYTES {
                let Some((k, _)) = m.current() else { break };
                key.clear();
                key.extend_from_slice(k);
                groups += 1;
                let at = mr_codec::begin_group(&mut batch, &key);
                let mut count = 0u32;
                while let Some((k, v)) = m.current() {
                    if !mr_shuffle::same_key(k, &key) {
                        break;
                    }
                    if batch.len() >= REDUCE_BATCH_BYTES && count > 0 {
                        more = true;
                        break;
                    }
                    mr_codec::put_value(&mut batch, v);
                    count += 1;
                    m.advance()?;
                }
                values += u64::from(count);
                mr_codec::finish_group(
                    &mut batch,
                    at,
                    count,
                    if more { mr_codec::GROUP_MORE } else { 0 },
                );
                if more {
                    break;
                }
            }
        }
        if batch.is_empty() {
            break;
        }
        let streamed = Arc::new(AtomicU64::new(0));
        let rest: Option<Box<dyn ValueSource>> = more.then(|| {
            Box::new(GroupTail {
                merger: merger.clone(),
                key: key.clone(),
                streamed: streamed.clone(),
            }) as Box<dyn ValueSource>
        });
        let output = task.instance.reduce(&batch, rest).map_err(|e| {
            let location =
                Some(format!("key {:?}", String::from_utf8_lossy(&key))).filter(|_| more);
            guest_error(task, Step::Reduce, location, e)
        })?;
        counters.absorb(task.instance)?;
        values += streamed.load(Ordering::Relaxed);
        if more {
            // The guest may stop reading a group early; skip what it left.
            let mut m = merger.lock().expect("merger lock");
            while let Some((k, _)) = m.current() {
                if !mr_shuffle::same_key(k, &key) {
                    break;
                }
                values += 1;
                m.advance()?;
            }
        }
        writer.write_batch(&output).map_err(|e| {
            let location = format!("the batch of keys {} .. {}", shown(&first), shown(&key));
            write_failure(task, Step::Reduce, Some(location), e)
        })?;
    }
    let written = writer.commit()?;
    counters.add("reduce-groups", groups);
    counters.add("reduce-input-records", values);
    counters.add("output-records", written.records);
    counters.add("output-bytes", written.bytes);
    Ok(written)
}
