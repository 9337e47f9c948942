//! `mr-bench`: measures word count under mr against a native Rust word count of the same corpus,
//! in the same run, and checks that both outputs are equal.
//!
//! `cargo run --release -p mr-bench -- [--size 256M] [--workers 2] [--job PATH.wasm]`
//!
//! The corpus is generated deterministically (mr-corpus, seed 1). Absolute times on shared
//! machines are noisy; the ratio mr / native is the number to watch.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Corpus size.
    #[arg(long, default_value = "256M", value_parser = mr_corpus::parse_size)]
    size: u64,
    /// Worker threads for both mr and the native reference.
    #[arg(long, default_value_t = 2)]
    workers: u32,
    /// The word-count component [default: build plugins/wordcount].
    #[arg(long)]
    job: Option<PathBuf>,
    /// Where to keep the corpus between runs.
    #[arg(long, default_value = "target/bench-data")]
    data: PathBuf,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let corpus = args.data.join(format!("corpus-{}.txt", args.size));
    if !corpus.is_file() {
        std::fs::create_dir_all(&args.data)?;
        let spec = mr_corpus::CorpusSpec {
            bytes: args.size,
            seed: 1,
            edge_cases: false,
        };
        let file = std::fs::File::create(&corpus)?;
        mr_corpus::write_corpus(std::io::BufWriter::new(file), &spec)?;
    }
    let bytes = std::fs::metadata(&corpus)?.len();
    let job = match args.job {
        Some(j) => j,
        None => build_wordcount()?,
    };

    // Native reference first (also warms the page cache for both).
    let t = Instant::now();
    let native = native_wordcount(&corpus, args.workers as usize)?;
    let native_secs = t.elapsed().as_secs_f64();

    let runtime = mr_engine::Runtime::new(mr_engine::RuntimeOptions::default())?;
    let component = runtime
        .load(&job)?
        .with_params(&Default::default())
        .map_err(anyhow::Error::msg)?;
    let out = args.data.join("mr-out");
    let request = mr_exec::JobRequest {
        shards: Some(args.workers * 4),
        reducers: Some(args.workers),
        overwrite: true,
        ..mr_exec::JobRequest::new(component, vec![corpus.display().to_string()], out.clone())
    };
    let options = mr_exec::WorkerOptions {
        workers: args.workers,
        ..Default::default()
    };
    let t = Instant::now();
    let summary = mr_exec::run(&mr_exec::default_store_path(&out), &request, &options, None)?;
    let mr_secs = t.elapsed().as_secs_f64();

    let mut mr_lines = Vec::new();
    for part in &summary.outputs {
        mr_lines.extend(std::fs::read_to_string(part)?.lines().map(str::to_owned));
    }
    mr_lines.sort();
    if mr_lines != native {
        bail!(
            "mr's output differs from the native word count ({} vs {} lines)",
            mr_lines.len(),
            native.len()
        );
    }
    let mb = bytes as f64 / 1e6;
    println!(
        "word count, {:.0} MB corpus, {} workers ({} distinct words; outputs equal)",
        mb,
        args.workers,
        native.len()
    );
    println!(
        "{:<28} {:>9} {:>9} {:>8}",
        "system", "wall s", "MB/s", "ratio"
    );
    println!(
        "{:<28} {:>9.2} {:>9.1} {:>8.2}",
        "native Rust (HashMap)",
        native_secs,
        mb / native_secs,
        1.0
    );
    println!(
        "{:<28} {:>9.2} {:>9.1} {:>8.2}",
        "mr (Rust guest)",
        mr_secs,
        mb / mr_secs,
        mr_secs / native_secs
    );
    Ok(())
}

fn build_wordcount() -> Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let status =
        std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "-p",
                "wordcount",
            ])
            .current_dir(root.join("plugins"))
            .status()
            .context("cannot run cargo")?;
    if !status.success() {
        bail!("building plugins/wordcount failed");
    }
    Ok(root.join("plugins/target/wasm32-wasip2/release/wordcount.wasm"))
}

/// The same job in plain Rust: split the file into line-aligned chunks, count per thread with a
/// HashMap, merge, format `word<TAB>count` lines.
fn native_wordcount(path: &Path, threads: usize) -> Result<Vec<String>> {
    let data = std::fs::read(path)?;
    let mut bounds = vec![0];
    for t in 1..threads {
        let mut cut = data.len() * t / threads;
        while cut < data.len() && data[cut - 1] != b'\n' {
            cut += 1;
        }
        bounds.push(cut);
    }
    bounds.push(data.len());
    let maps: Vec<HashMap<Vec<u8>, u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = bounds
            .windows(2)
            .map(|w| {
                let chunk = &data[w[0]..w[1]];
                s.spawn(move || {
                    let mut counts: HashMap<Vec<u8>, u64> = HashMap::new();
                    let mut word = Vec::new();
                    for word_bytes in chunk.split(|b| !b.is_ascii_alphanumeric()) {
                        if word_bytes.is_empty() {
                            continue;
                        }
                        word.clear();
                        word.extend(word_bytes.iter().map(u8::to_ascii_lowercase));
                        match counts.get_mut(&word) {
                            Some(c) => *c += 1,
                            None => {
                                counts.insert(word.clone(), 1);
                            }
                        }
                    }
                    counts
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("counting thread"))
            .collect()
    });
    let mut total: HashMap<Vec<u8>, u64> = HashMap::new();
    for m in maps {
        for (k, v) in m {
            *total.entry(k).or_default() += v;
        }
    }
    let mut lines: Vec<String> = total
        .into_iter()
        .map(|(k, v)| format!("{}\t{v}", String::from_utf8_lossy(&k)))
        .collect();
    lines.sort();
    Ok(lines)
}
