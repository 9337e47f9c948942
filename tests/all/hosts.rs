//! Workers on several hosts, simulated on this machine with Linux network namespaces: one
//! "database host" running a throwaway PostgreSQL server and an S3-compatible server (s3s-fs),
//! and three worker hosts, each a namespace of its own with its own hostname (a UTS namespace),
//! its own scratch directory and component cache, joined to the others by veth pairs on a
//! bridge. The hosts share nothing but PostgreSQL and the bucket, as on a real network; a
//! worker on one host cannot see another host's processes, so a lease held there ends only by
//! expiring.
//!
//! Each test runs the same word count and checks that the objects it writes equal, byte for
//! byte, the output of the same job run on one machine (SQLite, local files), and that the
//! counters in `_MANIFEST` are exact, after:
//! - every process of one host SIGKILLed mid-map, and of another mid-reduce;
//! - a host cut off the network (its link down) while it holds a lease: the others take over
//!   once the lease expires, and when the cut host comes back its commit is refused (fencing)
//!   and recorded as such;
//! - PostgreSQL crashed and restarted (`pg_ctl restart -m immediate`) mid-job;
//! - workers whose clocks are an hour ahead and an hour behind (libfaketime): no lease is taken
//!   over, no commit refused.
//!
//! Workers are stopped exactly where a test needs them by pause points (`MR_PAUSEPOINT`, in the
//! test build of `mr-host`): a worker paused before a map commit holds a lease and work that is
//! not committed. Creating namespaces needs root (CI runs as root); without it these tests fail
//! saying so. They never skip.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mr_store::testing::{PgServer, PgServerOptions};

use crate::support::*;

/// How long a test waits for anything before failing as hung.
const LIMIT: Duration = Duration::from_secs(240);

/// The job's settings, the same on every host and in the single-machine reference.
const SETTINGS: [&str; 6] = ["--reducers", "3", "--shards", "6", "--slice-size", "64K"];

/// The worker hosts' names (also their hostnames) and their last address octet.
const HOSTS: [(&str, u8); 3] = [("h1", 11), ("h2", 12), ("h3", 13)];

/// The database host's last address octet.
const DB: u8 = 1;

static NETWORKS: AtomicU32 = AtomicU32::new(0);

/// Runs a command that must succeed (network set-up), panicking with its output.
fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{} failed ({}): {}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a command whose failure does not matter (clean-up of what may not exist).
fn quietly(args: &[&str]) {
    let _ = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A bridge in this namespace and one network namespace per host, each joined to the bridge
/// by a veth pair, on subnet `10.213.N.0/24` (this namespace is `.254`, so the test itself
/// reaches every host). Removed, with every process left in it, when dropped.
struct Network {
    n: u32,
}

impl Network {
    fn new() -> Network {
        let root = Command::new("id").arg("-u").output().unwrap();
        assert!(
            String::from_utf8_lossy(&root.stdout).trim() == "0",
            "the multi-host tests build hosts as network namespaces (`ip netns`, veth, a \
             bridge), which needs root; run the suite as root (CI does)"
        );
        assert!(
            Command::new("ip").arg("-V").output().is_ok(),
            "the multi-host tests need `ip` (Debian's iproute2; scripts/setup-services.sh \
             installs it)"
        );
        let n = 1 + (std::process::id() * 7 + NETWORKS.fetch_add(1, Ordering::Relaxed)) % 250;
        let net = Network { n };
        net.remove();
        let bridge = net.bridge();
        sh(&["ip", "link", "add", &bridge, "type", "bridge"]);
        sh(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", net.address(254)),
            "dev",
            &bridge,
        ]);
        sh(&["ip", "link", "set", &bridge, "up"]);
        for (host, octet) in [("db", DB)].into_iter().chain(HOSTS) {
            let ns = net.namespace(host);
            let (outer, inner) = (net.link(host), format!("mrp{n}{host}"));
            sh(&["ip", "netns", "add", &ns]);
            sh(&[
                "ip", "link", "add", &outer, "type", "veth", "peer", "name", &inner,
            ]);
            sh(&["ip", "link", "set", &inner, "netns", &ns]);
            sh(&["ip", "link", "set", &outer, "master", &bridge]);
            sh(&["ip", "link", "set", &outer, "up"]);
            let inside = |args: &[&str]| {
                let mut all = vec!["ip", "netns", "exec", &ns];
                all.extend(args);
                sh(&all);
            };
            inside(&["ip", "link", "set", &inner, "name", "eth0"]);
            inside(&[
                "ip",
                "addr",
                "add",
                &format!("{}/24", net.address(octet)),
                "dev",
                "eth0",
            ]);
            inside(&["ip", "link", "set", "eth0", "up"]);
            inside(&["ip", "link", "set", "lo", "up"]);
        }
        net
    }

    fn bridge(&self) -> String {
        format!("mrb{}", self.n)
    }

    /// The bridge side of a host's veth pair: down, the host is cut off.
    fn link(&self, host: &str) -> String {
        format!("mrv{}{host}", self.n)
    }

    fn namespace(&self, host: &str) -> String {
        format!("mr-net{}-{host}", self.n)
    }

    fn address(&self, octet: u8) -> String {
        format!("10.213.{}.{octet}", self.n)
    }

    /// The processes running on `host` now.
    fn pids(&self, host: &str) -> Vec<String> {
        let out = Command::new("ip")
            .args(["netns", "pids", &self.namespace(host)])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }

    /// SIGKILLs every process of `host`, as when the machine dies.
    fn kill_host(&self, host: &str) {
        let pids = self.pids(host);
        assert!(!pids.is_empty(), "no process runs on {host}");
        let mut kill = vec!["kill", "-KILL"];
        kill.extend(pids.iter().map(String::as_str));
        sh(&kill);
    }

    /// Takes `host` off the network (its link down: every packet to or from it is lost), or
    /// puts it back.
    fn set_connected(&self, host: &str, up: bool) {
        let state = if up { "up" } else { "down" };
        sh(&["ip", "link", "set", &self.link(host), state]);
    }

    /// Removes the namespaces (killing what still runs in them) and the bridge.
    fn remove(&self) {
        for (host, _) in [("db", DB)].into_iter().chain(HOSTS) {
            let pids = self.pids(host);
            if !pids.is_empty() {
                let mut kill = vec!["kill", "-KILL"];
                kill.extend(pids.iter().map(String::as_str));
                quietly(&kill);
            }
            quietly(&["ip", "netns", "del", &self.namespace(host)]);
            quietly(&["ip", "link", "del", &self.link(host)]);
        }
        quietly(&["ip", "link", "del", &self.bridge()]);
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.remove();
    }
}

/// The simulated hosts, the servers on the database host, a fresh job store and the
/// single-machine reference output. Fields drop in order: the servers stop before the network
/// goes.
struct Cluster {
    pg: PgServer,
    s3: S3Server,
    /// The store's URL, on the database host.
    url: String,
    dir: tempfile::TempDir,
    /// The single-machine run's output directory.
    expected: PathBuf,
    net: Network,
}

/// A worker process on a host, with its stderr.
struct Worker {
    child: Child,
    log: PathBuf,
    what: String,
}

impl Cluster {
    fn start() -> Cluster {
        let net = Network::new();
        let db = net.address(DB);
        let pg = PgServer::start(&PgServerOptions {
            listen: Some(db.clone()),
            port: Some(5432),
            netns: Some(net.namespace("db")),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let s3 = S3Server::start_at(Some(&net.namespace("db")), &db, Some(9000));
        let url = pg.fresh_store_url();
        let dir = tempfile::tempdir().unwrap();
        // Three files, twelve 64K slices to a shard: enough commits that every moment a test
        // picks is mid-job.
        let input = dir.path().join("in");
        std::fs::create_dir_all(&input).unwrap();
        for (i, lines) in [40_000, 25_000, 15_000].into_iter().enumerate() {
            let text = few_words(lines, 6, i as u64 + 1);
            std::fs::write(input.join(format!("{i}.txt")), &text).unwrap();
            s3.put(&format!("in/{i}.txt"), &text);
        }
        let expected = dir.path().join("reference");
        let wordcount = guest("wordcount");
        let mut args = vec!["run", s(&wordcount), "-i", s(&input), "-o", s(&expected)];
        args.extend(SETTINGS);
        run_ok(&args);
        Cluster {
            pg,
            s3,
            url,
            dir,
            expected,
            net,
        }
    }

    /// Submits the word count from this (client) namespace, its component deleted afterwards
    /// so that workers can only load it from the store; returns the job id.
    fn submit(&self) -> String {
        let copy = self.dir.path().join("submitted.wasm");
        std::fs::copy(guest("wordcount"), &copy).unwrap();
        let mut args = vec![
            "submit",
            s(&copy),
            "-i",
            "s3://bucket/in/",
            "-o",
            "s3://bucket/out/",
            "--db",
            &self.url,
        ];
        args.extend(SETTINGS);
        let out = self.s3.mr_host().args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "submit failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::remove_file(&copy).unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Starts `mr-host worker` on `host` (in its namespace, under its own hostname, with its own
    /// scratch directory and component cache), with `lease` seconds leases and `env` added.
    fn worker(&self, host: &str, lease: u32, env: &[(&str, String)]) -> Worker {
        let root = self.dir.path().join(host);
        std::fs::create_dir_all(&root).unwrap();
        static WORKERS: AtomicU32 = AtomicU32::new(0);
        let n = WORKERS.fetch_add(1, Ordering::Relaxed);
        let log = root.join(format!("worker-{n}.stderr"));
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.net.namespace(host)])
            .args(["unshare", "--uts", "sh", "-c"])
            .arg("echo \"$0\" > /proc/sys/kernel/hostname && exec \"$@\"")
            .arg(host)
            .arg(env!("CARGO_BIN_EXE_mr-host"))
            .args(["worker", "--db", &self.url, "--workers", "1"])
            .args(["--lease-seconds", &lease.to_string()])
            .arg("--work-dir")
            .arg(root.join("work"))
            .envs(self.s3.env())
            .env("MR_CACHE_DIR", root.join("cache"))
            .env("MR_LOG", "info");
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Worker {
            child,
            log,
            what: format!("the worker on {host}"),
        }
    }

    /// Starts `processes` workers on `host` that stop at pause point `point` (see
    /// `mr_store::pausepoint`), and waits until one has stopped there, holding a lease and
    /// work it has not committed. Creating `DIR/release`, DIR being the returned directory,
    /// lets it go on.
    fn paused_workers(
        &self,
        host: &str,
        lease: u32,
        point: &str,
        processes: usize,
    ) -> (Vec<Worker>, PathBuf) {
        let dir = self.dir.path().join(format!("{host}-pause"));
        std::fs::create_dir_all(&dir).unwrap();
        let env = [
            ("MR_PAUSEPOINT", point.to_owned()),
            ("MR_PAUSEPOINT_DIR", dir.display().to_string()),
        ];
        let workers = (0..processes)
            .map(|_| self.worker(host, lease, &env))
            .collect();
        self.wait_until(&format!("{host} reaching {point}"), || {
            dir.join("reached").exists()
        });
        (workers, dir)
    }

    /// `mr-host status ID --json`, read from this namespace.
    fn status(&self, id: &str) -> serde_json::Value {
        let out = self
            .s3
            .mr_host()
            .args(["status", id, "--json", "--db", &self.url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "status failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Waits until `condition` holds, failing with `what` and every worker log after [`LIMIT`].
    fn wait_until(&self, what: &str, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + LIMIT;
        while !condition() {
            assert!(
                Instant::now() < deadline,
                "{what} did not happen within {} s; the workers' logs:\n{}",
                LIMIT.as_secs(),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every worker's stderr, for a failure message.
    fn logs(&self) -> String {
        let mut all = String::new();
        for (host, _) in HOSTS {
            let Ok(entries) = std::fs::read_dir(self.dir.path().join(host)) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "stderr") {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    all.push_str(&format!("--- {} ---\n{text}\n", path.display()));
                }
            }
        }
        all
    }

    /// Waits for `worker` to exit successfully.
    fn succeeds(&self, mut worker: Worker) {
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(status) = worker.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "{} failed ({status}):\n{}",
                    worker.what,
                    std::fs::read_to_string(&worker.log).unwrap_or_default()
                );
                return;
            }
            if Instant::now() > deadline {
                let _ = worker.child.kill();
                panic!(
                    "{} did not finish within {} s:\n{}",
                    worker.what,
                    LIMIT.as_secs(),
                    std::fs::read_to_string(&worker.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for `workers` to succeed, then checks that job `id` is done with `refused`
    /// refused commits and wrote the reference's output; returns its status.
    fn finished(
        &self,
        workers: impl IntoIterator<Item = Worker>,
        id: &str,
        refused: u64,
    ) -> serde_json::Value {
        for worker in workers {
            self.succeeds(worker);
        }
        let status = self.status(id);
        assert_eq!(status["phase"], "done", "{status}");
        assert_eq!(status["refused_attempts"], refused, "{status}");
        self.same_output();
        status
    }

    /// Asserts that the bucket's `out/` holds the reference's part files byte for byte, and a
    /// `_MANIFEST` listing the same files and counters.
    fn same_output(&self) {
        let parts = parts(&self.expected);
        assert_eq!(parts.len(), 3);
        for part in &parts {
            let name = part.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                self.s3.get(&format!("out/{name}")).as_deref()
                    == Some(&std::fs::read(part).unwrap()[..]),
                "out/{name} differs from the single-machine run's {}",
                part.display()
            );
        }
        let manifest: serde_json::Value =
            serde_json::from_slice(&self.s3.get("out/_MANIFEST").expect("out/_MANIFEST")).unwrap();
        let reference: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.expected.join("_MANIFEST")).unwrap())
                .unwrap();
        assert_eq!(manifest["files"], reference["files"]);
        assert_eq!(manifest["counters"], reference["counters"]);
        assert!(manifest["counters"]["records-in"].as_u64().unwrap() == 80_000);
    }
}

/// The number of tasks of the job in a status document.
fn tasks(status: &serde_json::Value) -> u64 {
    status["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["total"].as_u64().unwrap())
        .sum()
}

/// The hosts holding leases in a status document (owners are `HOST:PID:START#THREAD`).
fn lease_hosts(status: &serde_json::Value) -> Vec<String> {
    status["leases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["owner"]
                .as_str()
                .unwrap()
                .split(':')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[test]
fn every_process_of_a_host_killed_mid_map_and_another_mid_reduce_loses_and_repeats_nothing() {
    let c = Cluster::start();
    let id = c.submit();
    // h1: two worker processes; the first to reach a map commit stops before it.
    let (h1, _) = c.paused_workers("h1", 4, "before-commit-map", 2);
    let status = c.status(&id);
    assert_eq!(status["phase"], "map", "{status}");
    assert!(lease_hosts(&status).contains(&"h1".to_owned()), "{status}");
    c.net.kill_host("h1");
    for mut worker in h1 {
        let status = worker.child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
    }
    // h2 finishes the map (h1's shard once its lease expires: h2 cannot see h1's processes)
    // and stops before its first reduce commit.
    let (_h2, _) = c.paused_workers("h2", 4, "before-commit-reduce", 1);
    let status = c.status(&id);
    assert_eq!(status["phase"], "reduce", "{status}");
    c.net.kill_host("h2");
    // h3 does the rest, taking over h2's partition once its lease expires.
    let status = c.finished([c.worker("h3", 4, &[])], &id, 0);
    // Both killed attempts were retried: more attempts than tasks.
    assert!(
        status["attempts"].as_u64().unwrap() >= tasks(&status) + 2,
        "{status}"
    );
}

#[test]
fn a_host_cut_off_while_holding_a_lease_is_taken_over_and_fenced_when_it_returns() {
    let c = Cluster::start();
    let id = c.submit();
    let (h1, paused) = c.paused_workers("h1", 4, "before-commit-map", 1);
    assert!(lease_hosts(&c.status(&id)).contains(&"h1".to_owned()));
    c.net.set_connected("h1", false);
    // The other hosts do the whole job, h1's shard once its lease has expired.
    c.finished([c.worker("h2", 4, &[]), c.worker("h3", 4, &[])], &id, 0);
    // h1 comes back and commits the slice it held: refused, recorded, nothing changed.
    c.net.set_connected("h1", true);
    std::fs::write(paused.join("release"), b"").unwrap();
    c.finished(h1, &id, 1);
}

#[test]
fn postgres_crashing_and_restarting_mid_job_loses_and_repeats_nothing() {
    let c = Cluster::start();
    let id = c.submit();
    // Leases long enough to outlive the restart: every worker carries on with its own.
    let (h1, paused) = c.paused_workers("h1", 20, "before-commit-map", 1);
    let others = [c.worker("h2", 20, &[]), c.worker("h3", 20, &[])];
    // h1 has committed nothing: slices committed are the other hosts' work, under way.
    c.wait_until("the other hosts committing slices", || {
        let status = c.status(&id);
        status["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["kind"] == "map" && t["slices"].as_u64().unwrap() > 0)
    });
    c.pg.restart("immediate")
        .unwrap_or_else(|e| panic!("cannot restart PostgreSQL: {e}"));
    // h1 commits over a new connection; the others reconnect and go on.
    std::fs::write(paused.join("release"), b"").unwrap();
    c.finished(h1.into_iter().chain(others), &id, 0);
}

#[test]
fn workers_whose_clocks_are_an_hour_off_take_no_lease_early() {
    let c = Cluster::start();
    let id = c.submit();
    let faketime = std::fs::read_dir("/usr/lib")
        .unwrap()
        .flatten()
        .map(|d| d.path().join("faketime/libfaketime.so.1"))
        .find(|p| p.is_file())
        .expect("libfaketime is not installed (scripts/setup-services.sh installs it)");
    let clock = |offset: &str| {
        vec![
            ("LD_PRELOAD", faketime.display().to_string()),
            ("FAKETIME", offset.to_owned()),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_owned()),
        ]
    };
    // The shift is real: `date` under the same settings is an hour off.
    let date = |env: &[(&str, String)]| -> i64 {
        let out = Command::new("date")
            .arg("+%s")
            .envs(env.iter().cloned())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    let skew = date(&clock("+1h")) - date(&[]);
    assert!(
        (3590..=3610).contains(&skew),
        "libfaketime shifted the clock by {skew} s"
    );
    // Leases of 10 s, long enough that no heartbeat lapses on a busy machine: a worker an hour
    // ahead that judged them by its own clock would find every lease it sees expired an hour
    // ago and take it over at once (more attempts than tasks, refused commits).
    let workers = [
        c.worker("h1", 10, &clock("+1h")),
        c.worker("h2", 10, &clock("-1h")),
        c.worker("h3", 10, &[]),
    ];
    let status = c.finished(workers, &id, 0);
    assert_eq!(
        status["attempts"].as_u64().unwrap(),
        tasks(&status),
        "{status}"
    );
}
