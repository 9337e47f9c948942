//! The progress bar (stderr, only on a terminal, only after the first second) and the summary.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mr_exec::{Progress, ProgressSink, Summary};
use mr_store::JobStatus;

pub struct Bar {
    bar: ProgressBar,
    started: Instant,
    shown: Arc<Mutex<bool>>,
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
        Bar {
            bar,
            started: Instant::now(),
            shown: Arc::new(Mutex::new(false)),
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
                Progress::Mapped(n) => bar.inc(n),
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
    eprintln!(
        "wall {:.2}s (map {:.2}s, reduce {:.2}s) · {:.0} records/s · {:.1} MB/s",
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
pub fn format_status(s: &JobStatus, input_bytes: u64) -> Result<String, std::fmt::Error> {
    use std::fmt::Write;
    let mut out = String::new();
    writeln!(out, "job {} `{}`: {}", s.id, s.name, s.phase)?;
    writeln!(out, "  output:   {}", s.output)?;
    if let Some(error) = &s.error {
        writeln!(out, "  error:    {}", error.replace('\n', "\n            "))?;
    }
    let mapped = s
        .counters
        .iter()
        .find(|(n, _)| n == "bytes-in")
        .map_or(0, |(_, v)| (*v).max(0) as u64);
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
        writeln!(
            out,
            "  {:<9} {}/{} done, {} running, {} pending, {} failed, {} slices committed",
            format!("{}:", t.kind),
            t.done,
            t.total,
            t.leased,
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
        writeln!(
            out,
            "  lease:    {} task {} attempt {} held by {} ({} slices committed)",
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

/// `mr-host status --tasks`: one line per task.
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
            "    {:<8} {:>5}  {:<7} attempt {} ({} failed), {} slices{}{}",
            t.kind,
            t.idx,
            t.state,
            t.attempt,
            t.failures,
            t.slices,
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
