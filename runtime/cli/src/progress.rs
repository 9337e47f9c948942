//! The progress bar (stderr, only on a terminal, only after the first second), a progress line
//! every 10 s when stderr is not a terminal (a log file, CI, a pipe), and the summary.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mr_exec::StatusDocument;
use mr_exec::{Progress, ProgressSink, Summary};

pub struct Bar {
    bar: ProgressBar,
    started: Instant,
    shown: Arc<Mutex<bool>>,
    /// The thread printing progress lines when stderr is not a terminal, and its stop flag.
    lines: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
}

/// Seconds between progress lines when stderr is not a terminal: `MR_PROGRESS_SECONDS`, else 10.
fn line_interval() -> Duration {
    std::env::var("MR_PROGRESS_SECONDS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(Duration::from_secs(10), Duration::from_secs_f64)
}

/// One progress line, from the bar's state: `map 45.2 of 157.7 MB (28%), 12.3 MB/s, 10s`.
fn progress_line(bar: &ProgressBar, started: Instant) -> String {
    let elapsed = started.elapsed().as_secs_f64();
    let (pos, len) = (bar.position(), bar.length().unwrap_or(0));
    let percent = if len == 0 {
        100.0
    } else {
        pos as f64 * 100.0 / len as f64
    };
    if bar.prefix() == "reduce" {
        format!("mr: reduce {pos} of {len} partitions done ({percent:.0}%), {elapsed:.0}s")
    } else {
        format!(
            "mr: map {:.1} of {:.1} MB ({percent:.0}%), {:.1} MB/s, {elapsed:.0}s",
            pos as f64 / 1e6,
            len as f64 / 1e6,
            pos as f64 / 1e6 / elapsed.max(1e-9)
        )
    }
}

impl Bar {
    pub fn new() -> Self {
        // Hidden until a second has passed; indicatif itself stays silent when stderr is not a
        // terminal.
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>7} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix("map");
        let started = Instant::now();
        let lines = (!std::io::stderr().is_terminal()).then(|| {
            let stop = Arc::new(AtomicBool::new(false));
            let (bar, flag) = (bar.clone(), stop.clone());
            let every = line_interval();
            let thread = std::thread::spawn(move || {
                let mut next = every;
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50).min(every));
                    if started.elapsed() >= next {
                        eprintln!("{}", progress_line(&bar, started));
                        next += every;
                    }
                }
            });
            (stop, thread)
        });
        Bar {
            bar,
            started,
            shown: Arc::new(Mutex::new(false)),
            lines,
        }
    }

    pub fn sink(&self) -> ProgressSink {
        let bar = self.bar.clone();
        let started = self.started;
        let shown = self.shown.clone();
        Arc::new(move |p: Progress| {
            {
                let mut shown = shown.lock().expect("bar lock");
                if !*shown && started.elapsed() > Duration::from_secs(1) {
                    *shown = true;
                    bar.set_draw_target(ProgressDrawTarget::stderr());
                }
            }
            match p {
                Progress::Planned {
                    bytes, done_bytes, ..
                } => {
                    bar.set_length(bytes);
                    bar.set_position(done_bytes);
                }
                // Never past the input's size (compressed progress is approximate).
                Progress::Mapped(n) => bar.set_position(
                    bar.position()
                        .saturating_add(n)
                        .min(bar.length().unwrap_or(u64::MAX)),
                ),
                Progress::ReduceStarted { partitions } => {
                    bar.set_prefix("reduce");
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix:>7} [{bar:30}] {pos}/{len} partitions",
                        )
                        .expect("valid template")
                        .progress_chars("=> "),
                    );
                    bar.set_position(0);
                    bar.set_length(u64::from(partitions));
                }
                Progress::PartitionDone => bar.inc(1),
            }
        })
    }

    pub fn finish(self) {
        if let Some((stop, thread)) = self.lines {
            stop.store(true, Ordering::Relaxed);
            let _ = thread.join();
        }
        self.bar.finish_and_clear();
    }
}

pub fn print_summary(s: &Summary) {
    let records = s.counters.get("records-in").copied().unwrap_or(0);
    let wall = s.wall_seconds.max(1e-9);
    eprintln!(
        "job {} `{}` ({}): {} files, {:.1} MB, {} shards, {} slices, {} partitions, {} attempts",
        s.id,
        s.job,
        s.world,
        s.files,
        s.input_bytes as f64 / 1e6,
        s.shards,
        s.slices,
        s.partitions,
        s.attempts
    );
    // The job's own total (across reruns), then, when known, what this command spent on it.
    let this_run = match s.this_run_seconds {
        Some(t) if s.already_done == Some(true) => format!(" · this run {t:.2}s (nothing run)"),
        Some(t) => format!(" · this run {t:.2}s"),
        None => String::new(),
    };
    eprintln!(
        "wall {:.2}s job total (map {:.2}s, reduce {:.2}s){this_run} · {:.0} records/s · {:.1} MB/s",
        s.wall_seconds,
        s.map_seconds,
        s.reduce_seconds,
        records as f64 / wall,
        s.input_bytes as f64 / 1e6 / wall
    );
    eprintln!("counters:");
    for (name, value) in &s.counters {
        eprintln!("  {name:<24} {value}");
    }
    for (name, value) in &s.job_counters {
        eprintln!("  job.{name:<20} {value}");
    }
    match s.outputs.first() {
        Some(first) => eprintln!(
            "output: {} files and _MANIFEST in {}",
            s.outputs.len(),
            first
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ),
        None => eprintln!("output: none"),
    }
}

/// `mr-host status` for one job, as text.
pub fn format_status(doc: &StatusDocument) -> Result<String, std::fmt::Error> {
    use std::fmt::Write;
    let s = &doc.status;
    let (input_bytes, mapped) = (doc.input_bytes, doc.mapped_bytes);
    let mut out = String::new();
    writeln!(out, "job {} `{}`: {}", s.id, s.name, s.phase)?;
    writeln!(out, "  output:   {}", s.output)?;
    if let Some(error) = &s.error {
        writeln!(out, "  error:    {}", error.replace('\n', "\n            "))?;
    }
    writeln!(
        out,
        "  input:    {:.1} of {:.1} MB mapped ({:.0}%)",
        mapped as f64 / 1e6,
        input_bytes as f64 / 1e6,
        if input_bytes == 0 {
            100.0
        } else {
            mapped as f64 * 100.0 / input_bytes as f64
        }
    )?;
    for t in &s.tasks {
        // A lease whose holder is gone is not running: say so (a worker takes it over).
        let stale_n = s
            .leases
            .iter()
            .filter(|l| l.kind == t.kind && l.stale)
            .count() as u32;
        let stale = if stale_n == 0 {
            String::new()
        } else {
            format!(", {stale_n} stale (holder gone)")
        };
        writeln!(
            out,
            "  {:<9} {}/{} done, {} running{stale}, {} pending, {} failed, {} slices committed",
            format!("{}:", t.kind),
            t.done,
            t.total,
            t.leased.saturating_sub(stale_n),
            t.pending,
            t.failed,
            t.slices
        )?;
    }
    let kinds = if s.failures_by_kind.is_empty() {
        String::new()
    } else {
        let kinds: Vec<String> = s
            .failures_by_kind
            .iter()
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect();
        format!(" ({})", kinds.join(", "))
    };
    writeln!(
        out,
        "  attempts: {} started, {} failed{kinds}, {} refused (lease lost)",
        s.attempts, s.failed_attempts, s.refused_attempts
    )?;
    for l in &s.leases {
        let state = if l.stale {
            "; stale: its holder is gone, the next worker (or a rerun) takes it over"
        } else {
            ""
        };
        writeln!(
            out,
            "  lease:    {} task {} attempt {} held by {} ({} slices committed{state})",
            l.kind, l.idx, l.attempt, l.owner, l.slices
        )?;
    }
    if !s.counters.is_empty() {
        writeln!(out, "  counters:")?;
        for (name, value) in &s.counters {
            writeln!(out, "    {name:<24} {value}")?;
        }
    }
    if !s.errors.is_empty() {
        writeln!(out, "  errors:")?;
        for e in &s.errors {
            let first = e.error.lines().next().unwrap_or_default();
            writeln!(
                out,
                "    {} task {} attempt {}: {first}",
                e.kind, e.idx, e.attempt
            )?;
        }
    }
    if !s.recent_events.is_empty() {
        writeln!(out, "  recent events:")?;
        for e in &s.recent_events {
            let mut what = e.event.to_string();
            if let (Some(kind), Some(idx)) = (&e.kind, e.idx) {
                what += &format!(" {kind} {idx}");
            }
            if let Some(slice) = e.slice {
                what += &format!(" slice {slice}");
            }
            if let Some(attempt) = e.attempt {
                what += &format!(" attempt {attempt}");
            }
            if let Some(detail) = &e.detail {
                what += &format!(": {}", detail.lines().next().unwrap_or_default());
            }
            writeln!(out, "    {what}")?;
        }
    }
    Ok(out)
}

/// The job's completion hooks, one line each (nothing when it has none).
pub fn format_hooks(hooks: &[mr_store::HookRow]) -> String {
    hooks
        .iter()
        .map(|h| {
            format!(
                "  hook {}: {} after {} attempt{}{}\n",
                h.name,
                h.state,
                h.attempts,
                if h.attempts == 1 { "" } else { "s" },
                h.detail
                    .as_ref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            )
        })
        .collect()
}

/// `mr-host status --tasks`: one line per task.
pub fn format_tasks(tasks: &[mr_store::TaskRow]) -> Result<String, std::fmt::Error> {
    use std::fmt::Write;
    let mut out = String::new();
    if tasks.is_empty() {
        return Ok(out);
    }
    writeln!(out, "  tasks:")?;
    for t in tasks {
        let counters: Vec<String> = t
            .counters
            .iter()
            .filter(|(name, _)| name == "records-in" || name == "output-records")
            .map(|(name, value)| format!("{name} {value}"))
            .collect();
        writeln!(
            out,
            "    {:<8} {:>5}  {:<7} attempt {} ({} failed), {} slices{}{}{}",
            t.kind,
            t.idx,
            t.state,
            t.attempt,
            t.failures,
            t.slices,
            t.split_from
                .map(|shard| format!(", split off shard {shard}"))
                .unwrap_or_default(),
            t.owner
                .as_ref()
                .map(|o| format!(", held by {o}"))
                .unwrap_or_default(),
            if counters.is_empty() {
                String::new()
            } else {
                format!(", {}", counters.join(", "))
            }
        )?;
    }
    Ok(out)
}
