//! The PostgreSQL backend (PostgreSQL 13 or newer): one database that workers on many hosts
//! share. The protocol and its semantics are the SQLite backend's (src/sqlite.rs is the
//! reference); what differs is how concurrent transactions are kept apart, whose clock counts,
//! and what a lost connection means. docs/protocol.md tells it for operators.
//!
//! - **Transactions run at READ COMMITTED, and locks order them.** A step that reads and then
//!   writes locks what its decision depends on, always in one order: the job's row first (`FOR
//!   KEY SHARE` to read its phase while others do the same; `FOR UPDATE` to change it or to
//!   decide a phase change), then task rows. So a commit and a cancellation, or the last two
//!   commits of a phase, cannot both miss each other, and no two steps wait on each other in a
//!   cycle.
//! - **Tasks are taken without contention**: `acquire` picks its candidate with
//!   `FOR UPDATE SKIP LOCKED`, so concurrent workers take different tasks instead of queueing
//!   on one row.
//! - **The database's clock decides every lease**: each transaction reads
//!   `clock_timestamp()` once (`session::now_sql!`) and uses that time for expiry, backoffs and
//!   event times. Nothing here reads the worker's clock, so hosts whose clocks disagree still
//!   agree on when a lease ends.
//! - **Fencing as in SQLite**: every write says `attempt = $n AND state = 'leased'` and must
//!   change one row. A slice commit also names the slice it commits (`slices = $n`), so
//!   replaying a commit that landed (its reply was lost) is recognised and changes nothing.
//! - **Event ids follow commit order per job**: inserting an event takes a transaction-scoped
//!   advisory lock on its job, so a reader polling `events(after = N)` never skips an event that
//!   committed after a higher-numbered one.
//! - **Lost connections** (a killed backend, a server restart, a network cut): see
//!   [`session`]. A step is retried on a new connection until it has run exactly once.

mod migrate;
mod session;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::time::Duration;

use bytes::BytesMut;
use postgres::Row;
use postgres::types::{FromSql, IsNull, ToSql, Type, accepts, to_sql_checked};

use crate::model::*;
use crate::{JobStore, StoreError};
use session::{Session, Sql};

/// How a [`PgStore`] behaves when its connection fails.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// How long to keep reconnecting after the connection is lost (a restarting server
    /// usually needs a few seconds) before a step fails with the last error.
    pub reconnect_for: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            reconnect_for: Duration::from_secs(60),
        }
    }
}

/// A connection to a PostgreSQL job store. Like [`crate::SqliteStore`], one per thread: the
/// executor's worker threads each open their own.
pub struct PgStore {
    // The trait's readers take `&self`; a connection needs `&mut` to run anything.
    session: RefCell<Session>,
}

macro_rules! pg_enum {
    ($($name:ident),*) => {$(
        impl ToSql for $name {
            fn to_sql(
                &self,
                ty: &Type,
                out: &mut BytesMut,
            ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
                self.as_str().to_sql(ty, out)
            }

            accepts!(TEXT, VARCHAR);
            to_sql_checked!();
        }

        impl<'a> FromSql<'a> for $name {
            fn from_sql(
                ty: &Type,
                raw: &'a [u8],
            ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
                Ok(<&str as FromSql>::from_sql(ty, raw)?.parse::<$name>()?)
            }

            accepts!(TEXT, VARCHAR);
        }
    )*};
}

pg_enum!(
    TaskKind,
    Phase,
    TaskState,
    Outcome,
    EventKind,
    HookState,
    PipelinePhase,
    StageState
);

/// A u32 the schema keeps as a `bigint` checked to fit one.
fn u32_at(row: &Row, i: usize) -> u32 {
    u32::try_from(row.get::<_, i64>(i)).expect("the schema's CHECK keeps this column in u32 range")
}

fn opt_u32_at(row: &Row, i: usize) -> Option<u32> {
    row.get::<_, Option<i64>>(i)
        .map(|v| u32::try_from(v).expect("the schema's CHECK keeps this column in u32 range"))
}

/// A lease's task key as the schema's parameters: job, kind, index, attempt.
fn key(lease: &Lease) -> (i64, TaskKind, i64, i64) {
    (
        lease.job,
        lease.kind,
        i64::from(lease.idx),
        i64::from(lease.attempt),
    )
}

macro_rules! job_columns {
    () => {
        "id, name, fingerprint, output, spec, phase, error, created_ms, finished_ms"
    };
}

macro_rules! pipeline_columns {
    () => {
        "id, name, output, definition, phase, error, created_ms, updated_ms, finished_ms"
    };
}

fn pipeline_row(r: &Row) -> PipelineRow {
    PipelineRow {
        id: r.get(0),
        name: r.get(1),
        output: r.get(2),
        definition: r.get(3),
        phase: r.get(4),
        error: r.get(5),
        created_ms: r.get(6),
        updated_ms: r.get(7),
        finished_ms: r.get(8),
    }
}

fn job_row(r: &Row) -> JobRow {
    JobRow {
        id: r.get(0),
        name: r.get(1),
        fingerprint: r.get(2),
        output: r.get(3),
        spec: r.get(4),
        phase: r.get(5),
        error: r.get(6),
        created_ms: r.get(7),
        finished_ms: r.get(8),
    }
}

/// Tasks in (map, reduce, finalize) order.
macro_rules! kind_order {
    () => {
        "CASE kind WHEN 'map' THEN 0 WHEN 'reduce' THEN 1 ELSE 2 END"
    };
}

/// The advisory lock (first key; the second is the job id) that orders a job's event ids
/// like their commits.
const EVENT_LOCK: i32 = 0x6d72_6576;

/// Inserts a lifecycle event; `task` names the lease (and slice) it concerns.
fn event(
    sql: &mut Sql<'_>,
    job: i64,
    kind: EventKind,
    task: Option<(&Lease, Option<u32>)>,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    let (task_kind, idx, slice, attempt, owner) = match task {
        Some((l, slice)) => (
            Some(l.kind),
            Some(i64::from(l.idx)),
            slice.map(i64::from),
            Some(i64::from(l.attempt)),
            Some(l.owner.as_str()),
        ),
        None => (None, None, None, None, None),
    };
    let now_ms = sql.now_ms;
    sql.execute(
        "INSERT INTO events (job, at_ms, event, kind, idx, slice, attempt, owner, detail)
         SELECT $1::bigint, $2::bigint, $3::text, $4::text, $5::bigint, $6::bigint, $7::bigint,
                $8::text, $9::text
         FROM pg_advisory_xact_lock($10, ($1::bigint % 2147483647)::integer)",
        &[
            &job,
            &now_ms,
            &kind,
            &task_kind,
            &idx,
            &slice,
            &attempt,
            &owner,
            &detail,
            &EVENT_LOCK,
        ],
    )?;
    Ok(())
}

/// Locks job `job`'s row, shared (`FOR KEY SHARE`: its phase cannot change until this
/// transaction ends) or `exclusive` (`FOR UPDATE`: this transaction may change it); returns its
/// phase and error, or `None` when there is no such job.
fn lock_job(
    sql: &mut Sql<'_>,
    job: i64,
    exclusive: bool,
) -> Result<Option<(Phase, Option<String>)>, StoreError> {
    let row = if exclusive {
        sql.query_opt(
            "SELECT phase, error FROM jobs WHERE id = $1 FOR UPDATE",
            &[&job],
        )?
    } else {
        sql.query_opt(
            "SELECT phase, error FROM jobs WHERE id = $1 FOR KEY SHARE",
            &[&job],
        )?
    };
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// After the last task of `kind` is done, opens the next phase (the caller holds the job's
/// row `FOR UPDATE`, so two last commits cannot both miss each other).
fn advance_phase(sql: &mut Sql<'_>, job: i64, kind: TaskKind) -> Result<(), StoreError> {
    let row = sql.query_one(
        "SELECT count(*) FILTER (WHERE kind = $2 AND state <> 'done'),
                count(*) FILTER (WHERE kind = 'reduce')
         FROM tasks WHERE job = $1",
        &[&job, &kind],
    )?;
    let (unfinished, reducers): (i64, i64) = (row.get(0), row.get(1));
    if unfinished > 0 {
        return Ok(());
    }
    let next = Phase::after(kind, reducers > 0);
    let finished_ms = (next == Phase::Done).then_some(sql.now_ms);
    sql.execute(
        "UPDATE jobs SET phase = $1, finished_ms = $2 WHERE id = $3 AND phase = $4",
        &[&next, &finished_ms, &job, &Phase::of(kind)],
    )?;
    event(sql, job, next.opened_event(), None, Some(next.as_str()))
}

fn job_where_id(sql: &mut Sql<'_>, id: i64, shown: &str) -> Result<JobRow, StoreError> {
    sql.query_opt(
        concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = $1"),
        &[&id],
    )?
    .map(|r| job_row(&r))
    .ok_or_else(|| StoreError::NoSuchJob {
        store: shown.to_owned(),
        job: id,
    })
}

fn job_counters_in(sql: &mut Sql<'_>, job: i64) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(sql
        .query(
            r#"SELECT name, sum(value)::bigint FROM counters WHERE job = $1
               GROUP BY name ORDER BY name COLLATE "C""#,
            &[&job],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

fn events_in(sql: &mut Sql<'_>, id: i64, after: i64, limit: u32) -> Result<Vec<Event>, StoreError> {
    Ok(sql
        .query(
            "SELECT * FROM (
                 SELECT id, at_ms, event, kind, idx, slice, attempt, owner, detail FROM events
                 WHERE job = $1 AND id > $2 ORDER BY id DESC LIMIT $3) recent
             ORDER BY id",
            &[&id, &after, &i64::from(limit)],
        )?
        .iter()
        .map(|r| Event {
            id: r.get(0),
            at_ms: r.get(1),
            event: r.get(2),
            kind: r.get(3),
            idx: opt_u32_at(r, 4),
            slice: opt_u32_at(r, 5),
            attempt: opt_u32_at(r, 6),
            owner: r.get(7),
            detail: r.get(8),
        })
        .collect())
}

/// A task row as `acquire` reads it.
struct Candidate {
    idx: u32,
    attempt: u32,
    cursor: String,
    slices: u32,
    state: TaskState,
    owner: Option<String>,
    bounds: Option<String>,
}

fn candidate(r: &Row) -> Candidate {
    Candidate {
        idx: u32_at(r, 0),
        attempt: u32_at(r, 1),
        cursor: r.get(2),
        slices: u32_at(r, 3),
        state: r.get(4),
        owner: r.get(5),
        bounds: r.get(6),
    }
}

impl PgStore {
    /// Connects to the store at `url` (`postgres://user[:password]@host[:port]/db[?options]`)
    /// and migrates it; waits up to a minute for a lost connection to come back.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, &PgOptions::default())
    }

    /// [`PgStore::open`] with other [`PgOptions`].
    pub fn open_with(url: &str, options: &PgOptions) -> Result<Self, StoreError> {
        let mut session = Session::connect(url, options.reconnect_for)?;
        let shown = session.shown().to_owned();
        session.write(|sql| migrate::migrate(sql, &shown))?;
        Ok(PgStore {
            session: RefCell::new(session),
        })
    }

    /// Connections made so far: 1, plus one per reconnection.
    pub fn connections(&self) -> u64 {
        self.session.borrow().connections
    }

    fn write<T>(
        &self,
        body: impl FnMut(&mut Sql<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.session.borrow_mut().write(body)
    }

    fn read<T>(
        &self,
        body: impl FnMut(&mut Sql<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.session.borrow_mut().read(false, body)
    }

    fn shown(&self) -> String {
        self.session.borrow().shown().to_owned()
    }

    /// The session, for tests that inject faults or kill its backend.
    #[cfg(test)]
    fn session(&self) -> std::cell::RefMut<'_, Session> {
        self.session.borrow_mut()
    }
}

impl JobStore for PgStore {
    fn describe(&self) -> String {
        self.shown()
    }

    fn now_ms(&self) -> Result<i64, StoreError> {
        self.read(|sql| {
            Ok(sql
                .query_one(concat!("SELECT ", session::now_sql!()), &[])?
                .get(0))
        })
    }

    fn create_job(&mut self, job: &NewJob<'_>) -> Result<(i64, bool), StoreError> {
        self.write(|sql| {
            let now_ms = sql.now_ms;
            // ON CONFLICT: a concurrent submit of the same job waits for the other's commit,
            // then finds its job.
            let inserted = sql.query_opt(
                "INSERT INTO jobs (name, fingerprint, output, spec, created_ms)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (fingerprint) DO NOTHING RETURNING id",
                &[&job.name, &job.fingerprint, &job.output, &job.spec, &now_ms],
            )?;
            let Some(row) = inserted else {
                let existing = sql.query_one(
                    "SELECT id FROM jobs WHERE fingerprint = $1",
                    &[&job.fingerprint],
                )?;
                return Ok((existing.get(0), false));
            };
            let id: i64 = row.get(0);
            sql.execute(
                "INSERT INTO tasks (job, kind, idx, origin)
                 SELECT $1, planned.kind, g, g
                 FROM (VALUES ('map', $2::bigint), ('reduce', $3::bigint), ('finalize', 1::bigint))
                      AS planned (kind, n),
                      generate_series(0, planned.n - 1) AS g",
                &[&id, &i64::from(job.map_tasks), &i64::from(job.reduce_tasks)],
            )?;
            let detail = format!(
                "{} map tasks, {} reduce tasks",
                job.map_tasks, job.reduce_tasks
            );
            event(sql, id, EventKind::JobSubmitted, None, Some(&detail))?;
            Ok((id, true))
        })
    }

    fn find_job(&self, fingerprint: &str) -> Result<Option<JobRow>, StoreError> {
        self.read(|sql| {
            Ok(sql
                .query_opt(
                    concat!(
                        "SELECT ",
                        job_columns!(),
                        " FROM jobs WHERE fingerprint = $1"
                    ),
                    &[&fingerprint],
                )?
                .map(|r| job_row(&r)))
        })
    }

    fn job(&self, id: i64) -> Result<JobRow, StoreError> {
        let shown = self.shown();
        self.read(|sql| job_where_id(sql, id, &shown))
    }

    fn jobs(&self) -> Result<Vec<JobRow>, StoreError> {
        self.read(|sql| {
            Ok(sql
                .query(
                    concat!("SELECT ", job_columns!(), " FROM jobs ORDER BY id"),
                    &[],
                )?
                .iter()
                .map(job_row)
                .collect())
        })
    }

    fn update_plan(&mut self, id: i64, spec: &str, detail: &str) -> Result<(), StoreError> {
        self.write(|sql| {
            sql.execute("UPDATE jobs SET spec = $1 WHERE id = $2", &[&spec, &id])?;
            event(sql, id, EventKind::JobSettingsChanged, None, Some(detail))
        })
    }

    fn delete_job(&mut self, id: i64) -> Result<(), StoreError> {
        self.write(|sql| {
            // Waits for the job's running steps, and keeps new ones out until it is gone.
            lock_job(sql, id, true)?;
            for statement in [
                "DELETE FROM events WHERE job = $1",
                "DELETE FROM attempts WHERE job = $1",
                "DELETE FROM counters WHERE job = $1",
                "DELETE FROM outputs WHERE job = $1",
                "DELETE FROM slices WHERE job = $1",
                "DELETE FROM tasks WHERE job = $1",
                "DELETE FROM hooks WHERE job = $1",
                "DELETE FROM jobs WHERE id = $1",
            ] {
                sql.execute(statement, &[&id])?;
            }
            Ok(())
        })
    }

    fn reset_failed(&mut self, id: i64) -> Result<bool, StoreError> {
        self.write(|sql| {
            lock_job(sql, id, true)?;
            let first_failed = sql.query_opt(
                concat!(
                    "SELECT kind FROM tasks WHERE job = $1 AND state = 'failed' ORDER BY ",
                    kind_order!(),
                    " LIMIT 1"
                ),
                &[&id],
            )?;
            let Some(row) = first_failed else {
                return Ok(false);
            };
            let kind: TaskKind = row.get(0);
            sql.execute(
                "UPDATE tasks SET state = 'pending', failures = 0, not_before = 0
                 WHERE job = $1 AND state = 'failed'",
                &[&id],
            )?;
            sql.execute(
                "UPDATE jobs SET phase = $1, error = NULL, finished_ms = NULL WHERE id = $2",
                &[&Phase::of(kind), &id],
            )?;
            event(
                sql,
                id,
                EventKind::JobResumed,
                None,
                Some("failed tasks reset for a new round of attempts"),
            )?;
            Ok(true)
        })
    }

    fn cancel_job(&mut self, id: i64) -> Result<Cancelled, StoreError> {
        let shown = self.shown();
        self.write(|sql| {
            let (phase, _) = lock_job(sql, id, true)?.ok_or_else(|| StoreError::NoSuchJob {
                store: shown.clone(),
                job: id,
            })?;
            if phase.is_over() {
                return Ok(Cancelled::AlreadyOver(phase));
            }
            let now_ms = sql.now_ms;
            sql.execute(
                "UPDATE jobs SET phase = 'cancelled', finished_ms = $1 WHERE id = $2",
                &[&now_ms, &id],
            )?;
            event(sql, id, EventKind::JobCancelled, None, Some(phase.as_str()))?;
            Ok(Cancelled::Now)
        })
    }

    fn acquire(
        &mut self,
        job: i64,
        owner: &str,
        lease_ms: i64,
        is_dead: &dyn Fn(&str) -> bool,
    ) -> Result<Acquired, StoreError> {
        let shown = self.shown();
        self.write(|sql| {
            let now_ms = sql.now_ms;
            let (phase, error) = lock_job(sql, job, false)?.ok_or_else(|| StoreError::NoSuchJob {
                store: shown.clone(),
                job,
            })?;
            let Some(kind) = phase.task_kind() else {
                return Ok(Acquired::Finished { phase, error });
            };
            // SKIP LOCKED: a task another worker is taking right now is passed over, not
            // waited for.
            let mut found = sql
                .query_opt(
                    "SELECT idx, attempt, cursor, slices, state, owner, bounds FROM tasks
                     WHERE job = $1 AND kind = $2
                       AND ((state = 'pending' AND not_before <= $3)
                            OR (state = 'leased' AND expires_at <= $3))
                     ORDER BY idx LIMIT 1
                     FOR UPDATE SKIP LOCKED",
                    &[&job, &kind, &now_ms],
                )?
                .map(|r| candidate(&r));
            if found.is_none() {
                let leased: Vec<Candidate> = sql
                    .query(
                        "SELECT idx, attempt, cursor, slices, state, owner, bounds FROM tasks
                         WHERE job = $1 AND kind = $2 AND state = 'leased' ORDER BY idx",
                        &[&job, &kind],
                    )?
                    .iter()
                    .map(candidate)
                    .collect();
                for dead in leased
                    .iter()
                    .filter(|t| t.owner.as_deref().is_some_and(is_dead))
                {
                    // Still held by that owner, and nobody else taking it over right now.
                    found = sql
                        .query_opt(
                            "SELECT idx, attempt, cursor, slices, state, owner, bounds FROM tasks
                             WHERE job = $1 AND kind = $2 AND idx = $3
                               AND state = 'leased' AND attempt = $4
                             FOR UPDATE SKIP LOCKED",
                            &[&job, &kind, &i64::from(dead.idx), &i64::from(dead.attempt)],
                        )?
                        .map(|r| candidate(&r));
                    if found.is_some() {
                        break;
                    }
                }
            }
            let Some(task) = found else {
                let retry_at_ms: Option<i64> = sql
                    .query_one(
                        "SELECT min(CASE WHEN state = 'leased' THEN expires_at ELSE not_before END)
                         FROM tasks WHERE job = $1 AND kind = $2 AND state IN ('pending', 'leased')",
                        &[&job, &kind],
                    )?
                    .get(0);
                return Ok(Acquired::Wait {
                    retry_in_ms: retry_at_ms.map_or(0, |at| (at - now_ms).max(0)),
                });
            };
            let attempt = task.attempt + 1;
            let idx = i64::from(task.idx);
            if task.state == TaskState::Leased {
                // The previous holder crashed or stalled: its attempt is abandoned, not failed.
                sql.execute(
                    "UPDATE attempts SET outcome = 'abandoned', ended_ms = $1
                     WHERE job = $2 AND kind = $3 AND idx = $4 AND attempt = $5",
                    &[&now_ms, &job, &kind, &idx, &i64::from(task.attempt)],
                )?;
            }
            sql.execute(
                "UPDATE tasks SET state = 'leased', owner = $1, attempt = $2, expires_at = $3
                 WHERE job = $4 AND kind = $5 AND idx = $6",
                &[&owner, &i64::from(attempt), &(now_ms + lease_ms), &job, &kind, &idx],
            )?;
            sql.execute(
                "INSERT INTO attempts (job, kind, idx, attempt, owner, started_ms)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&job, &kind, &idx, &i64::from(attempt), &owner, &now_ms],
            )?;
            let lease = Lease {
                job,
                kind,
                idx: task.idx,
                attempt,
                owner: owner.to_owned(),
                cursor: task.cursor,
                slices: task.slices,
                bounds: task.bounds,
            };
            let (name, detail) = EventKind::for_lease(task.state, task.owner.as_deref(), attempt);
            event(sql, job, name, Some((&lease, None)), detail.as_deref())?;
            Ok(Acquired::Lease(lease))
        })
    }

    fn heartbeat(&mut self, lease: &Lease, lease_ms: i64) -> Result<(), StoreError> {
        let (job, kind, idx, attempt) = key(lease);
        self.write(|sql| {
            let phase = lock_job(sql, job, false)?.map(|(p, _)| p);
            if phase.is_some_and(|p| p != Phase::Cancelled) {
                let expires_at = sql.now_ms + lease_ms;
                let changed = sql.execute(
                    "UPDATE tasks SET expires_at = $1
                     WHERE job = $2 AND kind = $3 AND idx = $4 AND attempt = $5 AND state = 'leased'",
                    &[&expires_at, &job, &kind, &idx, &attempt],
                )?;
                if changed == 1 {
                    return Ok(());
                }
            }
            Err(StoreError::refusal(lease, phase))
        })
    }

    fn split_wanted(&self, lease: &Lease) -> Result<bool, StoreError> {
        let (job, kind, idx, _) = key(lease);
        self.read(|sql| {
            Ok(sql
                .query_opt(
                    "SELECT split_wanted FROM tasks WHERE job = $1 AND kind = $2 AND idx = $3",
                    &[&job, &kind, &idx],
                )?
                .is_some_and(|r| r.get(0)))
        })
    }

    fn request_split(&mut self, job: i64, idx: u32) -> Result<bool, StoreError> {
        self.write(|sql| {
            let changed = sql.execute(
                "UPDATE tasks SET split_wanted = true
                 WHERE job = $1 AND kind = 'map' AND idx = $2 AND state = 'leased'
                   AND NOT split_wanted",
                &[&job, &i64::from(idx)],
            )?;
            Ok(changed == 1)
        })
    }

    fn slice_started(&mut self, lease: &Lease) -> Result<(), StoreError> {
        self.write(|sql| {
            event(
                sql,
                lease.job,
                EventKind::SliceStarted,
                Some((lease, Some(lease.slices))),
                None,
            )
        })
    }

    fn commit_slice(
        &mut self,
        lease: &mut Lease,
        commit: &SliceCommit<'_>,
    ) -> Result<Option<u32>, StoreError> {
        let SliceCommit {
            cursor,
            outputs,
            last,
            max_job_counters,
            answers_split,
            split,
            ..
        } = *commit;
        let held: &Lease = lease;
        let (job, kind, idx, attempt) = key(held);
        let slice = i64::from(held.slices);
        let sums = commit.summed_counters();
        let deltas = counters_json(&sums);
        let (names, values): (Vec<&str>, Vec<i64>) = sums.iter().map(|(n, v)| (*n, *v)).unzip();
        let split_to = self.write(|sql| {
            let lease = held;
            let now_ms = sql.now_ms;
            // A last slice may open the next phase, and a split numbers a new task: each decides
            // alone (FOR UPDATE).
            let phase = lock_job(sql, job, last || answers_split)?.map(|(p, _)| p);
            let changed = if phase.is_some_and(|p| p != Phase::Cancelled) {
                sql.execute(
                    "UPDATE tasks SET cursor = $1, slices = slices + 1,
                            state = CASE WHEN $2::boolean THEN 'done' ELSE 'leased' END,
                            owner = CASE WHEN $2::boolean THEN NULL ELSE owner END
                     WHERE job = $3 AND kind = $4 AND idx = $5 AND attempt = $6
                       AND state = 'leased' AND slices = $7",
                    &[&cursor, &last, &job, &kind, &idx, &attempt, &slice],
                )?
            } else {
                0
            };
            if changed != 1 {
                // This very commit, replayed after its reply was lost, is already in: done.
                let landed = sql.query_opt(
                    "SELECT 1 FROM slices
                     WHERE job = $1 AND kind = $2 AND idx = $3 AND slice = $4
                       AND attempt = $5 AND cursor = $6",
                    &[&job, &kind, &idx, &slice, &attempt, &cursor],
                )?;
                let Some(_) = landed else {
                    return Err(StoreError::refusal(lease, phase));
                };
                // Did it split? The task it split off is the one at its position.
                let Some(split) = split.filter(|_| answers_split) else {
                    return Ok(None);
                };
                return Ok(sql
                    .query_opt(
                        "SELECT t.idx FROM tasks t JOIN tasks s
                           ON s.job = t.job AND s.kind = t.kind AND s.origin = t.origin
                         WHERE s.job = $1 AND s.kind = $2 AND s.idx = $3
                           AND t.position = $4 AND t.idx != s.idx",
                        &[&job, &kind, &idx, &split.position],
                    )?
                    .map(|r| u32_at(&r, 0)));
            }
            let mut split_to = None;
            if answers_split {
                // The row is this transaction's since the update above: no request slips in.
                let wanted: bool = sql
                    .query_one(
                        "SELECT split_wanted FROM tasks WHERE job = $1 AND kind = $2 AND idx = $3",
                        &[&job, &kind, &idx],
                    )?
                    .get(0);
                sql.execute(
                    "UPDATE tasks SET split_wanted = false WHERE job = $1 AND kind = $2 AND idx = $3",
                    &[&job, &kind, &idx],
                )?;
                if let (true, false, Some(split)) = (wanted, last, split) {
                    let new_idx: i64 = sql
                        .query_one(
                            "SELECT max(idx) + 1 FROM tasks WHERE job = $1 AND kind = $2",
                            &[&job, &kind],
                        )?
                        .get(0);
                    sql.execute(
                        "UPDATE tasks SET bounds = $1 WHERE job = $2 AND kind = $3 AND idx = $4",
                        &[&split.kept, &job, &kind, &idx],
                    )?;
                    sql.execute(
                        "INSERT INTO tasks (job, kind, idx, origin, position, bounds)
                         SELECT job, kind, $1, origin, $2, $3 FROM tasks
                         WHERE job = $4 AND kind = $5 AND idx = $6",
                        &[&new_idx, &split.position, &split.given, &job, &kind, &idx],
                    )?;
                    let new_idx = u32::try_from(new_idx).expect("task indices fit u32");
                    let detail = format!("task {new_idx}: {}", split.detail);
                    event(
                        sql,
                        job,
                        EventKind::TaskSplit,
                        Some((lease, Some(lease.slices))),
                        Some(&detail),
                    )?;
                    split_to = Some(new_idx);
                }
            }
            sql.execute(
                "INSERT INTO slices (job, kind, idx, slice, attempt, cursor, counters, committed_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[&job, &kind, &idx, &slice, &attempt, &cursor, &deltas, &now_ms],
            )?;
            if !outputs.is_empty() {
                let parts: Vec<i64> = outputs.iter().map(|o| i64::from(o.part)).collect();
                let paths: Vec<&str> = outputs.iter().map(|o| o.path.as_str()).collect();
                let bytes: Vec<i64> = outputs.iter().map(|o| o.bytes as i64).collect();
                let records: Vec<i64> = outputs.iter().map(|o| o.records as i64).collect();
                let checksums: Vec<&str> = outputs.iter().map(|o| o.checksum.as_str()).collect();
                sql.execute(
                    "INSERT INTO outputs (job, kind, idx, slice, part, path, bytes, records, checksum)
                     SELECT $1, $2, $3, $4, o.part, o.path, o.bytes, o.records, o.checksum
                     FROM unnest($5::bigint[], $6::text[], $7::bigint[], $8::bigint[], $9::text[])
                          AS o (part, path, bytes, records, checksum)",
                    &[&job, &kind, &idx, &slice, &parts, &paths, &bytes, &records, &checksums],
                )?;
            }
            if !names.is_empty() {
                sql.execute(
                    "INSERT INTO counters (job, kind, idx, name, value)
                     SELECT $1, $2, $3, c.name, c.value
                     FROM unnest($4::text[], $5::bigint[]) AS c (name, value)
                     ON CONFLICT (job, kind, idx, name)
                     DO UPDATE SET value = counters.value + excluded.value",
                    &[&job, &kind, &idx, &names, &values],
                )?;
            }
            if let Some(cap) = max_job_counters
                && commit.names_job_counters()
            {
                let count: i64 = sql
                    .query_one(
                        "SELECT count(DISTINCT name) FROM counters WHERE job = $1 AND name LIKE 'job.%'",
                        &[&job],
                    )?
                    .get(0);
                let count = u32::try_from(count).unwrap_or(u32::MAX);
                if count > cap {
                    // Rolled back with the rest of the transaction.
                    return Err(commit.too_many_counters(job, count, cap));
                }
            }
            event(
                sql,
                job,
                EventKind::SliceCommitted,
                Some((lease, Some(lease.slices))),
                Some(cursor),
            )?;
            if last {
                sql.execute(
                    "UPDATE attempts SET outcome = 'done', ended_ms = $1
                     WHERE job = $2 AND kind = $3 AND idx = $4 AND attempt = $5",
                    &[&now_ms, &job, &kind, &idx, &attempt],
                )?;
                event(sql, job, EventKind::TaskCompleted, Some((lease, None)), None)?;
                advance_phase(sql, job, kind)?;
            }
            // Everything is written but not committed: a crash here must lose all of it.
            crate::failpoint(&format!("inside-commit-{kind}"));
            Ok(split_to)
        })?;
        // Only once the commit is durable does the worker's view of its lease move on.
        lease.cursor = cursor.to_owned();
        lease.slices += 1;
        if let (Some(_), Some(split)) = (split_to, split) {
            lease.bounds = Some(split.kept.to_owned());
        }
        Ok(split_to)
    }

    fn fail_attempt(&mut self, lease: &Lease, failure: &Failure<'_>) -> Result<bool, StoreError> {
        let (job, kind, idx, attempt) = key(lease);
        self.write(|sql| {
            let now_ms = sql.now_ms;
            // It may fail the job: it decides alone.
            let phase = lock_job(sql, job, true)?.map(|(p, _)| p);
            let failures = sql
                .query_opt(
                    "SELECT failures FROM tasks
                     WHERE job = $1 AND kind = $2 AND idx = $3 AND attempt = $4 AND state = 'leased'
                     FOR UPDATE",
                    &[&job, &kind, &idx, &attempt],
                )?
                .map(|r| u32_at(&r, 0))
                .ok_or_else(|| StoreError::fenced(lease))?;
            if phase == Some(Phase::Cancelled) {
                return Err(StoreError::refusal(lease, phase));
            }
            let failures = failures + 1;
            let backoff = failure.retry.backoff(failures);
            let retry = backoff.is_some();
            let retry_at_ms = backoff.map_or(0, |ms| now_ms + ms);
            let state = if retry {
                TaskState::Pending
            } else {
                TaskState::Failed
            };
            sql.execute(
                "UPDATE tasks SET state = $1, owner = NULL, expires_at = NULL, failures = $2,
                        not_before = $3
                 WHERE job = $4 AND kind = $5 AND idx = $6",
                &[
                    &state,
                    &i64::from(failures),
                    &retry_at_ms,
                    &job,
                    &kind,
                    &idx,
                ],
            )?;
            sql.execute(
                "UPDATE attempts SET outcome = 'failed', failure = $1, error = $2, signature = $3,
                        ended_ms = $4
                 WHERE job = $5 AND kind = $6 AND idx = $7 AND attempt = $8",
                &[
                    &failure.kind,
                    &failure.error,
                    &failure.signature,
                    &now_ms,
                    &job,
                    &kind,
                    &idx,
                    &attempt,
                ],
            )?;
            event(
                sql,
                job,
                EventKind::AttemptFailed,
                Some((lease, Some(lease.slices))),
                Some(failure.error),
            )?;
            if !retry {
                sql.execute(
                    "UPDATE jobs SET phase = 'failed', error = $1, finished_ms = $2 WHERE id = $3",
                    &[&failure.error, &now_ms, &job],
                )?;
                event(
                    sql,
                    job,
                    EventKind::JobFailed,
                    Some((lease, None)),
                    Some(failure.error),
                )?;
            }
            Ok(retry)
        })
    }

    fn previous_failure(&self, lease: &Lease) -> Result<Option<String>, StoreError> {
        let (job, kind, idx, attempt) = key(lease);
        self.read(|sql| {
            Ok(sql
                .query_opt(
                    "SELECT signature FROM attempts
                     WHERE job = $1 AND kind = $2 AND idx = $3 AND attempt < $4 AND outcome = 'failed'
                     ORDER BY attempt DESC LIMIT 1",
                    &[&job, &kind, &idx, &attempt],
                )?
                .and_then(|r| r.get(0)))
        })
    }

    fn record_refusal(&mut self, lease: &Lease, what: &str) -> Result<(), StoreError> {
        let (job, kind, idx, attempt) = key(lease);
        self.write(|sql| {
            let now_ms = sql.now_ms;
            sql.execute(
                "UPDATE attempts SET outcome = 'refused', ended_ms = $1
                 WHERE job = $2 AND kind = $3 AND idx = $4 AND attempt = $5
                   AND (outcome IS NULL OR outcome = 'abandoned')",
                &[&now_ms, &job, &kind, &idx, &attempt],
            )?;
            // A cancelled job's tasks stay leased by nobody: release them, so status shows no
            // running lease.
            sql.execute(
                "UPDATE tasks SET state = 'pending', owner = NULL, expires_at = NULL
                 WHERE job = $1 AND kind = $2 AND idx = $3 AND attempt = $4 AND state = 'leased'
                   AND (SELECT phase FROM jobs WHERE id = tasks.job) = 'cancelled'",
                &[&job, &kind, &idx, &attempt],
            )?;
            event(
                sql,
                job,
                EventKind::CommitRefused,
                Some((lease, Some(lease.slices))),
                Some(what),
            )
        })
    }

    fn outputs(&self, job: i64, kind: TaskKind) -> Result<Vec<CommittedOutput>, StoreError> {
        self.read(|sql| {
            Ok(sql
                .query(
                    r#"SELECT o.idx, t.origin, o.slice, o.part, o.path, o.bytes, o.records, o.checksum
                       FROM outputs o
                       JOIN tasks t ON t.job = o.job AND t.kind = o.kind AND t.idx = o.idx
                       WHERE o.job = $1 AND o.kind = $2
                       ORDER BY t.origin, t.position COLLATE "C", o.idx, o.slice,
                                o.path COLLATE "C""#,
                    &[&job, &kind],
                )?
                .iter()
                .map(|r| CommittedOutput {
                    idx: u32_at(r, 0),
                    origin: u32_at(r, 1),
                    slice: u32_at(r, 2),
                    file: OutputFile {
                        part: u32_at(r, 3),
                        path: r.get(4),
                        bytes: r.get::<_, i64>(5) as u64,
                        records: r.get::<_, i64>(6) as u64,
                        checksum: r.get(7),
                    },
                })
                .collect())
        })
    }

    fn job_counters(&self, job: i64) -> Result<Vec<(String, i64)>, StoreError> {
        self.read(|sql| job_counters_in(sql, job))
    }

    fn status(&self, id: i64, events: u32) -> Result<JobStatus, StoreError> {
        let shown = self.shown();
        // One snapshot: the counts, leases and events agree with each other.
        self.session.borrow_mut().read(true, |sql| {
            let JobRow {
                id,
                name,
                output,
                phase,
                error,
                created_ms,
                finished_ms,
                ..
            } = job_where_id(sql, id, &shown)?;
            let now_ms: i64 = sql
                .query_one(concat!("SELECT ", session::now_sql!()), &[])?
                .get(0);
            let tasks = sql
                .query(
                    concat!(
                        "SELECT kind, count(*), count(*) FILTER (WHERE state = 'done'),
                                count(*) FILTER (WHERE state = 'leased'),
                                count(*) FILTER (WHERE state = 'pending'),
                                count(*) FILTER (WHERE state = 'failed'), sum(slices)::bigint
                         FROM tasks WHERE job = $1 GROUP BY kind ORDER BY ",
                        kind_order!()
                    ),
                    &[&id],
                )?
                .iter()
                .map(|r| TaskCounts {
                    kind: r.get(0),
                    total: u32_at(r, 1),
                    done: u32_at(r, 2),
                    leased: u32_at(r, 3),
                    pending: u32_at(r, 4),
                    failed: u32_at(r, 5),
                    slices: u32_at(r, 6),
                })
                .collect();
            let attempts = sql.query_one(
                "SELECT count(*), count(*) FILTER (WHERE outcome = 'failed'),
                        count(*) FILTER (WHERE outcome = 'refused')
                 FROM attempts WHERE job = $1",
                &[&id],
            )?;
            let failures_by_kind = sql
                .query(
                    r#"SELECT coalesce(failure, ''), count(*) FROM attempts
                       WHERE job = $1 AND outcome = 'failed'
                       GROUP BY failure ORDER BY failure COLLATE "C" NULLS FIRST"#,
                    &[&id],
                )?
                .iter()
                .map(|r| (r.get(0), u32_at(r, 1)))
                .collect();
            let leases = sql
                .query(
                    concat!(
                        "SELECT kind, idx, owner, attempt, slices, expires_at FROM tasks
                         WHERE job = $1 AND state = 'leased' ORDER BY ",
                        kind_order!(),
                        ", idx"
                    ),
                    &[&id],
                )?
                .iter()
                .map(|r| {
                    let expires_at_ms: i64 = r.get(5);
                    LeaseRow {
                        kind: r.get(0),
                        idx: u32_at(r, 1),
                        owner: r.get(2),
                        attempt: u32_at(r, 3),
                        slices: u32_at(r, 4),
                        expires_at_ms,
                        expired: expires_at_ms <= now_ms,
                        stale: expires_at_ms <= now_ms,
                    }
                })
                .collect();
            let errors = sql
                .query(
                    "SELECT kind, idx, attempt, owner, failure, error FROM attempts
                     WHERE job = $1 AND error IS NOT NULL ORDER BY started_ms, kind, idx, attempt",
                    &[&id],
                )?
                .iter()
                .map(|r| AttemptError {
                    kind: r.get(0),
                    idx: u32_at(r, 1),
                    attempt: u32_at(r, 2),
                    owner: r.get(3),
                    failure: r.get(4),
                    error: r.get(5),
                })
                .collect();
            Ok(JobStatus {
                id,
                name,
                phase,
                output,
                error,
                created_ms,
                finished_ms,
                now_ms,
                tasks,
                attempts: u32_at(&attempts, 0),
                failed_attempts: u32_at(&attempts, 1),
                failures_by_kind,
                refused_attempts: u32_at(&attempts, 2),
                leases,
                counters: job_counters_in(sql, id)?,
                errors,
                recent_events: events_in(sql, id, 0, events)?,
            })
        })
    }

    fn tasks(&self, id: i64) -> Result<Vec<TaskRow>, StoreError> {
        self.session.borrow_mut().read(true, |sql| {
            let mut tasks: Vec<TaskRow> = sql
                .query(
                    concat!(
                        "SELECT kind, idx, state, attempt, failures, slices, owner, origin,
                                cursor, bounds, split_wanted
                         FROM tasks WHERE job = $1 ORDER BY ",
                        kind_order!(),
                        ", idx"
                    ),
                    &[&id],
                )?
                .iter()
                .map(|r| TaskRow {
                    kind: r.get(0),
                    idx: u32_at(r, 1),
                    state: r.get(2),
                    attempt: u32_at(r, 3),
                    failures: u32_at(r, 4),
                    slices: u32_at(r, 5),
                    owner: r.get(6),
                    split_from: Some(u32_at(r, 7)).filter(|&origin| origin != u32_at(r, 1)),
                    cursor: r.get(8),
                    bounds: r.get(9),
                    split_wanted: r.get(10),
                    counters: Vec::new(),
                })
                .collect();
            let counters = sql.query(
                r#"SELECT kind, idx, name, value FROM counters WHERE job = $1
                   ORDER BY name COLLATE "C""#,
                &[&id],
            )?;
            for r in &counters {
                let (kind, idx): (TaskKind, u32) = (r.get(0), u32_at(r, 1));
                if let Some(t) = tasks.iter_mut().find(|t| t.kind == kind && t.idx == idx) {
                    t.counters.push((r.get(2), r.get(3)));
                }
            }
            Ok(tasks)
        })
    }

    fn events(&self, id: i64, after: i64, limit: u32) -> Result<Vec<Event>, StoreError> {
        self.read(|sql| events_in(sql, id, after, limit))
    }

    fn claim_hook(
        &mut self,
        job: i64,
        name: &str,
        owner: &str,
        lease_ms: i64,
    ) -> Result<Option<u32>, StoreError> {
        self.write(|sql| {
            let now_ms = sql.now_ms;
            sql.execute(
                "INSERT INTO hooks (job, name, updated_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (job, name) DO NOTHING",
                &[&job, &name, &now_ms],
            )?;
            // A concurrent claim waits on the row, then finds it claimed.
            Ok(sql
                .query_opt(
                    "UPDATE hooks SET attempt = attempt + 1, owner = $1, expires_at = $2,
                            updated_ms = $3
                     WHERE job = $4 AND name = $5 AND state = 'pending' AND not_before <= $3
                       AND (expires_at IS NULL OR expires_at <= $3)
                     RETURNING attempt",
                    &[&owner, &(now_ms + lease_ms), &now_ms, &job, &name],
                )?
                .map(|r| u32_at(&r, 0)))
        })
    }

    fn finish_hook(
        &mut self,
        job: i64,
        name: &str,
        attempt: u32,
        outcome: HookOutcome,
        detail: &str,
    ) -> Result<(), StoreError> {
        self.write(|sql| {
            let now_ms = sql.now_ms;
            let (state, backoff_ms) = outcome.next_state();
            let not_before = if backoff_ms > 0 {
                now_ms + backoff_ms
            } else {
                0
            };
            let changed = sql.execute(
                "UPDATE hooks SET state = $1, owner = NULL, expires_at = NULL, not_before = $2,
                        detail = $3, updated_ms = $4
                 WHERE job = $5 AND name = $6 AND attempt = $7 AND state = 'pending'",
                &[
                    &state,
                    &not_before,
                    &detail,
                    &now_ms,
                    &job,
                    &name,
                    &i64::from(attempt),
                ],
            )?;
            if changed == 1 {
                event(
                    sql,
                    job,
                    outcome.event(),
                    None,
                    Some(&format!("{name}: {detail}")),
                )?;
            }
            Ok(())
        })
    }

    fn hooks(&self, job: i64) -> Result<Vec<HookRow>, StoreError> {
        self.read(|sql| {
            Ok(sql
                .query(
                    r#"SELECT name, state, attempt, detail, updated_ms FROM hooks WHERE job = $1
                       ORDER BY name COLLATE "C""#,
                    &[&job],
                )?
                .iter()
                .map(|r| HookRow {
                    name: r.get(0),
                    state: r.get(1),
                    attempts: u32_at(r, 2),
                    detail: r.get(3),
                    updated_ms: r.get(4),
                })
                .collect())
        })
    }

    fn put_component(&mut self, sha256: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.write(|sql| {
            sql.execute(
                "INSERT INTO components (sha256, bytes) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&sha256, &bytes],
            )?;
            Ok(())
        })
    }

    fn component(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|sql| {
            Ok(sql
                .query_opt("SELECT bytes FROM components WHERE sha256 = $1", &[&sha256])?
                .map(|r| r.get(0)))
        })
    }
    fn put_pipeline(&mut self, p: &NewPipeline<'_>) -> Result<(i64, bool), StoreError> {
        self.write(|sql| {
            let now_ms = sql.now_ms;
            // ON CONFLICT: a concurrent first run waits for the other's commit, then updates.
            let inserted = sql.query_opt(
                "INSERT INTO pipelines (name, output, definition, created_ms, updated_ms)
                 VALUES ($1, $2, $3, $4, $4)
                 ON CONFLICT (output) DO NOTHING RETURNING id",
                &[&p.name, &p.output, &p.definition, &now_ms],
            )?;
            let (id, created) = match inserted {
                Some(row) => (row.get::<_, i64>(0), true),
                None => {
                    let id: i64 = sql
                        .query_one(
                            "UPDATE pipelines SET name = $1, definition = $2, phase = 'running',
                                    error = NULL, finished_ms = NULL, updated_ms = $3
                             WHERE output = $4 RETURNING id",
                            &[&p.name, &p.definition, &now_ms, &p.output],
                        )?
                        .get(0);
                    sql.execute(
                        "UPDATE stages SET state = 'waiting', updated_ms = $1 WHERE pipeline = $2",
                        &[&now_ms, &id],
                    )?;
                    (id, false)
                }
            };
            let names: Vec<String> = p.stages.iter().map(|s| (*s).to_owned()).collect();
            sql.execute(
                "DELETE FROM stages WHERE pipeline = $1 AND NOT (name = ANY($2))",
                &[&id, &names],
            )?;
            sql.execute(
                "INSERT INTO stages (pipeline, name, updated_ms)
                 SELECT $1, n, $3 FROM unnest($2::text[]) AS n
                 ON CONFLICT (pipeline, name) DO NOTHING",
                &[&id, &names, &now_ms],
            )?;
            Ok((id, created))
        })
    }

    fn pipeline(&self, id: i64) -> Result<PipelineRow, StoreError> {
        let shown = self.shown();
        self.read(|sql| {
            sql.query_opt(
                concat!(
                    "SELECT ",
                    pipeline_columns!(),
                    " FROM pipelines WHERE id = $1"
                ),
                &[&id],
            )?
            .map(|r| pipeline_row(&r))
            .ok_or_else(|| StoreError::NoSuchPipeline {
                store: shown.clone(),
                pipeline: id,
            })
        })
    }

    fn pipelines(&self) -> Result<Vec<PipelineRow>, StoreError> {
        self.read(|sql| {
            Ok(sql
                .query(
                    concat!(
                        "SELECT ",
                        pipeline_columns!(),
                        " FROM pipelines ORDER BY id"
                    ),
                    &[],
                )?
                .iter()
                .map(pipeline_row)
                .collect())
        })
    }

    fn stages(&self, pipeline: i64) -> Result<Vec<StageRow>, StoreError> {
        self.read(|sql| {
            Ok(sql
                .query(
                    r#"SELECT name, state, fingerprint, job, claims, reason, detail, updated_ms, owner
                       FROM stages WHERE pipeline = $1 ORDER BY name COLLATE "C""#,
                    &[&pipeline],
                )?
                .iter()
                .map(|r| StageRow {
                    name: r.get(0),
                    state: r.get(1),
                    fingerprint: r.get(2),
                    job: r.get(3),
                    claims: u32_at(r, 4),
                    reason: r.get(5),
                    detail: r.get(6),
                    updated_ms: r.get(7),
                    owner: r.get(8),
                })
                .collect())
        })
    }

    fn claim_stage(
        &mut self,
        pipeline: i64,
        name: &str,
        owner: &str,
        lease_ms: i64,
        dead_owner: Option<&str>,
    ) -> Result<Option<u32>, StoreError> {
        self.write(|sql| {
            let now_ms = sql.now_ms;
            // A concurrent claim waits on the row, then finds it claimed.
            Ok(sql
                .query_opt(
                    "UPDATE stages SET claims = claims + 1, owner = $1, expires_at = $2,
                            updated_ms = $3
                     WHERE pipeline = $4 AND name = $5
                       AND (expires_at IS NULL OR expires_at <= $3 OR owner = $6)
                     RETURNING claims",
                    &[
                        &owner,
                        &(now_ms + lease_ms),
                        &now_ms,
                        &pipeline,
                        &name,
                        &dead_owner,
                    ],
                )?
                .map(|r| u32_at(&r, 0)))
        })
    }

    fn update_stage(
        &mut self,
        pipeline: i64,
        name: &str,
        claim: Option<u32>,
        u: &StageUpdate<'_>,
    ) -> Result<bool, StoreError> {
        let claim = claim.map(i64::from);
        self.write(|sql| {
            let now_ms = sql.now_ms;
            let changed = sql.execute(
                "UPDATE stages SET state = coalesce($1, state),
                        fingerprint = coalesce($2, fingerprint), job = coalesce($3, job),
                        reason = coalesce($4, reason), detail = coalesce($5, detail),
                        owner = CASE WHEN $6::bigint IS NULL THEN owner END,
                        expires_at = CASE WHEN $6::bigint IS NULL THEN expires_at END,
                        updated_ms = $7
                 WHERE pipeline = $8 AND name = $9 AND ($6::bigint IS NULL OR claims = $6)
                   AND ($10::bigint IS NULL OR job = $10)",
                &[
                    &u.state,
                    &u.fingerprint,
                    &u.job,
                    &u.reason,
                    &u.detail,
                    &claim,
                    &now_ms,
                    &pipeline,
                    &name,
                    &u.if_job,
                ],
            )?;
            Ok(changed == 1)
        })
    }

    fn set_pipeline_phase(
        &mut self,
        id: i64,
        phase: PipelinePhase,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.write(|sql| {
            let now_ms = sql.now_ms;
            let finished = (phase != PipelinePhase::Running).then_some(now_ms);
            sql.execute(
                "UPDATE pipelines SET phase = $1, error = $2, updated_ms = $3,
                        finished_ms = CASE WHEN $4::bigint IS NULL THEN NULL
                                           ELSE coalesce(finished_ms, $4) END
                 WHERE id = $5",
                &[&phase, &error, &now_ms, &finished, &id],
            )?;
            Ok(())
        })
    }
}
