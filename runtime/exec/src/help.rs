//! Map helpers: a worker thread with nothing to do lends its guest instance to a running map
//! task of the same process, which then maps its batches on two threads.
//!
//! Straggler splitting (see [`crate::split`]) gives an idle worker a task of its own, but only
//! where the unread input can be cut without reading it: plain text. A compressed stream (one
//! gzip member), a zip member or a table must be read by one reader from its start, so a job
//! over one big `.gz` file is one task on one core however many workers there are, with the
//! stream inflated ahead on another thread. Mapping is most of the work, though, and a map call
//! is a pure function of its batch (the contract: no state crosses calls). So the task keeps
//! reading, and an idle thread of the same process maps batches on its own instance while the
//! task maps others; the task takes the outputs back in input order. The task keeps up to four
//! batches in flight, two of them queued at the helper so that it never waits for the task,
//! and waits for the helper only when it may read no further (`map.rs`, `map_helped`): which
//! thread maps a batch depends on their speeds, what is done with it does not.
//!
//! Nothing about the output changes: the batches are those of an unhelped run, each is mapped
//! by one call, and the task buffers, spills, counts and logs bad records in the same order. A
//! batch whose call fails on the helper goes through the task's usual blame and retry rules
//! (`map_batch`, see `mapped_or_again` for which failures it calls again), so a failure is
//! reported exactly as without a helper. What a helper
//! does not take over: the reading, the shuffle and the commit, all still on the task's thread,
//! under the task's lease.
//!
//! The protocol, all in memory: a map task offers help ([`Board::offer`]) when it starts; an
//! idle thread that found no straggler to split takes the first offer of a job it can run
//! ([`Board::take`]), makes or reuses an instance of that job and serves batches until the task
//! withdraws the offer at its end. A task whose helper went away (the process is stopping) maps
//! alone again.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mr_engine::{GuestError, Instance, TaskIdentity};

/// How often a waiting helper checks whether the process is stopping.
const STOP_POLL: Duration = Duration::from_millis(250);

/// A batch for the helper to map.
pub(crate) struct Work {
    pub batch: Vec<u8>,
    pub locations: mr_codec::Locations,
    /// Who the call is for, for the guest's log lines.
    pub identity: TaskIdentity,
}

/// A mapped batch, handed back with its buffers.
pub(crate) struct Done {
    pub batch: Vec<u8>,
    pub locations: mr_codec::Locations,
    /// The call's output and the counters the guest incremented during it.
    pub result: Result<(Vec<u8>, HashMap<String, i64>), GuestError>,
}

/// The helper's ends of an offer.
type HelperEnds = (Receiver<Work>, Sender<Done>);

struct Offer {
    job: i64,
    /// Taken by the helper that answers.
    ends: Mutex<Option<HelperEnds>>,
}

/// The offers of help of one worker process's map tasks.
#[derive(Default)]
pub(crate) struct Board {
    offers: Mutex<Vec<Arc<Offer>>>,
}

impl Board {
    /// Offers help to a map task of `job`; withdrawn when the returned line is dropped.
    pub(crate) fn offer(&self, job: i64) -> HelpLine<'_> {
        let (work, helper_work) = channel();
        let (helper_done, done) = channel();
        let offer = Arc::new(Offer {
            job,
            ends: Mutex::new(Some((helper_work, helper_done))),
        });
        self.offers
            .lock()
            .expect("help board lock")
            .push(offer.clone());
        HelpLine {
            board: self,
            offer,
            work,
            done,
        }
    }

    /// Takes the first open offer of one of `jobs`: the job and the helper's ends.
    pub(crate) fn take(&self, jobs: &[i64]) -> Option<(i64, Receiver<Work>, Sender<Done>)> {
        let offers = self.offers.lock().expect("help board lock");
        offers
            .iter()
            .filter(|o| jobs.contains(&o.job))
            .find_map(|o| {
                let (work, done) = o.ends.lock().expect("offer lock").take()?;
                Some((o.job, work, done))
            })
    }

    fn withdraw(&self, offer: &Arc<Offer>) {
        self.offers
            .lock()
            .expect("help board lock")
            .retain(|o| !Arc::ptr_eq(o, offer));
    }
}

/// The helper went away (its process is stopping) with batches of the task's still unanswered.
pub(crate) struct HelperGone;

/// A map task's side of its offer.
pub(crate) struct HelpLine<'a> {
    board: &'a Board,
    offer: Arc<Offer>,
    work: Sender<Work>,
    done: Receiver<Done>,
}

impl HelpLine<'_> {
    /// Whether a helper took the offer (it may have left since: then [`HelpLine::send`] fails).
    pub(crate) fn attached(&self) -> bool {
        self.offer.ends.lock().expect("offer lock").is_none()
    }

    /// Hands a batch to the helper; gives it back when the helper has gone.
    pub(crate) fn send(&self, work: Work) -> Result<(), Box<Work>> {
        self.work.send(work).map_err(|e| Box::new(e.0))
    }

    /// The helper's answer to the oldest batch it holds (answers come in the order sent):
    /// waiting for it, or, without `wait`, only if it is there already (`Ok(None)` when not
    /// yet). `Err` when the helper went away without one.
    pub(crate) fn answer(&self, wait: bool) -> Result<Option<Done>, HelperGone> {
        if wait {
            return self.done.recv().map(Some).map_err(|_| HelperGone);
        }
        match self.done.try_recv() {
            Ok(done) => Ok(Some(done)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(HelperGone),
        }
    }
}

impl Drop for HelpLine<'_> {
    fn drop(&mut self) {
        self.board.withdraw(&self.offer);
    }
}

/// Serves batches on `instance` until the task withdraws its offer (it ended) or `stopping`
/// says so; returns how many batches it mapped.
pub(crate) fn serve(
    instance: &mut Instance,
    work: &Receiver<Work>,
    done: &Sender<Done>,
    stopping: impl Fn() -> bool,
) -> u64 {
    let mut served = 0;
    loop {
        let mut item = match work.recv_timeout(STOP_POLL) {
            Ok(item) => item,
            Err(RecvTimeoutError::Timeout) if !stopping() => continue,
            Err(_) => return served,
        };
        instance.set_task(item.identity);
        // As the task does (map.rs, `map_checked`): a job that asked for a location before
        // will likely ask again, so the lines before the shard are counted outside the call.
        if item.locations.has_relative_lines() && instance.asked_locations() {
            let _ = item.locations.resolve();
        }
        let result = instance
            .map_located(&item.batch, &mut item.locations)
            .map(|output| (output, instance.take_counters()));
        // A failed call's counters belong to no committed work (the task maps it again).
        drop(instance.take_counters());
        served += 1;
        let answer = Done {
            batch: item.batch,
            locations: item.locations,
            result,
        };
        if done.send(answer).is_err() {
            return served;
        }
    }
}
