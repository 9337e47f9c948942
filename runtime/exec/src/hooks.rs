//! Completion hooks: what the host runs when a job ends (done, failed or cancelled). Guests
//! have no network, so the host does it: `--notify URL` POSTs the job's [`Summary`] as JSON,
//! `--on-done CMD` runs `sh -c CMD` with the summary on stdin.
//!
//! **Delivered once, whoever watches.** Every process that sees a job end calls
//! [`deliver_hooks`]: the worker that committed its last task or failed it, `mr-host cancel`,
//! and `mr-host serve` as a watcher. Each hook is claimed in the store like a task lease
//! (`JobStore::claim_hook`), so only one of them delivers it; the outcome is recorded
//! (`finish_hook`, with a `hook-delivered` or `hook-failed` event). A failed delivery (a
//! connection error, a non-2xx answer, a non-zero exit, a timeout) is retried with doubling
//! backoff up to [`HookPolicy::attempts`] times, then given up; a deliverer that dies holding a
//! claim loses it when the claim expires, and the next watcher takes over.
//!
//! A receiver may still see a POST twice if an answer is lost after it was handled: every
//! POST carries `Idempotency-Key: mr-<fingerprint>-notify` so it can tell.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mr_store::{HookOutcome, JobStore, StoreError};

use crate::spec::JobSpec;
use crate::{ExecError, Summary};

/// The name of the `--notify` hook in the store.
pub const NOTIFY: &str = "notify";
/// The name of the `--on-done` hook in the store.
pub const ON_DONE: &str = "on-done";

/// How hooks are delivered.
#[derive(Debug, Clone)]
pub struct HookPolicy {
    /// Attempts before a hook is given up.
    pub attempts: u32,
    /// Backoff after the first failure; it doubles after each, up to `max_backoff`.
    pub first_backoff: Duration,
    /// Longest backoff.
    pub max_backoff: Duration,
    /// Longest one attempt may take (HTTP request, or the command's run).
    pub timeout: Duration,
    /// Wait out the backoffs and retry here; without it, a failed attempt is recorded with its
    /// backoff and left to the next call (a watcher that calls again).
    pub wait: bool,
}

impl Default for HookPolicy {
    fn default() -> Self {
        HookPolicy {
            attempts: 5,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            timeout: Duration::from_secs(10),
            wait: true,
        }
    }
}

impl HookPolicy {
    fn backoff(&self, attempt: u32) -> Duration {
        self.first_backoff
            .saturating_mul(1 << attempt.saturating_sub(1).min(16))
            .min(self.max_backoff)
    }
}

/// Checks a `--notify` URL.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Ok(()),
        _ => Err(format!(
            "--notify {url:?}: give an http:// or https:// URL with a host"
        )),
    }
}

/// Delivers the completion hooks of job `id` if it has ended and has hooks, each at most once
/// over every process that calls this (see the module documentation). Returns without doing
/// anything for a job that is still running, has no hooks, was deleted, or whose hooks
/// another process holds or has delivered. Errors are the store's only: a failed delivery is
/// recorded in the store and retried per `policy`.
pub fn deliver_hooks(
    store: &mut dyn JobStore,
    id: i64,
    policy: &HookPolicy,
) -> Result<(), ExecError> {
    let row = match store.job(id) {
        Ok(row) => row,
        Err(StoreError::NoSuchJob { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if !row.phase.is_over() {
        return Ok(());
    }
    let spec = JobSpec::parse(&row.spec, id)?;
    if spec.hooks.is_empty() {
        return Ok(());
    }
    let summary = crate::summary_of(&*store, &row, &spec)?;
    let mut body = serde_json::to_vec_pretty(&summary).expect("a summary serialises");
    body.push(b'\n');
    let owner = crate::owner::owner(u32::MAX);
    let claim_ms = (policy.timeout + Duration::from_secs(5)).as_millis() as i64;
    let hooks = [
        (NOTIFY, spec.hooks.notify.as_deref()),
        (ON_DONE, spec.hooks.on_done.as_deref()),
    ];
    for (name, target) in hooks {
        let Some(target) = target else { continue };
        while let Some(attempt) = store.claim_hook(id, name, &owner, claim_ms)? {
            let result = if name == NOTIFY {
                post(target, &body, &spec.fingerprint, policy.timeout)
            } else {
                run_command(target, &body, &summary, policy.timeout)
            };
            let (outcome, detail) = match result {
                Ok(detail) => (
                    HookOutcome::Delivered,
                    format!("attempt {attempt}: {detail}"),
                ),
                Err(why) if attempt >= policy.attempts => {
                    tracing::error!(job = id, "{name} hook of job {id} failed for good: {why}");
                    (
                        HookOutcome::GaveUp,
                        format!("attempt {attempt}: {why}; given up after {attempt} attempts"),
                    )
                }
                Err(why) => {
                    let after = policy.backoff(attempt);
                    tracing::warn!(
                        job = id,
                        "{name} hook of job {id} failed, will retry: {why}"
                    );
                    (
                        HookOutcome::Retry {
                            after_ms: after.as_millis() as i64,
                        },
                        format!("attempt {attempt}: {why}; retrying in {after:?}"),
                    )
                }
            };
            store.finish_hook(id, name, attempt, outcome, &detail)?;
            match outcome {
                HookOutcome::Retry { after_ms } if policy.wait => {
                    // The store's clock decides when the retry may be claimed; a little
                    // margin so the claim below is not a few ms early.
                    std::thread::sleep(Duration::from_millis(after_ms as u64 + 20));
                }
                _ => break,
            }
        }
    }
    Ok(())
}

/// POSTs the summary; `Ok` with the status line for a 2xx answer.
fn post(url: &str, body: &[u8], fingerprint: &str, timeout: Duration) -> Result<String, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .build()
        .into();
    let response = agent
        .post(url)
        .header("content-type", "application/json")
        .header("user-agent", concat!("mr-host/", env!("CARGO_PKG_VERSION")))
        .header("idempotency-key", format!("mr-{fingerprint}-{NOTIFY}"))
        .send(body)
        .map_err(|e| format!("POST {url}: {e}"))?;
    Ok(format!("POST {url}: HTTP {}", response.status()))
}

/// Runs `sh -c command` with the summary on stdin; `Ok` when it exits with status 0 within the
/// timeout. The job's id, name and phase are also in `MR_JOB_ID`, `MR_JOB_NAME`, `MR_JOB_PHASE`.
fn run_command(
    command: &str,
    body: &[u8],
    summary: &Summary,
    timeout: Duration,
) -> Result<String, String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("MR_JOB_ID", summary.id.to_string())
        .env("MR_JOB_NAME", &summary.job)
        .env("MR_JOB_PHASE", summary.phase.as_str())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start `sh -c {command}`: {e}"))?;
    // Written from threads: a command that reads no stdin (or writes much stderr) must not
    // block the other pipe.
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = body.to_vec();
    let writer = std::thread::spawn(move || {
        // A command that exits without reading its stdin closes the pipe: not our failure.
        let _ = stdin.write_all(&input);
    });
    let mut stderr = child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = writer.join();
                return Err(format!(
                    "`{command}` did not finish within {timeout:?} and was killed"
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("waiting for `{command}`: {e}")),
        }
    };
    let _ = writer.join();
    let stderr = reader.join().unwrap_or_default();
    if status.success() {
        Ok(format!("`{command}` exited with status 0"))
    } else {
        let text = String::from_utf8_lossy(&stderr);
        let tail: String = text
            .trim_end()
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        Err(format!(
            "`{command}` failed ({status}){}",
            if tail.is_empty() {
                String::new()
            } else {
                format!(": {tail}")
            }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    use mr_store::{HookState, NewJob, StoreLocation};

    /// A store holding one cancelled job (ended, so its hooks are due) with these hooks.
    fn ended_job(dir: &std::path::Path, hooks: serde_json::Value) -> (StoreLocation, i64) {
        let db = StoreLocation::file(&dir.join("jobs.db"));
        let spec = serde_json::json!({
            "name": "test-job", "component": "/nowhere.wasm", "component_sha256": "00",
            "params": {}, "inputs": [], "files": [], "modified_ns": [], "requested_shards": 1,
            "shards": [], "reducers": 1, "combine": false, "output": dir.join("out"),
            "batch_bytes": 1024, "slice": {"bytes": 1024, "records": 10, "seconds": 0},
            "max_record_bytes": 1024, "max_attempts": 1, "fingerprint": "fp", "hooks": hooks,
        });
        let mut store = mr_store::open(&db).unwrap();
        let (id, _) = store
            .create_job(&NewJob {
                name: "test-job",
                fingerprint: "fp",
                output: "out",
                spec: &spec.to_string(),
                map_tasks: 1,
                reduce_tasks: 1,
            })
            .unwrap();
        store.cancel_job(id).unwrap();
        (db, id)
    }

    /// An HTTP receiver on loopback answering each POST with the next status of `answers`
    /// (then 200); returns its URL and the bodies it received.
    fn receiver(answers: Vec<u16>) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = bodies.clone();
        std::thread::spawn(move || {
            let mut answers = answers.into_iter();
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let mut data = Vec::new();
                let mut buf = [0u8; 4096];
                let body = loop {
                    let n = stream.read(&mut buf).unwrap();
                    data.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&data).into_owned();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length: usize = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if data.len() >= end + 4 + length || n == 0 {
                            break text[end + 4..].to_owned();
                        }
                    }
                };
                seen.lock().unwrap().push(body);
                let status = answers.next().unwrap_or(200);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        (url, bodies)
    }

    fn quick() -> HookPolicy {
        HookPolicy {
            attempts: 3,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
            timeout: Duration::from_secs(5),
            wait: true,
        }
    }

    #[test]
    fn two_watchers_deliver_one_post_with_the_summary() {
        let dir = tempfile::tempdir().unwrap();
        let (url, bodies) = receiver(vec![]);
        let (db, id) = ended_job(dir.path(), serde_json::json!({ "notify": url }));
        let watchers: Vec<_> = (0..2)
            .map(|_| {
                let db = db.clone();
                std::thread::spawn(move || {
                    let mut store = mr_store::open(&db).unwrap();
                    deliver_hooks(store.as_mut(), id, &quick()).unwrap();
                })
            })
            .collect();
        for w in watchers {
            w.join().unwrap();
        }
        // A third call, later, finds it delivered.
        deliver_hooks(mr_store::open(&db).unwrap().as_mut(), id, &quick()).unwrap();
        let bodies = bodies.lock().unwrap();
        assert_eq!(bodies.len(), 1, "{bodies:?}");
        let summary: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
        assert_eq!(summary["id"], id);
        assert_eq!(summary["job"], "test-job");
        assert_eq!(summary["phase"], "cancelled");
        let hooks = mr_store::open(&db).unwrap().hooks(id).unwrap();
        assert_eq!(hooks.len(), 1);
        assert_eq!(hooks[0].state, HookState::Delivered);
        assert_eq!(hooks[0].attempts, 1);
    }

    #[test]
    fn a_failing_receiver_is_retried_with_backoff_then_given_up() {
        let dir = tempfile::tempdir().unwrap();
        let (url, bodies) = receiver(vec![500, 503]);
        let (db, id) = ended_job(dir.path(), serde_json::json!({ "notify": url }));
        let started = Instant::now();
        deliver_hooks(mr_store::open(&db).unwrap().as_mut(), id, &quick()).unwrap();
        // 100 ms after the first failure, 200 ms after the second.
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(bodies.lock().unwrap().len(), 3);
        let store = mr_store::open(&db).unwrap();
        let hook = &store.hooks(id).unwrap()[0];
        assert_eq!((hook.state, hook.attempts), (HookState::Delivered, 3));
        let events = store.events(id, 0, 100).unwrap();
        let failed: Vec<_> = events
            .iter()
            .filter(|e| e.event == mr_store::EventKind::HookFailed)
            .collect();
        assert_eq!(failed.len(), 2);
        assert!(
            failed[0].detail.as_deref().unwrap().contains("500"),
            "{failed:?}"
        );

        // Always failing: given up after `attempts`, and never delivered again.
        let dir = tempfile::tempdir().unwrap();
        let (url, bodies) = receiver(vec![500; 10]);
        let (db, id) = ended_job(dir.path(), serde_json::json!({ "notify": url }));
        deliver_hooks(mr_store::open(&db).unwrap().as_mut(), id, &quick()).unwrap();
        deliver_hooks(mr_store::open(&db).unwrap().as_mut(), id, &quick()).unwrap();
        assert_eq!(bodies.lock().unwrap().len(), 3);
        let hook = &mr_store::open(&db).unwrap().hooks(id).unwrap()[0];
        assert_eq!(hook.state, HookState::Failed);
        assert!(
            hook.detail
                .as_deref()
                .unwrap()
                .contains("given up after 3 attempts")
        );
    }

    #[test]
    fn a_watcher_that_does_not_wait_leaves_the_retry_to_the_next_call() {
        let dir = tempfile::tempdir().unwrap();
        let (url, bodies) = receiver(vec![500]);
        let (db, id) = ended_job(dir.path(), serde_json::json!({ "notify": url }));
        let policy = HookPolicy {
            wait: false,
            ..quick()
        };
        let mut store = mr_store::open(&db).unwrap();
        deliver_hooks(store.as_mut(), id, &policy).unwrap();
        assert_eq!(store.hooks(id).unwrap()[0].state, HookState::Pending);
        // Within the backoff nothing is claimed; after it, the retry is delivered.
        deliver_hooks(store.as_mut(), id, &policy).unwrap();
        assert_eq!(bodies.lock().unwrap().len(), 1);
        std::thread::sleep(Duration::from_millis(150));
        deliver_hooks(store.as_mut(), id, &policy).unwrap();
        assert_eq!(bodies.lock().unwrap().len(), 2);
        assert_eq!(store.hooks(id).unwrap()[0].state, HookState::Delivered);
    }

    #[test]
    fn on_done_gets_the_summary_on_stdin_and_a_failing_command_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let got = dir.path().join("got.json");
        let command = format!(
            "cat > '{}'; echo \"$MR_JOB_PHASE\" >> '{}'",
            got.display(),
            got.display()
        );
        let (db, id) = ended_job(dir.path(), serde_json::json!({ "on_done": command }));
        deliver_hooks(mr_store::open(&db).unwrap().as_mut(), id, &quick()).unwrap();
        let text = std::fs::read_to_string(&got).unwrap();
        let (json, phase) = text.trim_end().rsplit_once('\n').unwrap();
        let summary: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(summary["id"], id);
        assert_eq!(phase, "cancelled");
        let hook = &mr_store::open(&db).unwrap().hooks(id).unwrap()[0];
        assert_eq!(
            (hook.name.as_str(), hook.state),
            (ON_DONE, HookState::Delivered)
        );

        let dir = tempfile::tempdir().unwrap();
        let (db, id) = ended_job(
            dir.path(),
            serde_json::json!({ "on_done": "echo 'disk full' >&2; exit 3" }),
        );
        deliver_hooks(mr_store::open(&db).unwrap().as_mut(), id, &quick()).unwrap();
        let hook = &mr_store::open(&db).unwrap().hooks(id).unwrap()[0];
        assert_eq!((hook.state, hook.attempts), (HookState::Failed, 3));
        let detail = hook.detail.as_deref().unwrap();
        assert!(
            detail.contains("disk full") && detail.contains("exit status: 3"),
            "{detail}"
        );
    }
}
