//! The map phase: read a shard in batches, call the guest, partition, sort, combine, spill.

use std::path::PathBuf;
use std::sync::Mutex;

use mr_engine::{GuestError, Instance};
use mr_io::{LineReader, Shard};
use mr_shuffle::{RunWriter, SortBuffer, partition_of};

use crate::writer::{TextWriter, part_name};
use crate::{ExecError, Progress, Shared, TaskQueue, run_workers};

/// Input bytes per combine call.
const COMBINE_BATCH_BYTES: usize = 256 * 1024;

/// Runs every shard. For map-reduce jobs returns, per partition, its run files in input order;
/// for map-only jobs, one list with the part files in shard order.
pub(crate) fn run_map_phase(
    shared: &Shared<'_>,
    shards: &[Shard],
    partitions: u32,
    workers: u32,
) -> Result<Vec<Vec<PathBuf>>, ExecError> {
    let queue = TaskQueue::new(shards.len());
    // (shard, spill, partition, path) of every run, sorted afterwards into input order.
    let runs: Mutex<Vec<(u32, u32, u32, PathBuf)>> = Mutex::new(Vec::new());
    run_workers(shared, workers, || {
        let mut instance = None;
        while let Some(i) = queue.take(&shared.cancelled) {
            let shard = &shards[i];
            let task = shared.task("map", shard.index);
            let inst = match &mut instance {
                Some(inst) => {
                    let inst: &mut Instance = inst;
                    inst.set_task(task);
                    inst
                }
                None => instance.insert(
                    Instance::new(&shared.config.job, task)
                        .map_err(|e| guest_error(shared, "map", shard.index, None, e))?,
                ),
            };
            let produced = map_shard(shared, inst, shard, partitions)?;
            runs.lock().expect("runs lock").extend(produced);
        }
        Ok(())
    })?;
    let mut runs = runs.into_inner().expect("runs lock");
    runs.sort();
    if partitions == 0 {
        return Ok(vec![runs.into_iter().map(|r| r.3).collect()]);
    }
    let mut by_partition = vec![Vec::new(); partitions as usize];
    for (_, _, p, path) in runs {
        by_partition[p as usize].push(path);
    }
    Ok(by_partition)
}

pub(crate) fn guest_error(
    shared: &Shared<'_>,
    phase: &'static str,
    index: u32,
    location: Option<String>,
    error: GuestError,
) -> ExecError {
    ExecError::Guest {
        job: shared.job_id.clone(),
        phase,
        unit: if phase == "reduce" {
            "partition"
        } else {
            "shard"
        },
        index,
        attempt: 1,
        location,
        error: Box::new(error),
    }
}

/// Where a failed map batch was: the blamed record, or the batch's first and last records.
fn batch_location(batch: &[u8], record_index: Option<u32>) -> Option<String> {
    let key = |kv: Result<(&[u8], &[u8]), _>| {
        kv.ok()
            .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
    };
    if let Some(i) = record_index {
        return mr_codec::kvs(batch).nth(i as usize).and_then(key);
    }
    let first = mr_codec::kvs(batch).next().and_then(key)?;
    let last = mr_codec::kvs(batch).last().and_then(key)?;
    Some(if first == last {
        first
    } else {
        format!("a record in the batch {first} .. {last}")
    })
}

fn map_shard(
    shared: &Shared<'_>,
    instance: &mut Instance,
    shard: &Shard,
    partitions: u32,
) -> Result<Vec<(u32, u32, u32, PathBuf)>, ExecError> {
    let config = shared.config;
    let mut reader = LineReader::new(&shared.files, shard, config.max_record_bytes);
    let mut batch = Vec::with_capacity(config.batch_bytes + 4096);
    let mut buffers: Vec<SortBuffer> = (0..partitions).map(|_| SortBuffer::default()).collect();
    let mut buffered = 0usize;
    let mut spills = 0u32;
    let mut produced = Vec::new();
    let mut direct = if partitions == 0 {
        let path = config.output.join(part_name(shard.index));
        Some(TextWriter::create(&path)?)
    } else {
        None
    };
    loop {
        batch.clear();
        let stats = reader.next_batch(&mut batch, config.batch_bytes)?;
        if stats.records == 0 {
            break;
        }
        let output = instance.map(&batch).map_err(|e| {
            let location = batch_location(&batch, e.record_index);
            guest_error(shared, "map", shard.index, location, e)
        })?;
        shared.absorb_counters(instance);
        shared.counters.add("records-in", stats.records);
        shared.counters.add("bytes-in", stats.bytes);
        shared.progress(Progress::Mapped(stats.bytes));
        if let Some(writer) = &mut direct {
            let before = writer.records;
            writer.write_batch(&output)?;
            shared
                .counters
                .add("map-output-records", writer.records - before);
            continue;
        }
        let mut emitted = 0;
        for kv in mr_codec::kvs(&output) {
            let (key, value) = kv.map_err(|e| {
                guest_error(
                    shared,
                    "map",
                    shard.index,
                    batch_location(&batch, None),
                    GuestError::protocol(format!("the job's map output is malformed: {e}")),
                )
            })?;
            let p = partition_of(key, partitions);
            let buffer = &mut buffers[p as usize];
            let before = buffer.memory();
            buffer.push(key, value);
            buffered += buffer.memory() - before;
            emitted += 1;
        }
        shared.counters.add("map-output-records", emitted);
        if buffered >= config.sort_buffer_bytes {
            spill(
                shared,
                instance,
                shard.index,
                spills,
                &mut buffers,
                &mut produced,
            )?;
            spills += 1;
            buffered = 0;
        }
    }
    if let Some(writer) = direct {
        let (records, bytes, path) = writer.commit()?;
        shared.counters.add("output-records", records);
        shared.counters.add("output-bytes", bytes);
        return Ok(vec![(shard.index, 0, 0, path)]);
    }
    if buffers.iter().any(|b| !b.is_empty()) || spills == 0 {
        spill(
            shared,
            instance,
            shard.index,
            spills,
            &mut buffers,
            &mut produced,
        )?;
    }
    Ok(produced)
}

/// Sorts every non-empty partition buffer, combines it when the job has a combiner, and writes
/// it as a run file.
fn spill(
    shared: &Shared<'_>,
    instance: &mut Instance,
    shard: u32,
    spill: u32,
    buffers: &mut [SortBuffer],
    produced: &mut Vec<(u32, u32, u32, PathBuf)>,
) -> Result<(), ExecError> {
    let combine = shared.config.job.info().combine;
    let mut group_batch = Vec::new();
    for (p, buffer) in buffers.iter_mut().enumerate() {
        if buffer.is_empty() {
            continue;
        }
        let path = shared
            .work_dir
            .join(format!("map-{shard:05}-{spill:04}-p{p:05}.run"));
        let mut run = RunWriter::create(&path)?;
        let records = buffer.len() as u64;
        if combine {
            shared.counters.add("combine-input-records", records);
            let mut out_records = 0;
            let mut sorted = buffer.sorted().peekable();
            while sorted.peek().is_some() {
                group_batch.clear();
                // Fill a group batch with whole groups.
                while let Some(&(key, _)) = sorted.peek() {
                    if group_batch.len() >= COMBINE_BATCH_BYTES {
                        break;
                    }
                    let at = mr_codec::begin_group(&mut group_batch, key);
                    let mut count = 0u32;
                    while let Some(&(k, v)) = sorted.peek() {
                        if k != key {
                            break;
                        }
                        mr_codec::put_value(&mut group_batch, v);
                        count += 1;
                        sorted.next();
                    }
                    mr_codec::finish_group(&mut group_batch, at, count, 0);
                }
                let combined = instance
                    .combine(&group_batch)
                    .map_err(|e| guest_error(shared, "combine", shard, None, e))?;
                shared.absorb_counters(instance);
                out_records += write_combined(shared, shard, &group_batch, &combined, &mut run)?;
            }
            shared.counters.add("combine-output-records", out_records);
        } else {
            for (key, value) in buffer.sorted() {
                run.push(key, value)?;
            }
        }
        run.finish(false)?;
        buffer.clear();
        shared.counters.add("spilled-runs", 1);
        produced.push((shard, spill, p as u32, path));
    }
    Ok(())
}

/// Writes the combiner's output for each group of `groups` to the run; returns the number of
/// values written. Malformed guest output is reported as a combine failure of `shard`.
fn write_combined(
    shared: &Shared<'_>,
    shard: u32,
    groups: &[u8],
    combined: &[u8],
    run: &mut RunWriter,
) -> Result<u64, ExecError> {
    let malformed = |what: String| {
        let error = GuestError::protocol(format!("the job's combine output is malformed: {what}"));
        guest_error(shared, "combine", shard, None, error)
    };
    let mut written = 0;
    let mut outputs = mr_codec::counted_values(combined);
    for group in mr_codec::groups(groups) {
        let group = group.expect("the host wrote this batch");
        let values = match outputs.next() {
            Some(Ok(values)) => values,
            Some(Err(e)) => return Err(malformed(e.to_string())),
            None => return Err(malformed("fewer groups than were given".into())),
        };
        for value in values {
            let value = value.map_err(|e| malformed(e.to_string()))?;
            run.push(group.key, value)?;
            written += 1;
        }
    }
    if outputs.next().is_some() {
        return Err(malformed("more groups than were given".into()));
    }
    Ok(written)
}
