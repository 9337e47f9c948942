//! A map task: read the shard slice by slice from its committed cursor; per slice, call the
//! guest in batches, partition, sort, combine and spill run files (or, for map-only jobs, write
//! the output), then commit the slice.

use std::time::{Duration, Instant};

use mr_engine::{GuestError, LifecycleEvent};
use mr_io::ShardReader;
use mr_shuffle::{RunWriter, SpillBuffer, partition_of};
use mr_store::OutputFile;

use crate::Progress;
use crate::counters::SliceCounters;
use crate::error::Step;
use crate::help::HelpLine;
use crate::task::{SliceFiles, Task, TaskError, guest_error, write_failure};
use crate::writer::{TextWriter, sync_dir, temp_name};

/// Input bytes per combine call.
const COMBINE_BATCH_BYTES: usize = 256 * 1024;

pub(crate) fn run(task: &mut Task<'_>) -> Result<(), TaskError> {
    let spec = &task.job.spec;
    // The planned shard, or what is left of it for this task after straggler splits.
    let (shard, first_range) = crate::split::shard_of(
        task.job.id,
        spec,
        task.lease.idx,
        task.lease.bounds.as_deref(),
    )?;
    // The cursor is opaque here: each input format defines its own (see mr_io::ShardReader).
    let cursor = task.lease.cursor.clone();
    // The whole map-side memory budget of this worker thread: output beyond it spills.
    let mut buffer = if spec.reducers > 0 {
        SpillBuffer::with_budget(task.env.memory_share)
    } else {
        SpillBuffer::default()
    };
    let mut batch = Vec::with_capacity(spec.batch_bytes as usize + 4096);
    // Where the batch's records came from, for a job that asks on demand (contract 0.2.0);
    // empty for 0.1.x jobs, whose keys carry it.
    let mut locations = mr_codec::Locations::default();
    // `--limit`: records this shard may still hand to the job (its committed slices count).
    let mut subset = Subset {
        remaining: match spec.limit {
            Some(limit) => {
                let committed = task
                    .store
                    .tasks(task.job.id)?
                    .into_iter()
                    .find(|t| t.kind == mr_store::TaskKind::Map && t.idx == task.lease.idx)
                    .and_then(|t| {
                        t.counters
                            .into_iter()
                            .find(|(n, _)| n == "records-in")
                            .map(|(_, v)| v.max(0) as u64)
                    })
                    .unwrap_or(0);
                Some(limit.saturating_sub(committed))
            }
            None => None,
        },
        threshold: spec.sample.map(sample_threshold),
        reached: false,
    };
    subset.reached = subset.remaining == Some(0);
    // One reader for all the task's slices: each slice continues where the last one committed
    // (its position is the cursor just committed). Reopening it per slice would make a
    // compressed shard, which cannot seek, inflate and discard everything before the cursor
    // again at every slice: quadratic in the shard's size.
    let mut reader = ShardReader::open(&spec.files, &shard, &cursor, spec.read_options())?;
    // An idle thread of this process may map batches for it (see crate::help); not with
    // `--limit` or `--sample`, whose record counts run across batches.
    let env = task.env;
    let help = env
        .help
        .as_ref()
        .filter(|_| spec.limit.is_none() && spec.sample.is_none())
        .map(|board| board.offer(task.job.id));
    // Batch buffers for the batches in flight while a helper maps (see `map_helped`).
    let mut spare = Vec::new();
    loop {
        let slice = task.lease.slices;
        let span = tracing::debug_span!("slice", slice);
        let _entered = span.enter();
        task.store.slice_started(task.lease)?;
        task.set_identity(Step::Map, slice);
        task.notify_start(LifecycleEvent::SliceStarted)?;
        let mut files = SliceFiles::default();
        let mut counters = SliceCounters::new(spec.max_counters);
        let source_before = reader.source_bytes_read();
        let mut bad = crate::bad::BadRecords::new(task)?;
        let result = map_slice(
            task,
            &mut reader,
            &mut buffer,
            (&mut batch, &mut locations),
            help.as_ref().map(|line| (line, &mut spare)),
            &mut files,
            &mut counters,
            &mut bad,
            &mut subset,
        )
        .and_then(|()| bad.finish(task, &mut files));
        if let Err(e) = result {
            files.remove_all();
            buffer.clear();
            return Err(e);
        }
        let renamed = files
            .rename_all()
            .and_then(|()| sync_dir(&task.job.work_dir))
            .and_then(|()| task.publish(&files));
        if let Err(e) = renamed {
            files.remove_all();
            return Err(e.into());
        }
        mr_store::failpoint("before-commit-map");
        // A shard that handed `--limit` records to the job is done, wherever its reader is.
        let last = reader.is_finished() || subset.reached;
        let next = reader.position();
        // Progress is against the input files' size: compressed bytes for compressed files.
        let source_bytes = reader.source_bytes_read() - source_before;
        let outputs = files.outputs();
        let deltas = counters.deltas();
        // Asked to split: cut the unread rest at a later slice's start (see crate::split).
        let answers_split = crate::split::allowed(spec) && task.store.split_wanted(task.lease)?;
        let plan = if answers_split && !last {
            reader
                .plan_split(spec.slice.bytes, crate::split::MIN_SPLIT_BYTES)
                .unwrap_or_else(|e| {
                    tracing::warn!("not splitting: {e}");
                    None
                })
        } else {
            None
        };
        let encoded = plan
            .as_ref()
            .map(|plan| crate::split::encode(&spec.files, first_range, plan));
        let committed = task.store.commit_slice(
            task.lease,
            &mr_store::SliceCommit {
                cursor: &next,
                outputs: &outputs,
                counters: &deltas,
                last,
                max_job_counters: Some(spec.max_counters),
                answers_split,
                split: encoded
                    .as_ref()
                    .map(|(kept, given, position, detail)| mr_store::SplitOff {
                        kept,
                        given,
                        position,
                        detail,
                    }),
            },
        );
        let split_to = match committed {
            Ok(split_to) => split_to,
            Err(e) => {
                files.remove_all();
                return Err(e.into());
            }
        };
        if let (Some(new_task), Some(plan), Some((.., detail))) = (split_to, &plan, &encoded) {
            // Committed: from now on this task reads only what it kept.
            reader.apply_split(plan);
            tracing::info!(new_task, "split off {detail}");
        }
        tracing::debug!(cursor = %next, "committed");
        task.progress(Progress::Mapped(source_bytes));
        task.notify_done(LifecycleEvent::SliceCommitted);
        if last {
            task.notify_done(LifecycleEvent::TaskCompleted);
            return Ok(());
        }
    }
}

/// Runs one slice: reads until a slice bound, the shard's end, or a lost lease.
// The slice's reader, buffers, files, counters, bad-record log and subset are each owned by
// `run` across slices; bundling them would only rename the same borrows.
#[allow(clippy::too_many_arguments)]
fn map_slice(
    task: &mut Task<'_>,
    reader: &mut ShardReader<'_>,
    buffer: &mut SpillBuffer,
    (batch, locations): (&mut Vec<u8>, &mut mr_codec::Locations),
    mut help: Option<(&HelpLine<'_>, &mut Vec<BatchBuffers>)>,
    files: &mut SliceFiles,
    counters: &mut SliceCounters,
    bad: &mut crate::bad::BadRecords,
    subset: &mut Subset,
) -> Result<(), TaskError> {
    let on_demand = task.instance.locations_on_demand();
    let spec = &task.job.spec;
    let (shard, slice, attempt) = (task.lease.idx, task.lease.slices, task.lease.attempt);
    let direct = if spec.reducers == 0 {
        let path = task
            .job
            .work_dir
            .join(format!("m{shard:05}-{slice:05}-a{attempt}.out"));
        files.created.push(temp_name(&path));
        Some(TextWriter::create_as(&path, spec.sink.file_format())?)
    } else {
        None
    };
    let mut sink = SliceSink {
        direct,
        buffer,
        spills: 0,
    };
    let mut read = SliceRead::new(spec.slice);
    while read.room(task) {
        if subset.reached {
            break;
        }
        // With a helper attached, the rest of the slice is mapped on two threads (see
        // crate::help); `--limit` and `--sample` never get one.
        if let Some((line, spare)) = help.as_mut().filter(|(line, _)| line.attached()) {
            map_helped(
                task,
                reader,
                (line, spare),
                &mut read,
                &mut sink,
                files,
                counters,
                bad,
            )?;
            break;
        }
        batch.clear();
        locations.clear();
        // Without sampling, `--limit` bounds what is read, so the cursor stays exact.
        let mut max_records = read.max_records();
        if let (Some(left), None) = (subset.remaining, subset.threshold) {
            max_records = max_records.min(left);
        }
        let mut stats = read_batch(
            reader,
            on_demand,
            (batch, locations),
            read.max_bytes(spec.batch_bytes),
            max_records,
        )?;
        bad.add(task, reader.take_bad(), counters, files)?;
        if stats.records == 0 {
            if reader.is_finished() {
                break;
            }
            // Only bad records in this batch: count their bytes and go on.
            read.bytes += stats.bytes;
            counters.add("bytes-in", stats.bytes);
            continue;
        }
        read.bytes += stats.bytes;
        read.records += stats.records;
        // `--sample` and `--limit`: the records the job sees (records-in counts only them).
        stats.records = subset.apply(batch, locations, stats.records)?;
        if stats.records == 0 {
            counters.add("bytes-in", stats.bytes);
            continue;
        }
        let output = map_batch(task, batch, locations, counters, files, bad, None)?;
        counters.absorb(task.instance)?;
        finish_batch(
            task,
            stats,
            output,
            (batch, locations),
            &mut sink,
            files,
            counters,
        )?;
    }
    if let Some(writer) = sink.direct {
        let written = writer.commit()?;
        counters.add("output-records", written.records);
        counters.add("output-bytes", written.bytes);
        files.push_written(task, written, shard);
        return Ok(());
    }
    if !sink.buffer.is_empty() {
        spill(task, sink.spills, sink.buffer, files, counters)?;
    }
    Ok(())
}

/// A batch and its location table, kept for reuse.
pub(crate) type BatchBuffers = (Vec<u8>, mr_codec::Locations);

/// Batches a task with a helper keeps in flight (read, not yet finished): two at the helper
/// (one it maps, one waiting, so it never waits for this thread) and up to two mapped here.
/// With fewer, one thread waits for the other every time the two are out of step.
const IN_FLIGHT: usize = 4;
/// Of which at most this many at the helper.
const AT_HELPER: usize = 2;

/// How much of a slice has been read, against its bounds.
struct SliceRead {
    limits: crate::spec::SliceLimits,
    started: Instant,
    time_bound: Option<Duration>,
    bytes: u64,
    records: u64,
}

impl SliceRead {
    fn new(limits: crate::spec::SliceLimits) -> Self {
        SliceRead {
            limits,
            started: Instant::now(),
            time_bound: (limits.seconds > 0).then(|| Duration::from_secs(limits.seconds)),
            bytes: 0,
            records: 0,
        }
    }

    /// Whether the slice may read another batch: no bound reached, and the lease not lost (a
    /// lost lease ends the slice early; its commit will then be refused by the store: the
    /// fence decides, not this flag).
    fn room(&self, task: &Task<'_>) -> bool {
        self.bytes < self.limits.bytes
            && self.records < self.limits.records
            && self.time_bound.is_none_or(|t| self.started.elapsed() < t)
            && !task.stopped()
    }

    fn max_bytes(&self, batch_bytes: u64) -> u64 {
        batch_bytes.min(self.limits.bytes - self.bytes)
    }

    fn max_records(&self) -> u64 {
        self.limits.records - self.records
    }
}

/// A batch read while a helper is attached, waiting to be finished in input order.
struct Flight {
    stats: mr_io::BatchStats,
    /// The bad records the reader found in it, logged just before it is finished, as they are
    /// without a helper (after every batch before it).
    bad: Vec<mr_io::BadRecord>,
    mapped: Mapping,
}

enum Mapping {
    /// Nothing to map (only bad records); the input bytes it counts.
    Nothing { bytes_in: u64 },
    /// At the helper: its answer comes back on the help line, in the order sent.
    AtHelper,
    /// Mapped, here or by the helper, with the call's counters: ready to finish.
    Mapped {
        buffers: BatchBuffers,
        result: Result<(Mapped, std::collections::HashMap<String, i64>), GuestError>,
    },
}

impl Mapping {
    /// The helper's answer to a batch, its output checked as this thread checks its own.
    fn answered(spec: &crate::spec::JobSpec, done: crate::help::Done) -> Self {
        let result = done
            .result
            .and_then(|(output, counts)| check_output(spec, output).map(|m| (m, counts)));
        Mapping::Mapped {
            buffers: (done.batch, done.locations),
            result,
        }
    }
}

/// The rest of a slice with a helper attached (see crate::help): batches are read ahead, up to
/// [`IN_FLIGHT`], each sent to the helper while it holds fewer than [`AT_HELPER`] and mapped
/// here otherwise, and finished in input order as soon as it and every batch before it are
/// mapped. This thread waits for the helper only when it may read no further, so both stay
/// busy whichever is slower (a compressed file's inflater shares their two cores, and takes
/// turns with either). The batches are those an unhelped slice reads, finished in the same
/// order: counters, bad records, spills and the map-only writer see the same sequence.
// The reader, the slice's progress, sink, files, counters and bad-record log are each owned
// by `map_slice`.
#[allow(clippy::too_many_arguments)]
fn map_helped(
    task: &mut Task<'_>,
    reader: &mut ShardReader<'_>,
    (line, spare): (&HelpLine<'_>, &mut Vec<BatchBuffers>),
    read: &mut SliceRead,
    sink: &mut SliceSink<'_>,
    files: &mut SliceFiles,
    counters: &mut SliceCounters,
    bad: &mut crate::bad::BadRecords,
) -> Result<(), TaskError> {
    let on_demand = task.instance.locations_on_demand();
    let batch_bytes = task.job.spec.batch_bytes;
    let mut flights: std::collections::VecDeque<Flight> =
        std::collections::VecDeque::with_capacity(IN_FLIGHT);
    let (mut helper_gone, mut ended) = (false, false);
    loop {
        let can_read = !ended && flights.len() < IN_FLIGHT && read.room(task);
        // Finish the oldest batch if it is mapped; wait for the helper's answer only when
        // there is nothing else to do.
        if let Some(front) = flights.front_mut() {
            if matches!(front.mapped, Mapping::AtHelper) {
                match line.answer(!can_read) {
                    Ok(Some(done)) => front.mapped = Mapping::answered(&task.job.spec, done),
                    Ok(None) => {}
                    Err(crate::help::HelperGone) => return Err(helper_lost(task)),
                }
            }
            if !matches!(front.mapped, Mapping::AtHelper) {
                let flight = flights.pop_front().expect("the front batch");
                finish_flight(task, flight, spare, sink, files, counters, bad)?;
                continue;
            }
        } else if !can_read {
            return Ok(());
        }
        let (mut batch, mut locations) = spare.pop().unwrap_or_default();
        batch.clear();
        locations.clear();
        let stats = read_batch(
            reader,
            on_demand,
            (&mut batch, &mut locations),
            read.max_bytes(batch_bytes),
            read.max_records(),
        )?;
        let found_bad = reader.take_bad();
        if stats.records == 0 {
            // As without a helper: a read at the end counts no bytes, one of only bad records
            // counts its bytes.
            let bytes_in = if reader.is_finished() {
                ended = true;
                0
            } else {
                stats.bytes
            };
            read.bytes += bytes_in;
            spare.push((batch, locations));
            flights.push_back(Flight {
                stats,
                bad: found_bad,
                mapped: Mapping::Nothing { bytes_in },
            });
            continue;
        }
        read.bytes += stats.bytes;
        read.records += stats.records;
        // The slice's last batch goes to the helper only if it is idle: otherwise this
        // thread maps it while the helper maps its last, and the two finish together.
        let last = !read.room(task);
        let at_helper = flights
            .iter()
            .filter(|f| matches!(f.mapped, Mapping::AtHelper))
            .count();
        if !helper_gone && at_helper < AT_HELPER && !(last && at_helper > 0) {
            let work = crate::help::Work {
                batch,
                locations,
                identity: crate::task::identity(task.job, task.lease, Step::Map, task.lease.slices),
            };
            match line.send(work) {
                Ok(()) => {
                    flights.push_back(Flight {
                        stats,
                        bad: found_bad,
                        mapped: Mapping::AtHelper,
                    });
                    continue;
                }
                // The helper has gone: map here (what it still holds is lost with it).
                Err(work) => {
                    helper_gone = true;
                    (batch, locations) = (work.batch, work.locations);
                }
            }
        }
        let result = map_checked(task, &batch, &mut locations)
            .map(|mapped| (mapped, task.instance.take_counters()));
        flights.push_back(Flight {
            stats,
            bad: found_bad,
            mapped: Mapping::Mapped {
                buffers: (batch, locations),
                result,
            },
        });
    }
}

/// Finishes a mapped batch of [`map_helped`], in input order: its bad records, then its output (a
/// failed call goes through the usual blame and skip rules), then its buffers back for reuse.
// The slice's sink, files, counters and bad-record log are `map_slice`'s.
#[allow(clippy::too_many_arguments)]
fn finish_flight(
    task: &mut Task<'_>,
    flight: Flight,
    spare: &mut Vec<BatchBuffers>,
    sink: &mut SliceSink<'_>,
    files: &mut SliceFiles,
    counters: &mut SliceCounters,
    bad: &mut crate::bad::BadRecords,
) -> Result<(), TaskError> {
    bad.add(task, flight.bad, counters, files)?;
    let ((batch, mut locations), result) = match flight.mapped {
        Mapping::Nothing { bytes_in } => {
            counters.add("bytes-in", bytes_in);
            return Ok(());
        }
        Mapping::Mapped { buffers, result } => (buffers, result),
        Mapping::AtHelper => unreachable!("finished only once mapped (see map_helped)"),
    };
    let output = mapped_or_again(task, result, &batch, &mut locations, counters, files, bad)?;
    finish_batch(
        task,
        flight.stats,
        output,
        (&batch, &locations),
        sink,
        files,
        counters,
    )?;
    spare.push((batch, locations));
    Ok(())
}

fn helper_lost(task: &Task<'_>) -> TaskError {
    TaskError::Failed(crate::ExecError::HelperLost {
        job: task.job.spec.name.clone(),
        index: task.lease.idx,
        slice: task.lease.slices,
    })
}

/// Reads the next batch into `batch`, with a location table for a job that asks for
/// locations on demand (contract 0.2.0).
fn read_batch(
    reader: &mut ShardReader<'_>,
    on_demand: bool,
    (batch, locations): (&mut Vec<u8>, &mut mr_codec::Locations),
    max_bytes: u64,
    max_records: u64,
) -> Result<mr_io::BatchStats, mr_io::InputError> {
    if on_demand {
        reader.next_batch_located(batch, locations, max_bytes, max_records)
    } else {
        reader.next_batch(batch, max_bytes, max_records)
    }
}

/// Where a slice's mapped batches go: the map-only writer, or the worker's spill buffer and
/// the runs spilled from it in this slice.
struct SliceSink<'b> {
    direct: Option<TextWriter>,
    buffer: &'b mut SpillBuffer,
    spills: u32,
}

/// Counts a mapped batch and sends its output on: to the map-only writer, or into the shuffle.
fn finish_batch(
    task: &mut Task<'_>,
    stats: mr_io::BatchStats,
    output: Mapped,
    (batch, locations): (&[u8], &mr_codec::Locations),
    sink: &mut SliceSink<'_>,
    files: &mut SliceFiles,
    counters: &mut SliceCounters,
) -> Result<(), TaskError> {
    counters.add("records-in", stats.records);
    counters.add("bytes-in", stats.bytes);
    if let Some(writer) = &mut sink.direct {
        let before = writer.records;
        writer.write_batch(&output.bytes).map_err(|e| {
            let at = batch_location(batch, locations, None);
            write_failure(task, Step::Map, at, e)
        })?;
        counters.add("map-output-records", writer.records - before);
        return Ok(());
    }
    counters.add("map-output-records", output.pairs);
    shuffle_output(task, output, sink.buffer, &mut sink.spills, files, counters)
}

/// A batch mapped ahead (by a helper, or by this thread while the helper mapped the batch
/// before it) with its call's counters; a batch whose call failed goes through the blame and
/// skip rules of [`map_batch`], so it is reported as without a helper.
fn mapped_or_again(
    task: &mut Task<'_>,
    ahead: Result<(Mapped, std::collections::HashMap<String, i64>), GuestError>,
    batch: &[u8],
    locations: &mut mr_codec::Locations,
    counters: &mut SliceCounters,
    files: &mut SliceFiles,
    bad: &mut crate::bad::BadRecords,
) -> Result<Mapped, TaskError> {
    match ahead {
        Ok((mapped, counts)) => {
            counters.absorb_counts(counts)?;
            Ok(mapped)
        }
        Err(failed) => {
            // A timeout or a counter cap is blamed on the batch without another call: take it
            // as it is (mapping it again would take the timeout twice). Any other failure is
            // judged by calls on this thread's instance, from a first call of its own, so a
            // guest whose state lives in its instance is judged as in an unhelped run.
            use mr_engine::{GuestErrorKind, TrapKind};
            let failed = matches!(
                failed.kind,
                GuestErrorKind::Trap(TrapKind::Timeout | TrapKind::CounterLimit)
            )
            .then_some(failed);
            let mapped = map_batch(task, batch, locations, counters, files, bad, failed)?;
            counters.absorb(task.instance)?;
            Ok(mapped)
        }
    }
}

/// One map call's output: a kv batch, validated, and how many pairs it holds.
struct Mapped {
    bytes: Vec<u8>,
    pairs: u64,
}

/// Puts one map call's pairs into the worker's spill buffer, spilling it first when they would
/// not fit: the budget holds with the output counted before it is copied. An output too large
/// to share the buffer (half its budget or more) is sorted and spilled on its own, in place,
/// so it is never held twice.
fn shuffle_output(
    task: &mut Task<'_>,
    output: Mapped,
    buffer: &mut SpillBuffer,
    spills: &mut u32,
    files: &mut SliceFiles,
    counters: &mut SliceCounters,
) -> Result<(), TaskError> {
    let reducers = task.job.spec.reducers;
    let need = output.bytes.len() + SpillBuffer::index_bytes(output.pairs as usize);
    if !buffer.is_empty() && buffer.memory() + need > buffer.budget() {
        spill(task, *spills, buffer, files, counters)?;
        *spills += 1;
    }
    if need >= buffer.budget() / 2 {
        let mut own = SpillBuffer::from_batch(output.bytes, |key| partition_of(key, reducers))
            .expect("map output was validated");
        spill(task, *spills, &mut own, files, counters)?;
        *spills += 1;
        return Ok(());
    }
    for kv in mr_codec::kvs(&output.bytes) {
        let (key, value) = kv.expect("map output was validated");
        buffer.push(partition_of(key, reducers), key, value);
    }
    if buffer.is_full() {
        spill(task, *spills, buffer, files, counters)?;
        *spills += 1;
    }
    Ok(())
}

/// Maps a batch. When the call fails, finds the record to blame (see [`blame`]). A record that
/// fails on its own, the same way twice, is a deterministic failure: with `--max-bad-records`
/// it is skipped (counted and logged to `_bad_records` with the guest's message, like any bad
/// input record) and the rest of the batch is mapped again, as often as records fail and the
/// allowance lasts; without an allowance the attempt fails and is not retried. Other failures
/// fail the attempt, to be retried.
///
/// `failed`: how the batch's first call failed when it was made ahead of time (by a map helper,
/// or while the helper mapped the batch before): the blame starts from it, so the batch makes
/// the same calls as an unhelped one (a timeout is not run again).
// The batch, its locations, the slice's counters, files and bad-record log are `map_slice`'s.
#[allow(clippy::too_many_arguments)]
fn map_batch(
    task: &mut Task<'_>,
    batch: &[u8],
    locations: &mut mr_codec::Locations,
    counters: &mut SliceCounters,
    files: &mut SliceFiles,
    bad: &mut crate::bad::BadRecords,
    mut failed: Option<GuestError>,
) -> Result<Mapped, TaskError> {
    let mut current: Option<(Vec<u8>, mr_codec::Locations)> = None;
    loop {
        let (input, input_locations) = match &mut current {
            Some((input, locations)) => (&input[..], locations),
            None => (batch, &mut *locations),
        };
        let error = match failed.take() {
            Some(e) => e,
            None => match map_checked(task, input, input_locations) {
                Ok(mapped) => return Ok(mapped),
                Err(e) => e,
            },
        };
        let blame = blame(task, input, input_locations, error);
        let skip = match (blame.index, &blame.location) {
            (Some(index), Some(location))
                if blame.deterministic && task.job.spec.max_bad_records > 0 =>
            {
                Some((index, location.clone()))
            }
            _ => None,
        };
        let Some((index, location)) = skip else {
            return Err(guest_error(task, Step::Map, blame.location, blame.error)
                .deterministic(blame.deterministic));
        };
        bad.add(
            task,
            vec![mr_io::BadRecord {
                location,
                reason: one_line(&blame.error),
            }],
            counters,
            files,
        )?;
        let mut rest = Vec::with_capacity(input.len());
        let mut rest_locations = mr_codec::Locations::default();
        for (i, kv) in mr_codec::kvs(input).enumerate() {
            let (k, v) = kv.expect("the host wrote this batch");
            if i != index {
                mr_codec::put_kv(&mut rest, k, v);
                rest_locations.push_from(input_locations, i);
            }
        }
        if rest.is_empty() {
            return Ok(Mapped {
                bytes: Vec::new(),
                pairs: 0,
            });
        }
        current = Some((rest, rest_locations));
    }
}

/// A guest failure as one line for `_bad_records`: the error, then what the guest said (its
/// panic message), at most about 2000 bytes.
fn one_line(error: &GuestError) -> String {
    let mut reason = error
        .to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    let said: Vec<&str> = error
        .guest_output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if !said.is_empty() {
        reason += &format!("; guest output: {}", said.join(" | "));
    }
    if reason.len() > 2000 {
        let cut = (0..=2000)
            .rev()
            .find(|&i| reason.is_char_boundary(i))
            .unwrap_or(0);
        reason.truncate(cut);
        reason += "…";
    }
    reason
}

/// Calls `map` and checks what it returned before anything is buffered: a well-formed kv batch
/// (map-only output is checked by its writer instead), and no key or value longer than
/// `--max-record-bytes` (a record the shuffle would otherwise carry to the reducer, however
/// large). A failed call's counter increments are dropped: they belong to no committed work.
fn map_checked(
    task: &mut Task<'_>,
    input: &[u8],
    locations: &mut mr_codec::Locations,
) -> Result<Mapped, GuestError> {
    // The lines before a shard that starts inside its file are counted when a location is
    // first written. A job that asked for a location in an earlier call will likely ask again:
    // count them now, so that the count does not run against the call's --call-timeout (an
    // error is left for the location itself to report).
    if locations.has_relative_lines() && task.instance.asked_locations() {
        let _ = locations.resolve();
    }
    let bytes = task
        .instance
        .map_located(input, locations)
        .inspect_err(|_| {
            drop(task.instance.take_counters());
        })?;
    check_output(&task.job.spec, bytes).inspect_err(|_| {
        drop(task.instance.take_counters());
    })
}

/// Checks a map call's output (see [`map_checked`]).
fn check_output(spec: &crate::spec::JobSpec, bytes: Vec<u8>) -> Result<Mapped, GuestError> {
    if spec.reducers == 0 {
        return Ok(Mapped { bytes, pairs: 0 });
    }
    let cap = spec.max_record_bytes;
    let mut pairs = 0u64;
    for kv in mr_codec::kvs(&bytes) {
        let problem = match kv {
            Err(e) => Some(format!("the job's map output is malformed: {e}")),
            Ok((key, value)) => [("key", key), ("value", value)]
                .into_iter()
                .find(|(_, bytes)| bytes.len() as u64 > cap)
                .map(|(what, bytes)| {
                    format!(
                        "the job emitted a pair whose {what} is {} bytes, more than the record cap of {cap} bytes (--max-record-bytes; raise it if such records are intended); the pair's key starts {}",
                        bytes.len(),
                        crate::writer::shown(&key[..key.len().min(40)])
                    )
                }),
        };
        if let Some(message) = problem {
            return Err(GuestError::protocol(message));
        }
        pairs += 1;
    }
    Ok(Mapped { bytes, pairs })
}

/// Who is to blame for a failed map call.
struct Blame {
    /// The record (`path:line`), or the batch's range.
    location: Option<String>,
    /// The record's index in the batch, when one record is to blame.
    index: Option<usize>,
    /// The error to report (the record's own, when it was isolated).
    error: GuestError,
    /// The record fails on its own, the same way, every time: retrying cannot help.
    deterministic: bool,
}

/// Finds the record behind a failed map call.
/// - A job error names its record: that record is mapped alone once more, and failing again
///   with the same message makes the failure deterministic.
/// - A trap (other than a timeout) or output the host refuses is bisected: map the first half
///   alone, then the second, and follow the half that fails, down to one record (about
///   log2(batch) extra calls on fresh instances; their outputs and counters are discarded).
///   A record that fails alone after failing in its batch has failed twice: deterministic.
/// - A timeout is not bisected (each probe could take the whole timeout), and when no single
///   record fails on its own (the failure depends on state built across records), the batch is
///   blamed; neither is deterministic.
fn blame(
    task: &mut Task<'_>,
    batch: &[u8],
    locations: &mr_codec::Locations,
    error: GuestError,
) -> Blame {
    use mr_engine::{GuestErrorKind, TrapKind};
    let records: Vec<(&[u8], &[u8])> = mr_codec::kvs(batch).filter_map(|kv| kv.ok()).collect();
    let whole = |error: GuestError| Blame {
        location: batch_location(batch, locations, error.record_index),
        index: None,
        error,
        deterministic: false,
    };
    let key = |i: usize| record_location(batch, locations, i).unwrap_or_default();
    // Maps records `range` of the batch alone (with their locations).
    let mut probe = |range: std::ops::Range<usize>| -> Option<GuestError> {
        let mut sub = Vec::with_capacity(
            records[range.clone()]
                .iter()
                .map(|(k, v)| k.len() + v.len() + 8)
                .sum(),
        );
        let mut sub_locations = mr_codec::Locations::default();
        for i in range {
            let (k, v) = records[i];
            mr_codec::put_kv(&mut sub, k, v);
            sub_locations.push_from(locations, i);
        }
        let result = map_checked(task, &sub, &mut sub_locations);
        drop(task.instance.take_counters());
        result.err()
    };
    match error.kind {
        GuestErrorKind::JobError => {
            let Some(i) = error
                .record_index
                .map(|i| i as usize)
                .filter(|&i| i < records.len())
            else {
                return whole(error);
            };
            let again = probe(i..i + 1);
            let deterministic = again.is_some_and(|again| {
                again.kind == GuestErrorKind::JobError && again.message == error.message
            });
            Blame {
                location: Some(key(i)),
                index: Some(i),
                error,
                deterministic,
            }
        }
        // A timeout is not bisected (each probe could take the whole timeout), nor a counter
        // cap (the batch's records together name the counters).
        GuestErrorKind::Trap(TrapKind::Timeout | TrapKind::CounterLimit) => whole(error),
        GuestErrorKind::Trap(_) | GuestErrorKind::Protocol => {
            let fails = |e: &GuestError| {
                matches!(e.kind, GuestErrorKind::Protocol)
                    || matches!(e.kind, GuestErrorKind::Trap(kind) if kind != TrapKind::Timeout)
            };
            let (mut lo, mut hi) = (0, records.len());
            let mut last = None;
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if let Some(e) = probe(lo..mid).filter(fails) {
                    hi = mid;
                    last = Some(e);
                } else if let Some(e) = probe(mid..hi).filter(fails) {
                    lo = mid;
                    last = Some(e);
                } else {
                    tracing::debug!("no single record of the failed batch fails on its own");
                    return whole(error);
                }
            }
            if records.is_empty() {
                return whole(error);
            }
            // A batch of one record has failed once: map it alone once more.
            let last = last.or_else(|| probe(lo..hi).filter(fails));
            let Some(own) = last else {
                return whole(error);
            };
            tracing::info!("isolated the record that fails the map call: {}", key(lo));
            Blame {
                location: Some(key(lo)),
                index: Some(lo),
                error: own,
                deterministic: true,
            }
        }
    }
}

/// Where record `i` of a map batch came from: its entry in `locations` when the batch has them
/// (a 0.2.0 job's keyless batch), else its key (`path:line`).
fn record_location(batch: &[u8], locations: &mr_codec::Locations, i: usize) -> Option<String> {
    if !locations.is_empty() {
        return locations.get(i);
    }
    mr_codec::kvs(batch)
        .nth(i)
        .and_then(|kv| kv.ok())
        .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
}

/// Where a failed map batch was: the blamed record, or the batch's first and last records.
fn batch_location(
    batch: &[u8],
    locations: &mr_codec::Locations,
    record_index: Option<u32>,
) -> Option<String> {
    if let Some(i) = record_index {
        return record_location(batch, locations, i as usize);
    }
    let count = mr_codec::kvs(batch).count();
    let first = record_location(batch, locations, 0)?;
    let last = record_location(batch, locations, count.checked_sub(1)?)?;
    Some(if first == last {
        first
    } else {
        format!("a record in the batch {first} .. {last}")
    })
}

/// Sorts the buffer, and writes each partition in it, combined when the job has a combiner, as
/// a run file named after its shard, slice, attempt, spill and partition.
fn spill(
    task: &mut Task<'_>,
    spill: u32,
    buffer: &mut SpillBuffer,
    files: &mut SliceFiles,
    counters: &mut SliceCounters,
) -> Result<(), TaskError> {
    let spec = &task.job.spec;
    let (shard, slice, attempt) = (task.lease.idx, task.lease.slices, task.lease.attempt);
    let mut group_batch = Vec::new();
    // The keys of a group batch in order, each with its encoded entry when it has one value.
    let mut order: Vec<(&[u8], Option<&[u8]>)> = Vec::new();
    let mut spilled = 0u64;
    for (p, pairs) in buffer.sorted() {
        let name = task.job.work_dir.join(format!(
            "m{shard:05}-{slice:05}-a{attempt}-s{spill:04}-p{p:05}.run"
        ));
        let tmp = temp_name(&name);
        files.created.push(tmp.clone());
        let mut run = RunWriter::create(&tmp)?;
        let records = pairs.len() as u64;
        if spec.combine {
            counters.add("combine-input-records", records);
            let mut out_records = 0;
            let mut sorted = pairs.with_encoded().peekable();
            while sorted.peek().is_some() {
                group_batch.clear();
                order.clear();
                // Fill a group batch with whole groups of two or more values. A key with one
                // value skips the guest: the combiner may run any number of times on a value,
                // including none, and a group-by over many keys is mostly such keys.
                while let Some((key, first, encoded)) = sorted.next() {
                    if sorted
                        .peek()
                        .is_none_or(|&(k, _, _)| !mr_shuffle::same_key(k, key))
                    {
                        order.push((key, Some(encoded)));
                    } else {
                        let at = mr_codec::begin_group(&mut group_batch, key);
                        mr_codec::put_value(&mut group_batch, first);
                        let mut count = 1u32;
                        while let Some(&(k, v, _)) = sorted.peek() {
                            // A hot key's values are combined in calls of bounded size: the
                            // combiner may run on any subset of a key's values, so the group
                            // is cut here and the rest of its values start a new group.
                            if !mr_shuffle::same_key(k, key)
                                || group_batch.len() >= COMBINE_BATCH_BYTES
                            {
                                break;
                            }
                            mr_codec::put_value(&mut group_batch, v);
                            count += 1;
                            sorted.next();
                        }
                        mr_codec::finish_group(&mut group_batch, at, count, 0);
                        order.push((key, None));
                    }
                    if group_batch.len() >= COMBINE_BATCH_BYTES || order.len() >= 1 << 16 {
                        break;
                    }
                }
                let combined = if group_batch.is_empty() {
                    Vec::new()
                } else {
                    let combined = task
                        .instance
                        .combine(&group_batch)
                        .map_err(|e| guest_error(task, Step::Combine, None, e))?;
                    counters.absorb(task.instance)?;
                    combined
                };
                out_records += write_combined(task, &order, &combined, &mut run)?;
            }
            counters.add("combine-output-records", out_records);
        } else {
            for (_, _, encoded) in pairs.with_encoded() {
                run.push_encoded(encoded)?;
            }
        }
        let stats = run.finish(true)?;
        spilled += 1;
        files.pending.push((
            tmp,
            name.clone(),
            OutputFile {
                path: task.relative(&name),
                part: p,
                bytes: stats.bytes,
                records: stats.records,
                checksum: format!("xxh3:{:016x}", stats.checksum),
            },
        ));
    }
    buffer.clear();
    counters.add("spilled-runs", spilled);
    Ok(())
}

/// Writes one batch of keys to the run in key order: a key's single pair as it is, the
/// combiner's output for the others (one counted run of values per combined group, in order).
/// Returns the number of values written. Malformed guest output is reported as a combine
/// failure.
fn write_combined(
    task: &Task<'_>,
    order: &[(&[u8], Option<&[u8]>)],
    combined: &[u8],
    run: &mut RunWriter,
) -> Result<u64, TaskError> {
    let malformed = |what: String| {
        let error = GuestError::protocol(format!("the job's combine output is malformed: {what}"));
        guest_error(task, Step::Combine, None, error).deterministic(true)
    };
    let mut written = 0;
    let mut outputs = mr_codec::counted_values(combined);
    for &(key, single) in order {
        if let Some(encoded) = single {
            run.push_encoded(encoded)?;
            written += 1;
            continue;
        }
        let values = match outputs.next() {
            Some(Ok(values)) => values,
            Some(Err(e)) => return Err(malformed(e.to_string())),
            None => return Err(malformed("fewer groups than were given".into())),
        };
        for value in values {
            let value = value.map_err(|e| malformed(e.to_string()))?;
            let cap = task.job.spec.max_record_bytes;
            if value.len() as u64 > cap {
                let error = GuestError::protocol(format!(
                    "the job's combiner returned a value of {} bytes for key {}, more than the record cap of {cap} bytes (--max-record-bytes)",
                    value.len(),
                    crate::writer::shown(key)
                ));
                return Err(guest_error(task, Step::Combine, None, error).deterministic(true));
            }
            run.push(key, value)?;
            written += 1;
        }
    }
    if outputs.next().is_some() {
        return Err(malformed("more groups than were given".into()));
    }
    Ok(written)
}

/// `--limit` and `--sample`: which records of a shard reach the job.
struct Subset {
    /// Records the shard may still hand to the job (`--limit`).
    remaining: Option<u64>,
    /// Keep a record when the hash of its location is below this (`--sample`).
    threshold: Option<u64>,
    /// The limit was reached: the shard is done.
    reached: bool,
}

impl Subset {
    /// Drops from `batch` the records outside the sample and past the limit; returns how many
    /// are left. Records past the limit may be dropped only because the shard then ends: its
    /// cursor is never resumed.
    fn apply(
        &mut self,
        batch: &mut Vec<u8>,
        locations: &mut mr_codec::Locations,
        read: u64,
    ) -> Result<u64, TaskError> {
        let Some(threshold) = self.threshold else {
            // `--limit` alone bounded what was read: nothing to drop, nothing to copy.
            if let Some(left) = &mut self.remaining {
                *left = left.saturating_sub(read);
                self.reached = *left == 0;
            }
            return Ok(read);
        };
        let mut kept = Vec::with_capacity(batch.len());
        let mut kept_locations = mr_codec::Locations::default();
        let mut location = Vec::new();
        let mut n = 0u64;
        for (i, entry) in mr_codec::kvs(batch).enumerate() {
            // The host framed this batch itself; a bad frame is a bug, reported as such.
            let (key, value) = entry.map_err(|e| {
                TaskError::Failed(crate::ExecError::Input(mr_io::InputError::Corrupt {
                    path: "the host's map batch".into(),
                    message: e.to_string(),
                }))
            })?;
            if self.remaining == Some(n) {
                self.reached = true;
                break;
            }
            // A keyless record (0.2.0) is sampled by its location, the key a 0.1.x job sees,
            // so that both pick the same records.
            let hashed = if locations.is_empty() {
                key
            } else {
                location.clear();
                locations.write(i, &mut location);
                &location[..]
            };
            if sample_hash(hashed) < threshold {
                mr_codec::put_kv(&mut kept, key, value);
                kept_locations.push_from(locations, i);
                n += 1;
            }
        }
        if let Some(left) = &mut self.remaining {
            *left -= n;
            self.reached |= *left == 0;
        }
        *batch = kept;
        *locations = kept_locations;
        Ok(n)
    }
}

/// The hash threshold that keeps `fraction` of the records.
fn sample_threshold(fraction: f64) -> u64 {
    if fraction >= 1.0 {
        u64::MAX
    } else {
        (fraction * u64::MAX as f64) as u64
    }
}

/// A stable hash of a record's location (`path:line`): xxh3 (the shuffle's hash, a fixed
/// algorithm), with a seed of its own so a sample is not tied to the partitioning. The same
/// records are sampled on every run and machine.
fn sample_hash(key: &[u8]) -> u64 {
    const SAMPLE_SEED: u64 = 0x6d72_2d73_616d_706c; // "mr-sampl"
    xxhash_rust::xxh3::xxh3_64_with_seed(key, SAMPLE_SEED)
}
