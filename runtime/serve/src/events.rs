//! Live updates. One task ([`tail`]) reads new rows of the store's events table (ids increase
//! across the store) every tick, for the jobs that are running or ended in the last minutes,
//! and broadcasts them; each SSE subscriber filters the broadcast. A subscriber that passes
//! `?after=ID` (or reconnects with `Last-Event-ID`) first gets what it missed from the store.
//! One that falls more than the channel's capacity behind gets a `lagged` event and should
//! reload what it shows.
//!
//! [`watch_hooks`] makes the server a watcher of completion hooks: every job that ended with
//! hooks not yet delivered gets `mr_exec::deliver_hooks`, which claims each hook in the store
//! so it is delivered once, whoever else watches.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use mr_store::Event;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;

use crate::error::ApiError;
use crate::state::AppState;

/// An event of one job, as the SSE streams send it (`data:` is this as JSON, `id:` the event's
/// id).
#[derive(Debug, Clone, Serialize)]
pub struct JobEvent {
    /// The job.
    pub job: i64,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
}

/// How long after a job ended its events are still tailed (completion hooks report then).
const TAIL_AFTER_END_MS: i64 = 5 * 60 * 1000;

/// Most events read per job and tick.
const TAIL_BATCH: u32 = 1000;

/// Tails the events table into the broadcast channel, forever.
pub async fn tail(state: Arc<AppState>) {
    // Per job, the last event id already sent. Jobs present at start are tailed from their
    // newest event: history is in the store for whoever asks (`?after=`).
    let mut last: Option<HashMap<i64, i64>> = None;
    let mut ticker = tokio::time::interval(state.config.poll);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let known = last.take();
        let result = state
            .stores
            .run(move |store| {
                let now = store.now_ms()?;
                let starting = known.is_none();
                let mut known = known.unwrap_or_default();
                let mut fresh = Vec::new();
                for job in store.jobs()? {
                    let recent = job
                        .finished_ms
                        .is_none_or(|end| now - end < TAIL_AFTER_END_MS);
                    if starting {
                        let newest = store.events(job.id, 0, 1)?.first().map_or(0, |e| e.id);
                        known.insert(job.id, newest);
                        continue;
                    }
                    if job.phase.is_over() && !recent {
                        continue;
                    }
                    let after = *known.get(&job.id).unwrap_or(&0);
                    let events = store.events(job.id, after, TAIL_BATCH)?;
                    if let Some(e) = events.last() {
                        known.insert(job.id, e.id);
                    }
                    fresh.extend(
                        events
                            .into_iter()
                            .map(|event| JobEvent { job: job.id, event }),
                    );
                }
                Ok((known, fresh))
            })
            .await;
        match result {
            Ok((known, fresh)) => {
                last = Some(known);
                for event in &fresh {
                    state.statuses.invalidate(event.job);
                }
                for event in fresh {
                    // No subscribers is not an error.
                    let _ = state.events.send(Arc::new(event));
                }
            }
            Err(e) => {
                tracing::warn!("reading new events failed (will retry): {}", e.message);
                // Start over from the store's newest events rather than resend.
            }
        }
    }
}

/// Delivers the completion hooks of ended jobs, forever (see the module documentation).
pub async fn watch_hooks(state: Arc<AppState>) {
    let policy = mr_exec::HookPolicy {
        // The next tick retries: a slow receiver must not hold a blocking thread for minutes.
        wait: false,
        ..Default::default()
    };
    let mut settled: HashSet<i64> = HashSet::new();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        ticker.tick().await;
        let done = settled.clone();
        let policy = policy.clone();
        let result = state
            .stores
            .run(move |store| {
                let mut now_settled = Vec::new();
                for job in store.jobs()? {
                    if !job.phase.is_over() || done.contains(&job.id) {
                        continue;
                    }
                    let Ok(spec) = serde_json::from_str::<mr_exec::JobSpec>(&job.spec) else {
                        now_settled.push(job.id);
                        continue;
                    };
                    let wanted = usize::from(spec.hooks.notify.is_some())
                        + usize::from(spec.hooks.on_done.is_some());
                    mr_exec::deliver_hooks(store, job.id, &policy)?;
                    let finished = store
                        .hooks(job.id)?
                        .iter()
                        .filter(|h| h.state != mr_store::HookState::Pending)
                        .count();
                    if finished >= wanted {
                        now_settled.push(job.id);
                    }
                }
                Ok(now_settled)
            })
            .await;
        match result {
            Ok(ids) => settled.extend(ids),
            Err(e) => tracing::warn!("delivering completion hooks failed: {}", e.message),
        }
    }
}

/// `?after=ID`: replay the job's events after this id first.
#[derive(Debug, Deserialize)]
pub struct After {
    after: Option<i64>,
}

/// `GET /api/jobs/{id}/events`: the job's events as Server-Sent Events, live.
pub async fn job_events(
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
    Query(after): Query<After>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let after = resume_from(&headers).or(after.after);
    // Subscribe before reading the backlog, so nothing falls between the two.
    let live = state.events.subscribe();
    let backlog = state
        .stores
        .run(move |store| {
            store.job(id)?;
            Ok(match after {
                Some(after) => store.events(id, after, TAIL_BATCH)?,
                None => Vec::new(),
            })
        })
        .await?
        .into_iter()
        .map(|event| JobEvent { job: id, event })
        .collect();
    Ok(stream(
        state.shutdown.subscribe(),
        Some(id),
        backlog,
        after.unwrap_or(0),
        live,
    ))
}

/// `GET /api/events`: every job's events, live (the jobs list follows this).
pub async fn all_events(
    State(state): State<Arc<AppState>>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let live = state.events.subscribe();
    stream(state.shutdown.subscribe(), None, Vec::new(), 0, live)
}

fn resume_from(headers: &HeaderMap) -> Option<i64> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

struct Subscriber {
    job: Option<i64>,
    backlog: std::vec::IntoIter<JobEvent>,
    live: tokio::sync::broadcast::Receiver<Arc<JobEvent>>,
    last: i64,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

fn stream(
    shutdown: tokio::sync::watch::Receiver<bool>,
    job: Option<i64>,
    backlog: Vec<JobEvent>,
    last: i64,
    live: tokio::sync::broadcast::Receiver<Arc<JobEvent>>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let subscriber = Subscriber {
        job,
        backlog: backlog.into_iter(),
        live,
        last,
        shutdown,
    };
    let events = futures_util::stream::unfold(subscriber, |mut s| async move {
        if let Some(event) = s.backlog.next() {
            s.last = event.event.id;
            return Some((Ok(sse(&event)), s));
        }
        loop {
            let received = tokio::select! {
                received = s.live.recv() => received,
                _ = s.shutdown.wait_for(|stop| *stop) => return None,
            };
            match received {
                Ok(event) => {
                    if s.job.is_some_and(|j| j != event.job) || event.event.id <= s.last {
                        continue;
                    }
                    if s.job.is_some() {
                        s.last = event.event.id;
                    }
                    return Some((Ok(sse(&event)), s));
                }
                Err(RecvError::Lagged(missed)) => {
                    let note = SseEvent::default().event("lagged").data(missed.to_string());
                    return Some((Ok(note), s));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

fn sse(event: &JobEvent) -> SseEvent {
    SseEvent::default()
        .id(event.event.id.to_string())
        .data(serde_json::to_string(event).expect("an event serialises"))
}
