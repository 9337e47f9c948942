//! The new user's path and the edit-run loop, end to end with the real `mr-host`: projects
//! created by `mr-host new` outside this checkout that build, move and run; `mr-host run DIR`
//! rebuilding stale projects; what `run` says about things that are not components; `inspect`'s
//! hash and build time; the compiled-component cache's pruning; the Rust SDK's panic text.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::*;

#[test]
fn a_rust_panic_shows_its_message_and_location_without_backtrace_advice() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "a\nb POISON\nc\n").unwrap();
    let err = run_err(&run_args(
        &guest("faulty"),
        &input,
        &dir.path().join("out"),
        &["--param", "panic-on=POISON", "--max-attempts", "1"],
    ));
    let location = format!("{}:2", input.display());
    // The line of the guest's panic!, read from its source so that editing the fixture does not
    // break this test.
    let source = repo().join("tests/guests/faulty/src/lib.rs");
    let line = std::fs::read_to_string(&source)
        .unwrap()
        .lines()
        .position(|l| l.contains("panic!(\"found the panic marker"))
        .expect("the faulty guest's panic! line")
        + 1;
    assert!(
        err.contains(&format!(
            "| panicked at {}:{line}:13: found the panic marker \"POISON\" at {location}",
            source.display()
        )),
        "{err}"
    );
    // The standard hook's advice, impossible to follow in the sandbox, is gone.
    assert!(!err.contains("RUST_BACKTRACE"), "{err}");
}

/// A directory outside this checkout, as a new user's would be.
fn outside_checkout() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        !dir.path().canonicalize().unwrap().starts_with(repo()),
        "the temporary directory must not be inside the checkout"
    );
    dir
}

/// `mr-host` as a user runs it: no MR_PYTHON (the test harness's default), in `cwd`.
fn user_mr_host(cwd: &Path) -> Command {
    let mut cmd = mr_host();
    cmd.env_remove("MR_PYTHON").current_dir(cwd);
    cmd
}

fn ok(mut cmd: Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The input every new-project test runs on, and what the generated word count makes of it.
const INPUT: &str = "The cat\r\nthe hat\nlast";
const WORDS: [&str; 4] = ["cat\t1", "hat\t1", "last\t1", "the\t2"];

/// `mr-host run PROJECT` (building it when needed) on the test input into a fresh `out-N`;
/// returns the sorted output lines and mr-host's stderr.
fn run_project(parent: &Path, project: &str, out: &str) -> (Vec<String>, String) {
    std::fs::write(parent.join("input.txt"), INPUT).unwrap();
    let mut cmd = user_mr_host(parent);
    cmd.args(["run", project, "--input", "input.txt", "--output", out]);
    let done = ok(cmd);
    (sorted_lines(&parent.join(out)), stderr(&done))
}

fn new_project(parent: &Path, name: &str, lang: &str, extra: &[&str]) -> PathBuf {
    let mut cmd = user_mr_host(parent);
    cmd.args(["new", name, "--lang", lang]).args(extra);
    let done = ok(cmd);
    assert!(
        stderr(&done).contains(&format!("created ./{name}")),
        "{}",
        stderr(&done)
    );
    parent.join(name)
}

#[test]
fn a_new_rust_project_builds_runs_and_moves_outside_the_checkout() {
    let dir = outside_checkout();
    let project = new_project(dir.path(), "demo-rs", "rust", &[]);
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("mr-sdk = { path = \"vendor/mr-sdk/sdk/rust\" }"),
        "{manifest}"
    );
    // Test speed only: the plugins' lockfile and target directory, so wit-bindgen is not
    // compiled again (the vendored SDK crates are, from the project's own copy).
    std::fs::copy(
        repo().join("plugins/Cargo.lock"),
        project.join("Cargo.lock"),
    )
    .unwrap();
    let target = repo().join("plugins/target");
    let run = |project: &str, out: &str| {
        std::fs::write(dir.path().join("input.txt"), INPUT).unwrap();
        let mut cmd = user_mr_host(dir.path());
        cmd.env("CARGO_TARGET_DIR", &target).args([
            "run",
            project,
            "--input",
            "input.txt",
            "--output",
            out,
        ]);
        ok(cmd);
        sorted_lines(&dir.path().join(out))
    };
    assert_eq!(run("demo-rs", "out-1"), WORDS);
    // The README's test command passes as generated.
    let mut test = Command::new(std::env::var_os("CARGO").unwrap_or("cargo".into()));
    test.arg("test")
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(&project);
    ok(test);
    std::fs::rename(&project, dir.path().join("moved")).unwrap();
    assert_eq!(run("moved", "out-2"), WORDS);
}

#[test]
fn a_new_python_project_sets_up_its_venv_and_its_readme_commands_work() {
    let dir = outside_checkout();
    let project = new_project(dir.path(), "demo-py", "python", &[]);
    assert!(project.join(".venv/bin/python").is_file());
    std::fs::write(dir.path().join("input.txt"), INPUT).unwrap();
    // The README's commands, as written, from the project directory.
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    for command in [
        ".venv/bin/python -m pytest",
        ".venv/bin/python -m mr_sdk run demo_py.py --input INPUT",
    ] {
        assert!(
            readme.contains(command),
            "README lacks {command:?}:\n{readme}"
        );
    }
    let mut pytest = Command::new(project.join(".venv/bin/python"));
    pytest
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .current_dir(&project);
    ok(pytest);
    let mut native = Command::new(project.join(".venv/bin/python"));
    native
        .args([
            "-m",
            "mr_sdk",
            "run",
            "demo_py.py",
            "--input",
            "../input.txt",
        ])
        .current_dir(&project);
    assert_eq!(stdout(&ok(native)).lines().collect::<Vec<_>>(), WORDS);

    // `mr-host run DIR` builds the component, then reuses it while nothing changed...
    let (lines, err) = run_project(dir.path(), "demo-py", "out-1");
    assert_eq!(lines, WORDS);
    assert!(
        err.contains("mr-host: building demo-py (it has not been built yet)"),
        "{err}"
    );
    let (_, err) = run_project(dir.path(), "demo-py", "out-2");
    assert!(!err.contains("building"), "{err}");
    // ... and rebuilds it after an edit.
    let job = project.join("demo_py.py");
    let text = std::fs::read_to_string(&job).unwrap();
    std::fs::write(
        &job,
        text.replace("emit(word.lower(), 1)", "emit(word.upper(), 1)"),
    )
    .unwrap();
    let (lines, err) = run_project(dir.path(), "demo-py", "out-3");
    assert!(
        err.contains("mr-host: building demo-py (demo_py.py changed since its last build)"),
        "{err}"
    );
    assert_eq!(lines, ["CAT\t1", "HAT\t1", "LAST\t1", "THE\t2"]);

    // Moved, it still builds (and runs) from its own venv and vendored SDK.
    std::fs::rename(&project, dir.path().join("moved")).unwrap();
    let mut build = user_mr_host(dir.path());
    build.args(["build", "moved"]);
    let component = PathBuf::from(stdout(&ok(build)).trim());
    assert!(
        component.starts_with(dir.path().join("moved")),
        "{}",
        component.display()
    );
    let out = dir.path().join("out-4");
    run_ok(&run_args(
        &component,
        &dir.path().join("input.txt"),
        &out,
        &[],
    ));
    assert_eq!(
        sorted_lines(&out),
        ["CAT\t1", "HAT\t1", "LAST\t1", "THE\t2"]
    );
}

#[test]
fn a_python_build_installs_the_toolchain_on_first_use_and_after_a_vendor_refresh() {
    let dir = outside_checkout();
    let project = new_project(dir.path(), "lazy", "python", &["--no-install"]);
    assert!(!project.join(".venv").exists());
    let build = || {
        let mut cmd = user_mr_host(dir.path());
        cmd.args(["build", "lazy"]);
        ok(cmd)
    };
    let err = stderr(&build());
    assert!(
        err.contains("mr-host: creating the project's virtualenv"),
        "{err}"
    );
    assert!(
        err.contains("mr-host: installing the vendored Python SDK"),
        "{err}"
    );
    assert!(err.contains("mr-host: .venv is ready"), "{err}");
    // Set up: the next build goes straight to componentize-py.
    let err = stderr(&build());
    assert!(!err.contains("installing"), "{err}");

    // `mr-host sdk vendor` puts back a pristine copy; the next build reinstalls it.
    let init = project.join("vendor/mr-sdk/src/mr_sdk/__init__.py");
    std::fs::write(&init, "raise ImportError('tampered')\n").unwrap();
    std::fs::write(project.join(".venv/.mr-sdk-fingerprint"), "older\n").unwrap();
    let mut vendor = user_mr_host(&project);
    vendor.args(["sdk", "vendor"]);
    let err = stderr(&ok(vendor));
    assert!(
        err.contains("vendor/mr-sdk is unchanged (fingerprint"),
        "{err}"
    );
    assert!(!std::fs::read_to_string(&init).unwrap().contains("tampered"));
    let err = stderr(&build());
    assert!(
        err.contains("mr-host: installing the vendored Python SDK"),
        "{err}"
    );
    let (lines, _) = run_project(dir.path(), "lazy", "out");
    assert_eq!(lines, WORDS);
}

#[test]
fn a_new_js_project_installs_its_packages_and_its_readme_commands_work() {
    let dir = outside_checkout();
    let project = new_project(dir.path(), "demo-js", "js", &[]);
    assert!(project.join("node_modules/mr-sdk/src/build.js").is_file());
    // The pinned tree: componentize-js exactly as the SDK's lockfile has it.
    let installed = std::fs::read_to_string(
        project.join("node_modules/@bytecodealliance/componentize-js/package.json"),
    )
    .unwrap();
    assert!(installed.contains("\"version\": \"0.23.0\""));
    std::fs::write(dir.path().join("input.txt"), INPUT).unwrap();
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    for command in ["npm test", "npx mr-sdk run demo-js.js --input INPUT"] {
        assert!(
            readme.contains(command),
            "README lacks {command:?}:\n{readme}"
        );
    }
    let mut test = Command::new("npm");
    test.arg("test").current_dir(&project);
    ok(test);
    let mut native = Command::new("npx");
    native
        .args(["mr-sdk", "run", "demo-js.js", "--input", "../input.txt"])
        .current_dir(&project);
    assert_eq!(stdout(&ok(native)).lines().collect::<Vec<_>>(), WORDS);

    let (lines, err) = run_project(dir.path(), "demo-js", "out-1");
    assert_eq!(lines, WORDS);
    assert!(
        err.contains("mr-host: building demo-js (it has not been built yet)"),
        "{err}"
    );
    std::fs::rename(&project, dir.path().join("moved")).unwrap();
    let (lines, err) = run_project(dir.path(), "moved", "out-2");
    assert_eq!(lines, WORDS);
    assert!(!err.contains("building"), "a move changes no source: {err}");
}

#[test]
fn run_says_what_to_give_instead_of_something_that_is_no_component() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "x\n").unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let python_source = repo().join("plugins/wordcount-python/wordcount.py");
    let rust_source = repo().join("plugins/wordcount/src/lib.rs");
    let cases: [(&Path, String); 3] = [
        (
            &empty,
            format!(
                "error: {} is a directory but not a job project",
                empty.display()
            ),
        ),
        (
            &python_source,
            format!(
                "error: {} is not a WebAssembly component; it looks like a file of the job project {p}: `mr-host run {p}` builds and runs it",
                python_source.display(),
                p = repo().join("plugins/wordcount-python").display()
            ),
        ),
        (
            &rust_source,
            format!(
                "`mr-host run {}` builds and runs it",
                repo().join("plugins/wordcount").display()
            ),
        ),
    ];
    for (job, expected) in cases {
        let err = run_err(&run_args(job, &input, &dir.path().join("out"), &[]));
        assert!(err.contains(&expected), "{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(!err.contains("magic"), "{err}");
    }
    // A path that does not exist, outside any project.
    let out = mr_host()
        .args(["run", "no-such.wasm", "-i", "in.txt", "-o", "out"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        stderr(&out),
        "error: no-such.wasm does not exist; `mr-host build DIR` builds a job project and prints its component's path\n"
    );
}

#[test]
fn a_component_older_than_its_sources_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("proj");
    std::fs::create_dir_all(project.join("target/mr")).unwrap();
    std::fs::write(project.join("pyproject.toml"), "[tool.mr]\njob = \"j\"\n").unwrap();
    let source = project.join("j.py");
    std::fs::write(&source, "").unwrap();
    let component = project.join("target/mr/j.wasm");
    std::fs::copy(guest("uppercase"), &component).unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "x\n").unwrap();
    let set_mtime = |path: &Path, ago: u64| {
        let at = std::time::SystemTime::now() - std::time::Duration::from_secs(ago);
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(at)
            .unwrap();
    };
    set_mtime(&project.join("pyproject.toml"), 6000);
    set_mtime(&component, 600);
    set_mtime(&source, 60);
    let done = run_ok(&run_args(
        &component,
        &input,
        &dir.path().join("out-1"),
        &[],
    ));
    let err = stderr(&done);
    assert!(
        err.contains(&format!(
            "warning: {} is older than {} (changed since it was built); `mr-host run {}` rebuilds",
            component.display(),
            source.canonicalize().unwrap().display(),
            project.canonicalize().unwrap().display()
        )),
        "{err}"
    );
    set_mtime(&source, 6000);
    let done = run_ok(&run_args(
        &component,
        &input,
        &dir.path().join("out-2"),
        &[],
    ));
    assert!(!stderr(&done).contains("warning"), "{}", stderr(&done));
}

#[test]
fn inspect_shows_the_sha256_and_build_time() {
    use sha2::Digest;
    let component = guest("uppercase");
    let sha = sha2::Sha256::digest(std::fs::read(&component).unwrap());
    let sha: String = sha.iter().map(|b| format!("{b:02x}")).collect();
    let text = stdout(&run_ok(&["inspect", s(&component)]));
    assert!(text.contains(&format!("sha256:      {sha}\n")), "{text}");
    let built = text.lines().find(|l| l.starts_with("built:")).expect(&text);
    assert!(built.ends_with("Z (file modification time)"), "{built}");
    let json: serde_json::Value =
        serde_json::from_slice(&run_ok(&["inspect", s(&component), "--json"]).stdout).unwrap();
    assert_eq!(json["sha256"], sha);
    let mtime = std::fs::metadata(&component).unwrap().modified().unwrap();
    let secs = mtime
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(json["built_at"], secs);
}

#[test]
fn the_component_cache_is_pruned_by_age_and_size_least_recently_used_first() {
    let cache = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now();
    let day = std::time::Duration::from_secs(86_400);
    let entry = |name: &str, bytes: usize, days_ago: u32| {
        let path = cache.path().join(name);
        std::fs::write(&path, vec![0u8; bytes]).unwrap();
        let at = now - day * days_ago;
        let times = std::fs::FileTimes::new().set_accessed(at).set_modified(at);
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_times(times).unwrap();
    };
    entry("old-40-days.cwasm", 10, 40);
    entry("recent-4-days.cwasm", 1 << 20, 4);
    entry("recent-2-days.cwasm", 1 << 20, 2);
    // Compiling the component adds its entry (a few hundred KB), used now; then the cache is
    // over 1.5 MiB, and the least recently used entry goes.
    let out = mr_host()
        .args(["inspect", s(&guest("uppercase"))])
        .env("MR_CACHE_DIR", cache.path())
        .env("MR_CACHE_MAX_SIZE", "1536K")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut left: Vec<String> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left.len(), 2, "{left:?}");
    assert_eq!(left[1], "recent-2-days.cwasm", "{left:?}");
    assert!(
        left[0].ends_with(".cwasm") && !left[0].starts_with("old"),
        "{left:?}"
    );
}

/// The word counts of `lines`, as wordcount's sorted `word\tcount` output lines.
fn counted(lines: &[String]) -> Vec<String> {
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    for line in lines {
        for word in line
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            *counts.entry(word.to_ascii_lowercase()).or_default() += 1;
        }
    }
    let mut out: Vec<String> = counts.iter().map(|(w, n)| format!("{w}\t{n}")).collect();
    out.sort();
    out
}

fn records_in(summary: &Output) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(&summary.stdout).unwrap();
    v["counters"]["records-in"].as_u64().unwrap()
}

/// `--limit N`: the first N records of each shard reach the job, also across a crash and rerun.
#[test]
fn limit_maps_the_first_records_of_each_shard_even_across_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    let lines: Vec<String> = (0..5000)
        .map(|i| format!("w{} x{}", i % 97, i % 13))
        .collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let job = guest("wordcount");
    let out = dir.path().join("one");
    let args = run_args(
        &job,
        &input,
        &out,
        &["--shards", "1", "--limit", "25", "--json"],
    );
    let summary = run_ok(&args);
    assert_eq!(records_in(&summary), 25);
    assert_eq!(sorted_lines(&out), counted(&lines[..25]));
    // Killed after its first slice of 10; the rerun maps 15 more, not 25.
    let out = dir.path().join("crashed");
    let args = run_args(
        &job,
        &input,
        &out,
        &[
            "--shards",
            "1",
            "--limit",
            "25",
            "--slice-records",
            "10",
            "--json",
        ],
    );
    let killed = mr_host()
        .args(&args)
        .env("MR_FAILPOINT", "before-commit-map:2")
        .output()
        .unwrap();
    assert!(!killed.status.success());
    let summary = run_ok(&args);
    assert_eq!(records_in(&summary), 25);
    assert_eq!(sorted_lines(&out), counted(&lines[..25]));
    // Per shard: four shards give at most 4 x 25 records.
    let out = dir.path().join("four");
    let summary = run_ok(&run_args(
        &job,
        &input,
        &out,
        &["--shards", "4", "--limit", "25", "--json"],
    ));
    let v: serde_json::Value = serde_json::from_slice(&summary.stdout).unwrap();
    assert_eq!(records_in(&summary), 25 * v["shards"].as_u64().unwrap());
    let err = run_err(&run_args(
        &job,
        &input,
        &dir.path().join("zero"),
        &["--limit", "0"],
    ));
    assert!(err.contains("--limit must be at least 1"), "{err}");
}

/// `--sample F`: a deterministic subset, chosen by record location, whatever the sharding.
#[test]
fn sample_maps_the_same_fraction_of_records_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    let lines: Vec<String> = (0..20_000)
        .map(|i| format!("w{} x{}", i % 101, i % 7))
        .collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let job = guest("wordcount");
    let runs: Vec<(u64, Vec<String>)> = [("a", "1", "100000"), ("b", "3", "777")]
        .into_iter()
        .map(|(name, shards, slice)| {
            let out = dir.path().join(name);
            let summary = run_ok(&run_args(
                &job,
                &input,
                &out,
                &[
                    "--sample",
                    "0.1",
                    "--shards",
                    shards,
                    "--slice-records",
                    slice,
                    "--json",
                ],
            ));
            (records_in(&summary), sorted_lines(&out))
        })
        .collect();
    let (n, output) = &runs[0];
    assert!(
        (1700..=2300).contains(n),
        "about 10% of 20000 records, got {n}"
    );
    assert_eq!(&runs[1], &runs[0], "another sharding sampled other records");
    assert_ne!(output, &counted(&lines), "a sample is not the whole input");
    for bad in ["0", "1.5", "-0.1", "NaN"] {
        // `--sample=-0.1`: a value starting with `-` must be attached to its flag.
        let flag = format!("--sample={bad}");
        let err = run_err(&run_args(&job, &input, &dir.path().join("bad"), &[&flag]));
        assert!(err.contains("--sample must be a fraction"), "{bad}: {err}");
    }
}

/// The README's first session and its SQLite examples run as written, line by line (`sh -e`),
/// in a fresh directory where `plugins/` is the checkout's and `mr-host` is on the PATH (the
/// block's `cargo build` line is what the test build already did).
#[test]
fn the_readmes_commands_work_as_written() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let blocks: Vec<&str> = readme
        .split("```sh\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    let session = blocks
        .iter()
        .find(|b| b.contains("cp \"$(mr-host build plugins/wordcount)\" wordcount.wasm"))
        .expect("the README's first session");
    let sqlite = blocks
        .iter()
        .find(|b| b.contains("An example database"))
        .expect("the README's SQLite examples");
    let script: String = session
        .lines()
        .filter(|l| !l.starts_with("cargo build"))
        .chain(sqlite.lines())
        .map(|l| format!("{l}\n"))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(repo().join("plugins"), dir.path().join("plugins")).unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_mr-host")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // The environment the suite gives mr-host (component cache, Python), for `sh` to pass on.
    let base = mr_host();
    let mut sh = Command::new("sh");
    for (k, v) in base.get_envs() {
        if let Some(v) = v {
            sh.env(k, v);
        }
    }
    sh.args(["-ec", &script])
        .current_dir(dir.path())
        .env("PATH", path);
    let out = sh.output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "the README's commands failed:\n{script}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("contract:    mr:job@0.2.0"), "{stdout}");
    assert!(stdout.contains("the\t2"), "{stdout}");
    assert!(
        stdout.contains("{\"id\":1,\"email\":\"ann@example.org\"}"),
        "{stdout}"
    );
    assert!(dir.path().join("out3/_MANIFEST").is_file(), "{stderr}");
    assert!(
        !dir.path().join("out2").exists(),
        "delete --output left out2/"
    );
}

/// The deployment examples (deploy/) pass `mr-host worker` only flags it has: a renamed flag
/// would break every host that copied them.
#[test]
fn the_deployment_examples_use_flags_mr_host_worker_accepts() {
    let help = run_ok(&["worker", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let unit = std::fs::read_to_string(repo().join("deploy/mr-worker.service")).unwrap();
    let exec: String = unit
        .lines()
        .skip_while(|l| !l.starts_with("ExecStart="))
        .take_while(|l| !l.is_empty() && !l.starts_with("Restart"))
        .map(|l| l.trim_end_matches('\\'))
        .collect::<Vec<_>>()
        .join(" ");
    let words: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(words[0], "ExecStart=/usr/local/bin/mr-host", "{exec}");
    assert_eq!(words[1], "worker", "{exec}");
    let manifest = std::fs::read_to_string(repo().join("deploy/mr-workers-job.yaml")).unwrap();
    let args: Vec<&str> = manifest
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("- "))
        .filter(|a| a.starts_with("--"))
        .collect();
    assert!(manifest.contains("            - worker\n"), "{manifest}");
    let flags: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| w.starts_with("--"))
        .chain(args)
        .collect();
    assert!(flags.len() >= 8, "{flags:?}");
    for flag in flags {
        assert!(
            help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
            "`mr-host worker` has no {flag} (a deployment example uses it):\n{help}"
        );
    }
}
