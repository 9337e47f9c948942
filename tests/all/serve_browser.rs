//! The page of `mr-host serve` in a real headless Chromium (Debian's `chromium`, driven by
//! playwright-core from `tests/browser/`, pinned by its package-lock.json): a job submitted
//! through the API progresses live on the list and reaches `done`; its page's counters equal
//! `status --json`; a failing job shows the guest's message with `file:line`; a job cancelled
//! through the API turns `cancelled`. A pipeline's page draws its stages as a graph that follows
//! the pipeline live. Screenshots go to `target/browser-shots/`.
//! `scripts/setup-serve-tests.sh` installs what it needs; without it this test fails.

use std::process::Command;

use crate::support::server::{Server, TOKEN, two_stage_pipeline};
use crate::support::{guest, repo, s};

/// Runs the node script `script` of `tests/browser/` against `server` (whose store is `db`),
/// with `env` added, in headless Chromium; fails with the script's and the server's output
/// unless it succeeds. Returns its stdout and the screenshot directory.
fn run_script(
    script: &str,
    server: &Server,
    db: &std::path::Path,
    env: &[(&str, &std::ffi::OsStr)],
) -> (String, std::path::PathBuf) {
    let chromium = std::env::var("MR_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).is_file(),
        "{chromium} is missing: run scripts/setup-serve-tests.sh (CI does), or set MR_CHROMIUM"
    );
    let browser_dir = repo().join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed in tests/browser: run scripts/setup-serve-tests.sh"
    );
    let shots = repo().join("target/browser-shots");
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new("node")
        .arg(browser_dir.join(script))
        .current_dir(&browser_dir)
        .env("MR_URL", &server.url)
        .env("MR_TOKEN", TOKEN)
        .env("MR_SHOTS", &shots)
        .env("MR_CHROMIUM", &chromium)
        .env("MR_HOST", env!("CARGO_BIN_EXE_mr-host"))
        .env("MR_DB", db)
        .envs(env.iter().copied())
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser checks failed:\n{stdout}\n{stderr}\nserver:\n{}",
        server.log()
    );
    (stdout, shots)
}

#[test]
fn the_page_follows_jobs_live_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    // 40 MB of text: long enough (1 MB slices, one worker thread) to be seen half done.
    let line = "the quick brown fox jumps over the lazy dog and keeps running far away\n";
    std::fs::write(data.join("big.txt"), line.repeat(40_000_000 / line.len())).unwrap();
    std::fs::write(data.join("faulty.txt"), "ok\nok\nboom here\nok\n").unwrap();
    let db = dir.path().join("jobs.db");
    let wordcount = guest("wordcount");
    let faulty = guest("faulty");
    // The job runs in well under a second on an idle machine: too fast to be seen half done.
    // Its worker pauses before its sixth slice commit (five of forty committed) until the page
    // has shown that, and the browser script releases it.
    let pause = dir.path().join("pause");
    std::fs::create_dir(&pause).unwrap();
    let server = Server::start_with_env(
        &db,
        &["--token", TOKEN, "--workers", "1", "--data-root", s(&data)],
        &[
            ("MR_PAUSEPOINT", std::path::Path::new("before-commit-map:6")),
            ("MR_PAUSEPOINT_DIR", &pause),
        ],
    );
    let (stdout, shots) = run_script(
        "page.mjs",
        &server,
        &db,
        &[
            ("MR_WORDCOUNT", wordcount.as_os_str()),
            ("MR_FAULTY", faulty.as_os_str()),
            ("MR_PAUSE_DIR", pause.as_os_str()),
        ],
    );
    assert!(
        stdout.contains("browser checks: 5 passed, 0 failed"),
        "{stdout}"
    );
    for shot in [
        "list-done.png",
        "job-done.png",
        "job-failed.png",
        "job-cancelled.png",
        "list.png",
    ] {
        assert!(shots.join(shot).is_file(), "no screenshot {shot}");
    }
}

/// A pipeline submitted with `mr-host pipeline submit` (both stages waiting), then resumed from
/// the command line while its page is open: the graph shows two boxes in two columns joined by
/// an edge, and follows them to `done` with their jobs linked and their tasks counted. The
/// pipeline's name holds markup, which the page must show as text.
#[test]
fn the_page_draws_a_pipeline_as_a_graph_that_follows_it_live() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    let line = "the quick brown fox jumps over the lazy dog\n";
    std::fs::write(&input, line.repeat(20_000)).unwrap();
    let name = "words <b>&amp;</b>";
    let file = two_stage_pipeline(dir.path(), name, &input);
    let db = dir.path().join("jobs.db");
    let server = Server::start(&db, &["--token", TOKEN]);
    let out = dir.path().join("out");
    let (stdout, shots) = run_script(
        "pipeline.mjs",
        &server,
        &db,
        &[
            ("MR_PIPELINE", file.as_os_str()),
            ("MR_PIPELINE_NAME", std::ffi::OsStr::new(name)),
            ("MR_OUT", out.as_os_str()),
        ],
    );
    assert!(
        stdout.contains("pipeline browser checks: 4 passed, 0 failed"),
        "{stdout}"
    );
    for shot in ["pipeline-waiting.png", "pipeline-done.png", "pipelines.png"] {
        assert!(shots.join(shot).is_file(), "no screenshot {shot}");
    }
}
