//! `mr-bench gzip`: word count over the same text plain, as a BGZF `.txt.gz` (bgzip's layout,
//! which mr splits into shards at member boundaries) and as a single-member `.txt.gz` (one
//! shard, decompressed ahead on its own thread); with `--jsonl`, the same three for the text as
//! JSON Lines (each line a JSON string). Each run is `mr-host run` timed as a child process;
//! every output is compared byte for byte with the plain run's. The table gives wall and CPU
//! seconds and the wall time's ratio to the plain run of the same format.
//!
//! The compressed inputs are written once next to the word-count corpus (`DATA/inputs`) at
//! zlib's default level, as bgzip and gzip write them, and reused.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::measure;

/// `mr-bench gzip`'s options.
#[derive(clap::Args)]
pub struct GzipArgs {
    /// Size of the uncompressed text (K/M/G = powers of 1024).
    #[arg(long, default_value = "1G", value_parser = mr_corpus::parse_size)]
    size: u64,
    /// mr workers.
    #[arg(long, default_value_t = 2)]
    workers: u32,
    /// Where inputs and outputs go (inputs are reused when present).
    #[arg(long, default_value = "target/bench-data")]
    data: PathBuf,
    /// Also the JSON Lines version of the text (plain, BGZF, one gzip member).
    #[arg(long)]
    jsonl: bool,
    /// Runs of each input, in rounds of one run per input; the table shows the median wall time.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// The mr-host binary [default: build it].
    #[arg(long)]
    pub mr_host: Option<PathBuf>,
}

/// Writes the inputs, runs the word counts and prints the table; Ok(false) when an output
/// differs from the plain run's.
pub fn run(args: GzipArgs, host: PathBuf, wordcount: PathBuf) -> Result<bool> {
    std::fs::create_dir_all(&args.data)?;
    let data = args.data.canonicalize()?;
    let inputs = data.join("inputs");
    let text = crate::data::wordcount_input(&inputs, args.size)?;
    let mut sets = vec![("text", text.clone(), "txt")];
    if args.jsonl {
        let jsonl = inputs.join(format!("corpus-{}.jsonl", args.size));
        create_once(&jsonl, |out| to_jsonl(&text, out))?;
        sets.push(("JSONL", jsonl, "jsonl"));
    }
    let mut rows = Vec::new();
    let mut ok = true;
    for (format, plain, ext) in sets {
        let stem = inputs.join(format!("corpus-{}", args.size));
        let bgzf = stem.with_extension(format!("bgzf.{ext}.gz"));
        create_once(&bgzf, |out| write_bgzf(&plain, out))?;
        let single = stem.with_extension(format!("{ext}.gz"));
        create_once(&single, |out| write_gzip(&plain, out))?;
        let inputs = [
            ("plain", &plain),
            ("BGZF (split)", &bgzf),
            ("gzip, one member", &single),
        ];
        let out_of = |label: &str| {
            data.join(format!(
                "gzip-out/{ext}-{}",
                label.replace([' ', ',', '(', ')'], "")
            ))
        };
        // Rounds of one run per input, as in the stragglers benchmark: the machine's speed
        // drifts over minutes, and interleaving spreads the drift over every input alike.
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new(); inputs.len()];
        for _ in 0..args.repeat.max(1) {
            for (i, (label, input)) in inputs.iter().enumerate() {
                runs[i].push(run_mr(
                    &host,
                    &wordcount,
                    input,
                    &out_of(label),
                    args.workers,
                )?);
            }
        }
        let mut reference: Option<(f64, Vec<u8>)> = None;
        for ((label, input), mut runs) in inputs.into_iter().zip(runs) {
            let out = out_of(label);
            runs.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (wall, cpu) = runs[runs.len() / 2];
            let output = parts(&out)?;
            let (ratio, same) = match &reference {
                None => {
                    reference = Some((wall, output));
                    (1.0, true)
                }
                Some((base, expected)) => (wall / base, *expected == output),
            };
            ok &= same;
            rows.push(format!(
                "| {format} | {label} | {:.0} | {wall:.2} | {cpu:.2} | {ratio:.2} | {} |",
                std::fs::metadata(input)?.len() as f64 / 1e6,
                if same { "same" } else { "DIFFERS" }
            ));
        }
    }
    println!(
        "word count, {} MiB of text, {} workers\n\n| format | input | MB | wall s | CPU s | wall / plain | output |\n|---|---|---|---|---|---|---|",
        args.size >> 20,
        args.workers
    );
    for row in rows {
        println!("{row}");
    }
    Ok(ok)
}

/// One `mr-host run` of the word count: (wall, CPU) seconds.
fn run_mr(
    host: &Path,
    wordcount: &Path,
    input: &Path,
    out: &Path,
    workers: u32,
) -> Result<(f64, f64)> {
    std::fs::create_dir_all(out.parent().expect("under gzip-out"))?;
    let mut cmd = Command::new(host);
    cmd.arg("run")
        .arg(wordcount)
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(out)
        .args(["--overwrite", "--workers", &workers.to_string()]);
    let log = out.with_extension("log");
    measure::timed(
        &mut cmd,
        &format!("mr-host run over {}", input.display()),
        &log,
    )
}

/// The output's part files, concatenated in order.
pub(crate) fn parts(dir: &Path) -> Result<Vec<u8>> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    names.retain(|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("part-"))
    });
    names.sort();
    let mut all = Vec::new();
    for n in names {
        File::open(&n)?.read_to_end(&mut all)?;
    }
    Ok(all)
}

/// Writes `path` once, buffered, through the generator's temporary-file-and-rename
/// ([`crate::data::create_once`]).
fn create_once(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<&mut File>) -> Result<()>,
) -> Result<()> {
    crate::data::create_once(path, |file| {
        let mut out = BufWriter::with_capacity(1 << 20, file);
        write(&mut out).map_err(std::io::Error::other)?;
        out.flush()
    })
}

/// Each line of the text as a JSON string.
fn to_jsonl(text: &Path, out: &mut impl Write) -> Result<()> {
    for line in BufReader::with_capacity(1 << 20, File::open(text)?).lines() {
        serde_json::to_writer(&mut *out, &line?)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// The file as BGZF: members of at most [`mr_io::bgzf::MEMBER_TEXT_BYTES`] bytes, each with its
/// size in a `BC` extra field, and the empty end-of-file member bgzip writes.
fn write_bgzf(input: &Path, out: &mut impl Write) -> Result<()> {
    let mut f = BufReader::with_capacity(1 << 20, File::open(input)?);
    let mut chunk = vec![0u8; mr_io::bgzf::MEMBER_TEXT_BYTES];
    loop {
        let mut n = 0;
        while n < chunk.len() {
            let k = f.read(&mut chunk[n..])?;
            if k == 0 {
                break;
            }
            n += k;
        }
        out.write_all(&mr_io::bgzf::encode_member(
            &chunk[..n],
            flate2::Compression::default(),
        )?)?;
        if n == 0 {
            return Ok(());
        }
    }
}

/// The file as one gzip member (what `gzip` writes).
fn write_gzip(input: &Path, out: &mut impl Write) -> Result<()> {
    let mut e = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    std::io::copy(
        &mut BufReader::with_capacity(1 << 20, File::open(input)?),
        &mut e,
    )?;
    e.finish()?;
    Ok(())
}
