//! `mr-bench stragglers`: straggler splitting, measured. The input is one big file (the
//! word-count corpus, `--size`) and 200 small files, run with `--shards 2` and two workers:
//!
//! - **unsplit** (`--shards 2 --no-split`): the two planned shards, nothing else;
//! - **split** (`--shards 2`): a worker that runs out of work splits the other's shard;
//! - **even** (`--shards 2 --no-split`): the same files named so that they are read in an
//!   order where the byte cut also halves the work (100 small files, the big one, the other
//!   100): the straggler-free run of the same input the others are measured against.
//!
//! Planning cuts plain text by bytes, so two shards of the same kind of text take about as
//! long. `--skewed` makes the small files cost more per byte than the big one: random
//! four-letter words (457k of them), which a map-side combine cannot fold as it folds the
//! corpus' Zipf-distributed words, so most of them go through the sort, spill and merge: the
//! case byte planning cannot see, and the shard that holds them straggles unless it is split.
//! Every output is compared byte for byte with the even run's.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::measure;

/// `mr-bench stragglers`' options.
#[derive(clap::Args)]
pub struct StragglersArgs {
    /// Size of the big file (K/M/G = powers of 1024).
    #[arg(long, default_value = "1G", value_parser = mr_corpus::parse_size)]
    size: u64,
    /// Size of the 200 small files together.
    #[arg(long, default_value = "512M", value_parser = mr_corpus::parse_size)]
    small: u64,
    /// Small files of random four-letter words (more work per byte than the big file's text)
    /// instead of the same kind of text as the big file.
    #[arg(long)]
    skewed: bool,
    /// Where inputs and outputs go (inputs are reused when present).
    #[arg(long, default_value = "target/bench-data")]
    data: PathBuf,
    /// Runs of each setting, interleaved (a round runs each setting once); the table shows the
    /// median wall time.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// The mr-host binary [default: build it].
    #[arg(long)]
    pub mr_host: Option<PathBuf>,
}

/// Small files in the input.
const SMALL_FILES: u64 = 200;

/// Writes the input, runs the three settings and prints the table; Ok(false) when an output
/// differs from the even run's.
pub fn run(args: StragglersArgs, host: PathBuf, wordcount: PathBuf) -> Result<bool> {
    std::fs::create_dir_all(&args.data)?;
    let data = args.data.canonicalize()?;
    let inputs = data.join("inputs");
    let corpus = crate::data::wordcount_input(&inputs, args.size)?;
    let kind = if args.skewed { "skewed" } else { "text" };
    let dir = inputs.join(format!("stragglers-{}-{}-{kind}", args.size, args.small));
    write_input(&dir, &corpus, args.small, args.skewed)?;
    let even = link_even(&dir)?;
    let settings: [(&str, &Path, &[&str]); 3] = [
        (
            "even: balanced order, --shards 2 --no-split",
            &even,
            &["--shards", "2", "--no-split"],
        ),
        (
            "unsplit: --shards 2 --no-split",
            &dir,
            &["--shards", "2", "--no-split"],
        ),
        ("split: --shards 2", &dir, &["--shards", "2"]),
    ];
    let out_of = |label: &str| {
        data.join(format!(
            "stragglers-out/{}",
            label.split(':').next().expect("a label")
        ))
    };
    // Rounds of one run per setting, not all runs of one setting in a row: on a shared machine
    // the speed drifts over minutes (the same even run took 17.6 s and, ten minutes later,
    // 25.7 s), and interleaving spreads that drift over every setting alike.
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new(); settings.len()];
    for _ in 0..args.repeat.max(1) {
        for (i, (label, input, flags)) in settings.iter().enumerate() {
            runs[i].push(run_mr(&host, &wordcount, input, &out_of(label), flags)?);
        }
    }
    let mut reference: Option<(f64, Vec<u8>)> = None;
    let mut rows = Vec::new();
    let mut ok = true;
    for ((label, _, _), mut runs) in settings.into_iter().zip(runs) {
        let out = out_of(label);
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (wall, cpu) = runs[runs.len() / 2];
        let all: Vec<String> = runs.iter().map(|r| format!("{:.2}", r.0)).collect();
        let output = crate::gzip::parts(&out)?;
        let (ratio, same) = match &reference {
            None => {
                reference = Some((wall, output));
                (1.0, true)
            }
            Some((even, expected)) => (wall / even, *expected == output),
        };
        ok &= same;
        rows.push(format!(
            "| {label} | {wall:.2} ({}) | {cpu:.2} | {ratio:.2} | {} | {} |",
            all.join(", "),
            splits(&out).unwrap_or(0),
            if same { "same" } else { "DIFFERS" }
        ));
    }
    println!(
        "word count, one {} MiB file + {SMALL_FILES} files of {} MiB together ({kind}), 2 workers\n\n\
         | setting | wall s (runs) | CPU s | wall / even | splits | output |\n|---|---|---|---|---|---|",
        args.size >> 20,
        args.small >> 20,
    );
    for row in rows {
        println!("{row}");
    }
    Ok(ok)
}

/// `dir`: the corpus (hard-linked, or copied) as `a-big.txt`, then the small files, which sort
/// after it.
fn write_input(dir: &Path, corpus: &Path, small: u64, skewed: bool) -> Result<()> {
    let done = dir.join(".complete");
    if done.is_file() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    let big = dir.join("a-big.txt");
    if !big.is_file() && std::fs::hard_link(corpus, &big).is_err() {
        std::fs::copy(corpus, &big).with_context(|| format!("cannot copy to {}", big.display()))?;
    }
    let each = small / SMALL_FILES;
    for i in 0..SMALL_FILES {
        let path = dir.join(format!("b-{i:03}.txt"));
        crate::data::create_once(&path, |file| {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
            if skewed {
                write_random_words(&mut out, each, i)?;
            } else {
                let spec = mr_corpus::CorpusSpec {
                    bytes: each,
                    seed: 100 + i,
                    edge_cases: false,
                };
                mr_corpus::write_corpus(&mut out, &spec)?;
            }
            out.flush()
        })?;
    }
    std::fs::write(&done, b"")?;
    Ok(())
}

/// The files of `dir` hard-linked into `DIR-even` in an order where half of the bytes is
/// half of the work: the first 100 small files, the big one, the last 100.
fn link_even(dir: &Path) -> Result<PathBuf> {
    let even = dir.with_file_name(format!(
        "{}-even",
        dir.file_name()
            .expect("a named directory")
            .to_string_lossy()
    ));
    std::fs::create_dir_all(&even)?;
    let link = |from: &str, to: String| -> Result<()> {
        let to = even.join(to);
        if !to.is_file() {
            std::fs::hard_link(dir.join(from), &to)
                .with_context(|| format!("cannot link {}", to.display()))?;
        }
        Ok(())
    };
    link("a-big.txt", "b-big.txt".into())?;
    for i in 0..SMALL_FILES {
        let name = format!("b-{i:03}.txt");
        link(
            &name,
            format!("{}-{i:03}.txt", if i < SMALL_FILES / 2 { "a" } else { "c" }),
        )?;
    }
    Ok(even)
}

/// About `bytes` of lines of 15 random four-letter words.
fn write_random_words(out: &mut impl Write, bytes: u64, seed: u64) -> std::io::Result<()> {
    let mut x = (seed + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut written = 0u64;
    let mut line = Vec::with_capacity(128);
    while written < bytes {
        line.clear();
        for w in 0..15 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if w > 0 {
                line.push(b' ');
            }
            for k in 0..4 {
                line.push(b'a' + ((x >> (8 * k)) % 26) as u8);
            }
        }
        line.push(b'\n');
        out.write_all(&line)?;
        written += line.len() as u64;
    }
    Ok(())
}

/// One `mr-host run` of the word count with two workers: (wall, CPU) seconds.
fn run_mr(
    host: &Path,
    wordcount: &Path,
    input: &Path,
    out: &Path,
    flags: &[&str],
) -> Result<(f64, f64)> {
    std::fs::create_dir_all(out.parent().expect("under stragglers-out"))?;
    let mut cmd = Command::new(host);
    cmd.arg("run")
        .arg(wordcount)
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(out)
        .args(["--overwrite", "--workers", "2"])
        .args(flags);
    let log = out.with_extension("log");
    measure::timed(&mut cmd, &format!("mr-host run {}", flags.join(" ")), &log)
}

/// How many `task-split` events the run's store recorded.
fn splits(out: &Path) -> Result<u64> {
    use mr_store::JobStore;
    let store = mr_store::SqliteStore::open(&out.join("_mr/state.db"))?;
    let mut count = 0;
    for job in store.jobs()? {
        count += store
            .events(job.id, 0, u32::MAX)?
            .iter()
            .filter(|e| e.event == mr_store::EventKind::TaskSplit)
            .count() as u64;
    }
    Ok(count)
}
