//! One connection to PostgreSQL and how the store's steps run on it: write transactions that
//! survive a lost connection or a server restart, reads that are simply retried, prepared
//! statements cached per connection, and errors that name the store.
//!
//! **A write is one transaction** (`BEGIN` … `COMMIT`); its first statement reads the
//! database's clock, and its last, sent with `COMMIT`, inserts a random 64-bit **token** into
//! `write_log`. If the connection is lost before `COMMIT` is sent, nothing was committed: the
//! session reconnects (backing off, for up to [`super::PgOptions::reconnect_for`]) and runs the
//! whole transaction again. If it is lost after `COMMIT` was sent and before its reply came, the
//! outcome is unknown to the client. The session reconnects, waits until the old connection's
//! server process has exited (terminating it after a second: it may sit on a half-open
//! socket), and then looks for its token: there, and the step's result (computed before
//! `COMMIT`) is returned; absent, and the transaction runs again. So a step is applied once,
//! never twice. (Asking `pg_xact_status` about the transaction id would not do: after a crash,
//! the id of a transaction whose WAL never reached the disk is handed out again.)
//! Independently of that, every write is fenced and keyed (see docs/protocol.md), so even a
//! blind replay could only be refused or be a no-op.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, SimpleQueryMessage, Statement};

use crate::StoreError;

/// The database's clock, as ms since the epoch, in SQL. Every time the backend stores or
/// compares is this one, never the worker's.
macro_rules! now_sql {
    () => {
        "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
    };
}
pub(crate) use now_sql;

/// How long to wait between reconnection attempts: doubling from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(25), Duration::from_secs(1));

/// After this long still running, the server process of a connection lost in the middle of
/// `COMMIT` is terminated (it may be stuck on a half-open socket), so its outcome becomes known.
const TERMINATE_AFTER: Duration = Duration::from_secs(1);

/// `write_log` rows older than this are deleted, every [`CLEAN_EVERY`] writes of a session: far
/// longer than any client waits to look its token up.
const WRITE_LOG_KEEP_MS: i64 = 3_600_000;
const CLEAN_EVERY: u64 = 1000;

/// A connection's server process: its pid and start time (a pid alone may be reused).
#[derive(Debug, Clone)]
struct Backend {
    pid: i32,
    started: String,
}

/// A live connection and what was prepared on it.
struct Live {
    client: Client,
    statements: HashMap<&'static str, Statement>,
    backend: Backend,
}

/// Faults a test injects into the next write transactions, at the moment the body has run and
/// before `COMMIT` is sent.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The backend is terminated (`pg_terminate_backend`) before `COMMIT`: the transaction
    /// is lost with the connection.
    KillBeforeCommit,
    /// `COMMIT` succeeds, then the backend is terminated and the session acts as if the reply
    /// never came: it must find out that the transaction committed.
    LoseCommitReply,
}

/// A connection to one store that reconnects when it is lost.
pub(crate) struct Session {
    config: postgres::Config,
    /// The URL without its password, for messages.
    shown: String,
    reconnect_for: Duration,
    live: Option<Live>,
    /// The server process of the connection lost last.
    lost_backend: Option<Backend>,
    /// Connections made so far (the first, and every reconnection).
    pub(crate) connections: u64,
    /// `connections + 1` when that connection was made and then lost while being set up.
    setup_lost: u64,
    /// Write transactions committed by this session.
    writes: u64,
    /// Where this session's tokens come from (randomly keyed).
    tokens: std::hash::RandomState,
    #[cfg(test)]
    pub(crate) faults: std::collections::VecDeque<Fault>,
}

/// What one try of a write transaction came to.
enum Try<T> {
    Done(T),
    Failed(StoreError),
    /// The connection was lost. With `pending`, `COMMIT` had been sent for the transaction
    /// with that token, whose body had returned the value.
    Lost {
        error: StoreError,
        pending: Option<(i64, T)>,
    },
    /// The server gave up on the transaction (a deadlock): run it again.
    Again,
}

/// The statements of one store step, on a live connection (inside a transaction for writes).
pub(crate) struct Sql<'a> {
    live: &'a mut Live,
    shown: &'a str,
    /// The database's clock when the step started (ms since the epoch).
    pub(crate) now_ms: i64,
    /// Set when a statement failed because the connection was lost: the step is retried,
    /// whatever the body made of the error.
    lost: bool,
}

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

impl Sql<'_> {
    fn statement(&mut self, sql: &'static str) -> Result<Statement, StoreError> {
        if let Some(s) = self.live.statements.get(sql) {
            return Ok(s.clone());
        }
        let prepared = self.live.client.prepare(sql);
        let statement = self.check(prepared)?;
        self.live.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    fn check<T>(&mut self, result: Result<T, postgres::Error>) -> Result<T, StoreError> {
        result.map_err(|e| {
            self.lost |= is_connection_loss(&e);
            database_error(self.shown, "", e)
        })
    }

    /// Runs a statement; returns how many rows it changed.
    pub(crate) fn execute(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<u64, StoreError> {
        let statement = self.statement(sql)?;
        let result = self.live.client.execute(&statement, params);
        self.check(result)
    }

    /// Runs a query; returns its rows.
    pub(crate) fn query(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<Vec<Row>, StoreError> {
        let statement = self.statement(sql)?;
        let result = self.live.client.query(&statement, params);
        self.check(result)
    }

    /// Runs a query that returns at most one row.
    pub(crate) fn query_opt(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<Option<Row>, StoreError> {
        let statement = self.statement(sql)?;
        let result = self.live.client.query_opt(&statement, params);
        self.check(result)
    }

    /// Runs a query that returns exactly one row.
    pub(crate) fn query_one(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<Row, StoreError> {
        let statement = self.statement(sql)?;
        let result = self.live.client.query_one(&statement, params);
        self.check(result)
    }

    /// Runs SQL text of one or more statements without parameters (the schema's migrations).
    pub(crate) fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        let result = self.live.client.batch_execute(sql);
        self.check(result)
    }
}

impl Session {
    /// Connects to the database at `url` (no retry: a store that cannot be reached when it is
    /// opened is an error at once, saying why).
    pub(crate) fn connect(url: &str, reconnect_for: Duration) -> Result<Session, StoreError> {
        let shown = crate::redact(url);
        let mut config: postgres::Config = url.parse().map_err(|e| StoreError::BadLocation {
            given: shown.clone(),
            message: format!("not a PostgreSQL URL: {}", chain(&e)),
        })?;
        with_defaults(&mut config, url, std::env::var("PGPASSWORD").ok());
        let mut session = Session {
            config,
            shown,
            reconnect_for,
            live: None,
            lost_backend: None,
            connections: 0,
            setup_lost: 0,
            writes: 0,
            tokens: std::hash::RandomState::new(),
            #[cfg(test)]
            faults: Default::default(),
        };
        // A connection lost while it was being set up (its server process terminated, the
        // server shutting down) is retried like a lost one; a server that cannot be reached or
        // refuses the login is an error at once.
        let since = Instant::now();
        let mut pause = BACKOFF.0;
        let live = loop {
            let reached = session.connections;
            match session.open_connection() {
                Ok(live) => break live,
                Err(e)
                    if session.setup_lost > reached
                        && is_transient(&e)
                        && since.elapsed() < session.reconnect_for =>
                {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(BACKOFF.1);
                }
                Err(e) => return Err(e),
            }
        };
        session.live = Some(live);
        Ok(session)
    }

    /// The URL without its password.
    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }

    fn open_connection(&mut self) -> Result<Live, StoreError> {
        let connected = self.config.connect(NoTls);
        // A server that answered but ended the login (shutting down, starting up, the process
        // terminated) was reached: worth retrying.
        if let Err(e) = &connected
            && e.as_db_error()
                .is_some_and(|db| db.code().code().starts_with("57P"))
        {
            self.setup_lost = self.connections + 1;
        }
        let mut client =
            connected.map_err(|e| database_error(&self.shown, "cannot connect: ", e))?;
        // An abandoned transaction (a worker stopped with SIGSTOP inside one) must not hold its
        // row locks for ever: the server ends such a session, and the worker reconnects.
        let setup = client.simple_query(
            "SET idle_in_transaction_session_timeout = '60s';
             SELECT pid::text, backend_start::text FROM pg_stat_activity
             WHERE pid = pg_backend_pid()",
        );
        if setup.as_ref().is_err_and(is_connection_loss) {
            self.setup_lost = self.connections + 1;
        }
        let messages =
            setup.map_err(|e| database_error(&self.shown, "cannot set up the session: ", e))?;
        let backend = match first_row(&messages).as_deref() {
            Some([pid, started]) => Backend {
                pid: pid.parse().unwrap_or(0),
                started: (*started).to_owned(),
            },
            _ => return Err(unexpected(&self.shown, "its server process")),
        };
        self.connections += 1;
        Ok(Live {
            client,
            statements: HashMap::new(),
            backend,
        })
    }

    /// A live connection, reconnecting first if the last one was lost (`lost_since` says
    /// when): retried with backoff while the server is unreachable or restarting, until
    /// `reconnect_for` has passed.
    fn live(&mut self, lost_since: Option<Instant>) -> Result<&mut Live, StoreError> {
        if self.live.is_none() {
            let since = lost_since.unwrap_or_else(Instant::now);
            let mut pause = BACKOFF.0;
            let live = loop {
                match self.open_connection() {
                    Ok(live) => break live,
                    Err(e) if is_transient(&e) && since.elapsed() < self.reconnect_for => {
                        std::thread::sleep(pause);
                        pause = (pause * 2).min(BACKOFF.1);
                    }
                    Err(e) => return Err(self.gave_up(e, since)),
                }
            };
            if lost_since.is_some() {
                tracing::info!(
                    "job store {}: reconnected after {} ms",
                    self.shown,
                    since.elapsed().as_millis()
                );
            }
            self.live = Some(live);
        }
        Ok(self.live.as_mut().expect("connected just above"))
    }

    /// The error for a connection that could not be re-established.
    fn gave_up(&self, error: StoreError, since: Instant) -> StoreError {
        match error {
            StoreError::Database {
                store,
                message,
                source,
            } if since.elapsed() >= self.reconnect_for => StoreError::Database {
                store,
                message: format!(
                    "lost the connection and could not reconnect within {} s: {message}",
                    self.reconnect_for.as_secs_f32()
                ),
                source,
            },
            other => other,
        }
    }

    /// Notes a lost connection (dropping it) and says when the losses began.
    fn lost(&mut self, error: &StoreError, lost_since: &mut Option<Instant>) -> Instant {
        if let Some(live) = self.live.take() {
            self.lost_backend = Some(live.backend);
        }
        let since = *lost_since.get_or_insert_with(Instant::now);
        if since.elapsed() < self.reconnect_for {
            tracing::warn!("{error}; reconnecting");
        }
        since
    }

    /// Runs `body` in one write transaction and commits it; see the module documentation for
    /// what happens when the connection is lost. `body` may run more than once, so it must
    /// compute its result from what it reads, nothing else.
    pub(crate) fn write<T>(
        &mut self,
        mut body: impl FnMut(&mut Sql<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut lost_since = None;
        loop {
            match self.try_write(&mut body, lost_since) {
                Try::Done(value) => return Ok(value),
                Try::Failed(error) => return Err(error),
                Try::Again => {}
                Try::Lost { error, pending } => {
                    let since = self.lost(&error, &mut lost_since);
                    if let Some((token, value)) = pending
                        && self.committed(token, since, &error)?
                    {
                        self.writes += 1;
                        return Ok(value);
                    }
                    if since.elapsed() >= self.reconnect_for {
                        return Err(self.gave_up(error, since));
                    }
                }
            }
        }
    }

    fn try_write<T>(
        &mut self,
        body: &mut impl FnMut(&mut Sql<'_>) -> Result<T, StoreError>,
        lost_since: Option<Instant>,
    ) -> Try<T> {
        let shown = self.shown.clone();
        let live = match self.live(lost_since) {
            Ok(live) => live,
            Err(error) => return Try::Failed(error),
        };
        let begin = live
            .client
            .simple_query(concat!("BEGIN; SELECT ", now_sql!(), "::text"));
        let now_ms = match begin {
            Ok(messages) => match first_row(&messages).as_deref().map(|r| r[0].parse()) {
                Some(Ok(now_ms)) => now_ms,
                _ => return Try::Failed(unexpected(&shown, "the time")),
            },
            Err(e) => return classify(&shown, e, None),
        };
        let mut sql = Sql {
            live,
            shown: &shown,
            now_ms,
            lost: false,
        };
        let result = body(&mut sql);
        let lost = sql.lost;
        let live = sql.live;
        let value = match result {
            Ok(value) => value,
            Err(error) if lost => {
                return Try::Lost {
                    error,
                    pending: None,
                };
            }
            Err(error) => {
                let rollback = live.client.batch_execute("ROLLBACK");
                if let Err(e) = rollback
                    && is_connection_loss(&e)
                {
                    // Rolled back by the server with the connection; the error stands.
                    self.live = None;
                }
                // A deadlock aborted the transaction: it is safe to run again.
                return match &error {
                    StoreError::Database { source, .. }
                        if source
                            .downcast_ref::<postgres::Error>()
                            .and_then(|e| e.code())
                            == Some(&postgres::error::SqlState::T_R_DEADLOCK_DETECTED) =>
                    {
                        Try::Again
                    }
                    _ => Try::Failed(error),
                };
            }
        };
        let token = self
            .tokens
            .hash_one((self.connections, self.writes, now_ms)) as i64;
        // The token goes in with COMMIT, in one round trip; now and then, old ones go out.
        let mut commit =
            format!("INSERT INTO write_log (token, at_ms) VALUES ({token}, {now_ms}); COMMIT");
        if self.writes % CLEAN_EVERY == CLEAN_EVERY - 1 {
            commit = format!(
                "DELETE FROM write_log WHERE at_ms < {}; {commit}",
                now_ms - WRITE_LOG_KEEP_MS
            );
        }
        #[cfg(test)]
        if let Some(fault) = self.faults.pop_front() {
            return self.inject(fault, &commit, token, value);
        }
        let live = self.live.as_mut().expect("the transaction's connection");
        match live.client.batch_execute(&commit) {
            Ok(()) => {
                self.writes += 1;
                Try::Done(value)
            }
            Err(e) => classify(&shown, e, Some((token, value))),
        }
    }

    #[cfg(test)]
    fn inject<T>(&mut self, fault: Fault, commit: &str, token: i64, value: T) -> Try<T> {
        let live = self.live.as_mut().expect("the transaction's connection");
        if fault == Fault::LoseCommitReply {
            live.client
                .batch_execute(commit)
                .expect("commit before losing the reply");
        }
        let killed = live
            .client
            .batch_execute("SELECT pg_terminate_backend(pg_backend_pid())")
            .expect_err("a terminated backend answers with an error");
        assert!(is_connection_loss(&killed), "{killed:?}");
        match fault {
            // COMMIT never reaches a server process that is gone: the client sees a lost
            // connection, as when it dies under a COMMIT.
            Fault::KillBeforeCommit => match live.client.batch_execute(commit) {
                Ok(()) => panic!("COMMIT on a terminated backend succeeded"),
                Err(e) => classify(&self.shown, e, Some((token, value))),
            },
            Fault::LoseCommitReply => Try::Lost {
                error: database_error(&self.shown, "", killed),
                pending: Some((token, value)),
            },
        }
    }

    /// Whether the transaction with `token`, whose `COMMIT` reply was lost, committed: once
    /// the lost connection's server process is gone (so the transaction is over, one way or
    /// the other), its token is in `write_log` or not.
    fn committed(
        &mut self,
        token: i64,
        since: Instant,
        lost: &StoreError,
    ) -> Result<bool, StoreError> {
        let old = self.lost_backend.clone();
        let mut terminated = false;
        let asked = Instant::now();
        loop {
            let shown = self.shown.clone();
            let reconnect_for = self.reconnect_for;
            let live = self.live(Some(since))?;
            // Two statements: the token is read in a snapshot taken after the old process was
            // seen gone.
            let running = match &old {
                Some(old) => live
                    .client
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                                        WHERE pid = $1 AND backend_start::text = $2)",
                        &[&old.pid, &old.started],
                    )
                    .map(|row| row.get::<_, bool>(0)),
                None => Ok(false),
            };
            let answer = match running {
                Ok(false) => live
                    .client
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM write_log WHERE token = $1)",
                        &[&token],
                    )
                    .map(|row| Some(row.get::<_, bool>(0))),
                Ok(true) => Ok(None),
                Err(e) => Err(e),
            };
            match answer {
                Ok(Some(committed)) => return Ok(committed),
                Ok(None) => {
                    if let Some(old) = old.as_ref().filter(|_| !terminated)
                        && asked.elapsed() >= TERMINATE_AFTER
                    {
                        terminated = true;
                        let _ = live.client.execute(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                             WHERE pid = $1 AND backend_start::text = $2",
                            &[&old.pid, &old.started],
                        );
                    }
                    if since.elapsed() >= reconnect_for {
                        return Err(StoreError::Database {
                            store: shown,
                            message: format!(
                                "the connection was lost during COMMIT, and its server process is still running after {} s: the outcome is unknown",
                                reconnect_for.as_secs_f32()
                            ),
                            source: lost.to_string().into(),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) if is_connection_loss(&e) => {
                    let error = database_error(&shown, "", e);
                    self.lost(&error, &mut Some(since));
                    if since.elapsed() >= reconnect_for {
                        return Err(self.gave_up(error, since));
                    }
                }
                Err(e) => {
                    return Err(database_error(
                        &shown,
                        "cannot tell whether a COMMIT whose reply was lost landed: ",
                        e,
                    ));
                }
            }
        }
    }

    /// Runs `body` (reads only) and retries it on a new connection when the connection is
    /// lost. With `snapshot`, its statements see one snapshot (a read-only REPEATABLE READ
    /// transaction); without, each sees the latest commits.
    pub(crate) fn read<T>(
        &mut self,
        snapshot: bool,
        mut body: impl FnMut(&mut Sql<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut lost_since = None;
        loop {
            let shown = self.shown.clone();
            let live = self.live(lost_since)?;
            let mut sql = Sql {
                live,
                shown: &shown,
                now_ms: 0,
                lost: false,
            };
            let result = if snapshot {
                sql.batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .and_then(|()| body(&mut sql))
                    .and_then(|value| sql.batch("COMMIT").map(|()| value))
            } else {
                body(&mut sql)
            };
            if snapshot && result.is_err() && !sql.lost {
                let _ = sql.live.client.batch_execute("ROLLBACK");
            }
            match result {
                Ok(value) => return Ok(value),
                Err(error) if sql.lost => {
                    let since = self.lost(&error, &mut lost_since);
                    if since.elapsed() >= self.reconnect_for {
                        return Err(self.gave_up(error, since));
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// Connection settings the URL did not choose: a connect timeout, TCP keepalives and a user
/// timeout (so a silent network partition ends the connection instead of hanging a query),
/// the password from `PGPASSWORD` (`env_password`; it keeps the password off command lines),
/// and the application name.
pub(crate) fn with_defaults(
    config: &mut postgres::Config,
    url: &str,
    env_password: Option<String>,
) {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let given = |key: &str| query.split('&').any(|kv| kv.split('=').next() == Some(key));
    if !given("connect_timeout") {
        config.connect_timeout(Duration::from_secs(10));
    }
    if !given("keepalives_idle") {
        config.keepalives_idle(Duration::from_secs(15));
    }
    if !given("keepalives_interval") {
        config.keepalives_interval(Duration::from_secs(5));
    }
    if !given("keepalives_retries") {
        config.keepalives_retries(3);
    }
    if !given("tcp_user_timeout") {
        config.tcp_user_timeout(Duration::from_secs(30));
    }
    if !given("application_name") {
        config.application_name("mr-host");
    }
    if config.get_password().is_none()
        && let Some(password) = env_password
    {
        config.password(password);
    }
}

/// The first data row of a simple query's answer, as text.
fn first_row(messages: &[SimpleQueryMessage]) -> Option<Vec<&str>> {
    messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => Some((0..row.len()).filter_map(|i| row.get(i)).collect()),
        _ => None,
    })
}

fn unexpected(shown: &str, what: &str) -> StoreError {
    StoreError::Database {
        store: shown.to_owned(),
        message: format!("the server did not answer with {what}"),
        source: what.into(),
    }
}

/// The outcome of a failed statement or `COMMIT` of a write transaction.
fn classify<T>(shown: &str, error: postgres::Error, pending: Option<(i64, T)>) -> Try<T> {
    if is_connection_loss(&error) {
        Try::Lost {
            error: database_error(shown, "", error),
            pending,
        }
    } else if error.code() == Some(&postgres::error::SqlState::T_R_DEADLOCK_DETECTED) {
        Try::Again
    } else {
        Try::Failed(database_error(shown, "", error))
    }
}

/// Whether `error` means the connection is gone (closed, reset, the backend terminated, the
/// server shutting down or restarting), so the step may be retried on a new one.
pub(crate) fn is_connection_loss(error: &postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    if let Some(db) = error.as_db_error() {
        let code = db.code().code();
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03");
    }
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        if e.is::<std::io::Error>() {
            return true;
        }
        source = e.source();
    }
    // A connect or read timeout.
    error.to_string().starts_with("timeout")
}

/// Whether a failure to connect may pass (the server is down, restarting or unreachable), as
/// opposed to one that will not (wrong password, no such database or role).
fn is_transient(error: &StoreError) -> bool {
    let StoreError::Database { source, .. } = error else {
        return false;
    };
    match source.downcast_ref::<postgres::Error>() {
        Some(e) => match e.as_db_error() {
            Some(db) => {
                let code = db.code().code();
                code.starts_with("08") || code.starts_with("57P") || code == "53300"
            }
            None => true,
        },
        None => false,
    }
}

/// A database failure as a [`StoreError`]: the store, then what PostgreSQL said.
pub(crate) fn database_error(shown: &str, context: &str, error: postgres::Error) -> StoreError {
    StoreError::Database {
        store: shown.to_owned(),
        message: format!("{context}{}", describe(&error)),
        source: Box::new(error),
    }
}

/// What PostgreSQL (or the connection) said, on one line: the server's own message with its
/// detail and hint, or the chain of causes.
fn describe(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut text = db.message().to_owned();
            if let Some(detail) = db.detail() {
                text = format!("{text} ({detail})");
            }
            if let Some(hint) = db.hint() {
                text = format!("{text}; hint: {hint}");
            }
            text
        }
        None => chain(error),
    }
}

/// An error and its causes, joined with ": ", each said once.
fn chain(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}
