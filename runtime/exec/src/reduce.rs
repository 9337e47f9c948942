//! The reduce phase: merge a partition's runs, group by key, call the guest in group batches,
//! write the part file.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mr_engine::{Instance, ValueSource};
use mr_shuffle::Merger;

use crate::map::guest_error;
use crate::writer::{TextWriter, part_name};
use crate::{ExecError, Progress, Shared, TaskQueue, run_workers};

/// Bytes of values per reduce call before a group is continued through the value stream.
const REDUCE_BATCH_BYTES: usize = 256 * 1024;

pub(crate) fn run_reduce_phase(
    shared: &Shared<'_>,
    runs: Vec<Vec<PathBuf>>,
    workers: u32,
) -> Result<Vec<PathBuf>, ExecError> {
    let queue = TaskQueue::new(runs.len());
    let outputs: Mutex<Vec<(u32, PathBuf)>> = Mutex::new(Vec::new());
    run_workers(shared, workers, || {
        let mut instance: Option<Instance> = None;
        while let Some(p) = queue.take(&shared.cancelled) {
            let p32 = p as u32;
            let task = shared.task("reduce", p32);
            let inst = match &mut instance {
                Some(inst) => {
                    inst.set_task(task);
                    inst
                }
                None => instance.insert(
                    Instance::new(&shared.config.job, task)
                        .map_err(|e| guest_error(shared, "reduce", p32, None, e))?,
                ),
            };
            let path = reduce_partition(shared, inst, p32, &runs[p])?;
            outputs.lock().expect("outputs lock").push((p32, path));
            shared.progress(Progress::PartitionDone);
        }
        Ok(())
    })?;
    let mut outputs = outputs.into_inner().expect("outputs lock");
    outputs.sort();
    Ok(outputs.into_iter().map(|(_, p)| p).collect())
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
        let mut merger = self.merger.lock().expect("merger lock");
        while let Some((key, value)) = merger.current() {
            if key != self.key.as_slice() || (out.len() >= max_bytes as usize && !out.is_empty()) {
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
    shared: &Shared<'_>,
    instance: &mut Instance,
    partition: u32,
    runs: &[PathBuf],
) -> Result<PathBuf, ExecError> {
    let merger = Arc::new(Mutex::new(Merger::open(runs)?));
    let mut writer = TextWriter::create(&shared.config.output.join(part_name(partition)))?;
    let mut batch = Vec::with_capacity(REDUCE_BATCH_BYTES + 4096);
    let mut key = Vec::new();
    let (mut groups, mut values) = (0u64, 0u64);
    loop {
        if shared.cancelled.load(Ordering::Relaxed) {
            break;
        }
        batch.clear();
        let mut more = false;
        {
            let mut m = merger.lock().expect("merger lock");
            while batch.len() < REDUCE_BATCH_BYTES {
                let Some((k, _)) = m.current() else { break };
                key.clear();
                key.extend_from_slice(k);
                groups += 1;
                let at = mr_codec::begin_group(&mut batch, &key);
                let mut count = 0u32;
                while let Some((k, v)) = m.current() {
                    if k != key.as_slice() {
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
        let output = instance.reduce(&batch, rest).map_err(|e| {
            guest_error(
                shared,
                "reduce",
                partition,
                Some(format!("key {:?}", String::from_utf8_lossy(&key))).filter(|_| more),
                e,
            )
        })?;
        shared.absorb_counters(instance);
        values += streamed.load(Ordering::Relaxed);
        if more {
            // The guest may stop reading a group early; skip what it left.
            let mut m = merger.lock().expect("merger lock");
            while let Some((k, _)) = m.current() {
                if k != key.as_slice() {
                    break;
                }
                values += 1;
                m.advance()?;
            }
        }
        writer.write_batch(&output)?;
    }
    let (records, bytes, path) = writer.commit()?;
    shared.counters.add("reduce-groups", groups);
    shared.counters.add("reduce-input-records", values);
    shared.counters.add("output-records", records);
    shared.counters.add("output-bytes", bytes);
    Ok(path)
}
