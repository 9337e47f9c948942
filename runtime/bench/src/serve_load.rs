//! `mr-bench serve-load`: `mr-host serve` under load. A word count over `--size` bytes runs
//! on the server's in-process workers, once with nobody watching and once while `--clients`
//! threads poll `GET /api/jobs/{id}` (each every `--poll-ms`) and `--subscribers` threads
//! follow `GET /api/jobs/{id}/events` (SSE); alternately, `--repeat` times each. It reports the
//! polls' latency (p50, p99, max), every non-200 answer, whether any answer mentioned a busy
//! database (SQLITE_BUSY, "database is locked"), the events the subscribers received, and the
//! job's wall time with and without the clients (first task start to completion, by the
//! store's clock, so the server's 0.5 s idle poll for new jobs is not counted).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

const TOKEN: &str = "mr-bench-serve-load-token";

/// What `serve-load` is asked to do.
#[derive(clap::Args)]
pub struct ServeLoadArgs {
    /// Input size of the word count.
    #[arg(long, default_value = "1G", value_parser = mr_corpus::parse_size)]
    size: u64,
    /// Worker threads of the server.
    #[arg(long, default_value_t = 2)]
    workers: u32,
    /// Clients polling the job's status.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Milliseconds between one client's polls.
    #[arg(long, default_value_t = 250)]
    poll_ms: u64,
    /// SSE subscribers following the job's events.
    #[arg(long, default_value_t = 10)]
    subscribers: usize,
    /// Runs with and without clients (alternating); medians are reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Where the input, stores, outputs and serve-load.md go.
    #[arg(long, default_value = "target/bench-data")]
    data: PathBuf,
    /// The mr-host binary [default: build it].
    #[arg(long)]
    pub mr_host: Option<PathBuf>,
}

/// One run's numbers.
struct Run {
    wall: Duration,
    latencies: Vec<Duration>,
    errors: Vec<String>,
    busy: u64,
    events: u64,
}

pub fn run(args: ServeLoadArgs, mr_host: PathBuf, wordcount: PathBuf) -> Result<bool> {
    if args.repeat == 0 || args.workers == 0 {
        bail!("--repeat and --workers must be at least 1");
    }
    std::fs::create_dir_all(&args.data)?;
    let data = args.data.canonicalize()?;
    let input = crate::data::wordcount_input(&data.join("inputs"), args.size)?;
    let work = data.join("serve-load");
    let mut quiet = Vec::new();
    let mut loaded = Vec::new();
    for round in 0..args.repeat {
        // Alternate which goes first, so a drift of the machine's speed favours neither.
        let order = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for with_clients in order {
            let dir = work.join(format!(
                "run-{round}-{}",
                if with_clients { "loaded" } else { "quiet" }
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir)?;
            let run = one_run(&args, &mr_host, &wordcount, &input, &dir, with_clients)?;
            eprintln!(
                "mr-bench serve-load: round {round}, {}: job {:.2} s{}",
                if with_clients {
                    "with clients"
                } else {
                    "quiet"
                },
                run.wall.as_secs_f64(),
                if with_clients {
                    format!(
                        ", {} polls, p99 {:.1} ms, {} events to subscribers",
                        run.latencies.len(),
                        percentile(&run.latencies, 0.99).as_secs_f64() * 1e3,
                        run.events
                    )
                } else {
                    String::new()
                }
            );
            let _ = std::fs::remove_dir_all(&dir);
            if with_clients {
                loaded.push(run);
            } else {
                quiet.push(run);
            }
        }
    }
    let median = |runs: &[Run]| {
        let mut w: Vec<Duration> = runs.iter().map(|r| r.wall).collect();
        w.sort();
        w[w.len() / 2]
    };
    let mut latencies: Vec<Duration> = loaded.iter().flat_map(|r| r.latencies.clone()).collect();
    latencies.sort();
    let errors: Vec<String> = loaded.iter().flat_map(|r| r.errors.clone()).collect();
    let busy: u64 = loaded.iter().map(|r| r.busy).sum();
    let events: u64 = loaded.iter().map(|r| r.events).sum();
    let (q, l) = (median(&quiet), median(&loaded));
    let slowdown = l.as_secs_f64() / q.as_secs_f64() - 1.0;
    let p99 = percentile(&latencies, 0.99);
    let report = format!(
        "## serve-load\n\n\
         Word count over {} MiB on `mr-host serve --workers {}`; {} clients polling \
         `GET /api/jobs/{{id}}` every {} ms and {} SSE subscribers; {} runs each way, alternating.\n\n\
         | | value |\n|---|---:|\n\
         | job wall, no clients (median) | {:.2} s |\n\
         | job wall, with clients (median) | {:.2} s |\n\
         | slowdown | {:+.1}% (target within 5%) |\n\
         | polls | {} |\n\
         | poll latency p50 | {:.2} ms |\n\
         | poll latency p99 | {:.2} ms (target < 50 ms) |\n\
         | poll latency max | {:.2} ms |\n\
         | non-200 answers | {} |\n\
         | answers mentioning a busy database | {} |\n\
         | events received by the subscribers | {} |\n\n\
         Quiet runs: {}. Loaded runs: {}.\n",
        args.size >> 20,
        args.workers,
        args.clients,
        args.poll_ms,
        args.subscribers,
        args.repeat,
        q.as_secs_f64(),
        l.as_secs_f64(),
        slowdown * 100.0,
        latencies.len(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        errors.len(),
        busy,
        events,
        seconds(&quiet),
        seconds(&loaded),
    );
    println!("{report}");
    for e in errors.iter().take(5) {
        println!("non-200 answer: {e}");
    }
    std::fs::write(data.join("serve-load.md"), &report)?;
    Ok(errors.is_empty() && busy == 0)
}

fn seconds(runs: &[Run]) -> String {
    runs.iter()
        .map(|r| format!("{:.2} s", r.wall.as_secs_f64()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let mut v = sorted.to_vec();
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// A server process, killed when dropped.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn one_run(
    args: &ServeLoadArgs,
    mr_host: &Path,
    wordcount: &Path,
    input: &Path,
    dir: &Path,
    with_clients: bool,
) -> Result<Run> {
    let db = dir.join("jobs.db");
    let mut child = Command::new(mr_host)
        .args(["serve", "--db"])
        .arg(&db)
        .args(["--listen", "127.0.0.1:0", "--token", TOKEN, "--workers"])
        .arg(args.workers.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start mr-host serve")?;
    let stderr = child.stderr.take().expect("piped");
    let server = Serve(child);
    let mut lines = BufReader::new(stderr).lines();
    let base = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(url) = line.strip_prefix("serving ") {
                    break url.to_owned();
                }
            }
            _ => bail!("mr-host serve did not start"),
        }
    };
    // Keep draining the server's stderr so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let out = Command::new(mr_host)
        .arg("submit")
        .arg(wordcount)
        .arg("-i")
        .arg(input)
        .arg("-o")
        .arg(dir.join("out"))
        .arg("--db")
        .arg(&db)
        .args(["--reducers", &args.workers.to_string()])
        .output()?;
    if !out.status.success() {
        bail!(
            "mr-host submit failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let id: i64 = String::from_utf8_lossy(&out.stdout).trim().parse()?;
    let status_url = format!("{base}/api/jobs/{id}?events=0");
    let stop = Arc::new(AtomicBool::new(false));
    let events = Arc::new(AtomicU64::new(0));
    let mut pollers = Vec::new();
    let mut subscribers = Vec::new();
    if with_clients {
        for _ in 0..args.clients {
            let (url, stop, every) = (
                status_url.clone(),
                stop.clone(),
                Duration::from_millis(args.poll_ms),
            );
            pollers.push(std::thread::spawn(move || poll(&url, &stop, every)));
        }
        for _ in 0..args.subscribers {
            let (base, stop, events) = (base.clone(), stop.clone(), events.clone());
            subscribers.push(std::thread::spawn(move || {
                subscribe(&base, id, &stop, &events)
            }));
        }
    }
    // The harness's own check: twice a second, in both kinds of run.
    let agent = agent();
    let started = Instant::now();
    let doc = loop {
        let doc: serde_json::Value = agent
            .get(&format!("{base}/api/jobs/{id}?events=100000"))
            .header("authorization", format!("Bearer {TOKEN}"))
            .call()?
            .body_mut()
            .read_json()?;
        match doc["phase"].as_str() {
            Some("done") => break doc,
            Some("failed" | "cancelled") => bail!("the job did not finish: {doc}"),
            _ => {}
        }
        if started.elapsed() > Duration::from_secs(3600) {
            bail!("the job took over an hour");
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    stop.store(true, Ordering::Relaxed);
    let mut run = Run {
        wall: job_wall(&doc)?,
        latencies: Vec::new(),
        errors: Vec::new(),
        busy: 0,
        events: 0,
    };
    for p in pollers {
        let (latencies, errors, busy) = p.join().expect("poller");
        run.latencies.extend(latencies);
        run.errors.extend(errors);
        run.busy += busy;
    }
    // Subscribers end at their next event or keep-alive; the server's exit ends them all.
    drop(server);
    for s in subscribers {
        let _ = s.join();
    }
    run.events = events.load(Ordering::Relaxed);
    Ok(run)
}

/// First task start to completion, by the store's clock.
fn job_wall(doc: &serde_json::Value) -> Result<Duration> {
    let events = doc["recent_events"].as_array().context("no events")?;
    let at = |kind: &str| {
        events
            .iter()
            .find(|e| e["event"] == kind)
            .and_then(|e| e["at_ms"].as_i64())
    };
    match (at("task-started"), at("job-completed")) {
        (Some(a), Some(b)) => Ok(Duration::from_millis((b - a).max(0) as u64)),
        _ => bail!("the job's events lack a start or an end"),
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// One polling client: latencies, non-200 answers, answers that mention a busy database.
fn poll(url: &str, stop: &AtomicBool, every: Duration) -> (Vec<Duration>, Vec<String>, u64) {
    let agent = agent();
    let (mut latencies, mut errors, mut busy) = (Vec::new(), Vec::new(), 0);
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        match agent
            .get(url)
            .header("authorization", format!("Bearer {TOKEN}"))
            .call()
        {
            Ok(mut r) => {
                let status = r.status().as_u16();
                let body = r.body_mut().read_to_string().unwrap_or_default();
                latencies.push(started.elapsed());
                if body.contains("SQLITE_BUSY") || body.contains("database is locked") {
                    busy += 1;
                }
                if status != 200 {
                    errors.push(format!("{status}: {body}"));
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
        std::thread::sleep(every.saturating_sub(started.elapsed()));
    }
    (latencies, errors, busy)
}

/// One SSE subscriber (HTTP/1.0 over a socket, read line by line): counts `data:` lines.
fn subscribe(base: &str, id: i64, stop: &AtomicBool, events: &AtomicU64) {
    let Some(host) = base.strip_prefix("http://") else {
        return;
    };
    let Ok(mut stream) = std::net::TcpStream::connect(host) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let request = format!(
        "GET /api/jobs/{id}/events HTTP/1.0\r\nhost: {host}\r\nauthorization: Bearer {TOKEN}\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return;
    }
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while !stop.load(Ordering::Relaxed) {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) if line.starts_with("data: ") => {
                events.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}
