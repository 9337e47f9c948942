//! A throwaway PostgreSQL server for tests (compiled for this crate's tests, and for other
//! crates with the `testing` feature).
//!
//! [`PgServer::start`] runs `initdb` into a temporary directory and `pg_ctl start` on a free
//! port of the address it is given (loopback by default), with password (SCRAM) authentication
//! for a superuser `mr`, and waits until it accepts connections. As root it runs the server as
//! the `postgres` user (`initdb` refuses root), through `runuser`. The server stops, and its
//! directory is removed, when the [`PgServer`] is dropped or, for one that never is (the shared
//! one), when the test process exits: a watchdog process started beside it waits for that.
//!
//! [`PgServer::shared`] is the one most tests use, started once per test process, with
//! `synchronous_commit=off`: a commit waits for no fsync, which makes the protocol tests ten
//! times faster and changes nothing they check (no test of it crashes it; the restart test and
//! the benchmark start servers with full durability);
//! `MR_TEST_POSTGRES_URL=postgres://user:password@host:port/db` makes it an existing server
//! instead (a test on another host or in a network namespace). Tests needing a server of their
//! own (restarted, or with a shifted clock) start one. When a server cannot be started, the
//! test fails saying why: a test that needs PostgreSQL never passes by skipping.
//!
//! Binaries: the newest `/usr/lib/postgresql/*/bin` (Debian's packages), or `MR_PG_BIN`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// How to start a [`PgServer`].
#[derive(Debug, Clone, Default)]
pub struct PgServerOptions {
    /// The address to listen on (default `127.0.0.1`).
    pub listen: Option<String>,
    /// The port (default: a free one).
    pub port: Option<u16>,
    /// Runs the server with its clock shifted by this libfaketime offset (e.g. `+1h`), so that
    /// it disagrees with the test's clock.
    pub clock_offset: Option<String>,
    /// More server settings, `name=value` (as `postgres -c`).
    pub settings: Vec<String>,
    /// Runs the server inside this network namespace (`ip netns exec NAME`), as one host of a
    /// simulated network; `listen` is then one of the namespace's addresses and `port` must be
    /// given (a free port cannot be probed from outside it).
    pub netns: Option<String>,
}

/// A PostgreSQL server for tests (see the module documentation).
pub struct PgServer {
    url: String,
    /// What this process started; `None` for a server given by `MR_TEST_POSTGRES_URL`.
    local: Option<Local>,
}

struct Local {
    root: PathBuf,
    bin: PathBuf,
    run_as: Option<String>,
    env: Vec<(String, String)>,
    netns: Option<String>,
    watchdog: Child,
}

/// The superuser the harness creates.
const USER: &str = "mr";

static SCHEMAS: AtomicU64 = AtomicU64::new(0);
static ROOTS: AtomicU64 = AtomicU64::new(0);

impl PgServer {
    /// The server shared by a test process's tests: `MR_TEST_POSTGRES_URL`'s, or one started
    /// on first use. Panics, saying why, when there is none.
    pub fn shared() -> &'static PgServer {
        static SHARED: OnceLock<Result<PgServer, String>> = OnceLock::new();
        let server = SHARED.get_or_init(|| match std::env::var("MR_TEST_POSTGRES_URL") {
            Ok(url) => Ok(PgServer { url, local: None }),
            Err(_) => PgServer::start(&PgServerOptions {
                settings: vec!["synchronous_commit=off".into()],
                ..Default::default()
            }),
        });
        match server {
            Ok(server) => server,
            Err(why) => panic!("{why}"),
        }
    }

    /// Starts a new server (see the module documentation); the error says why it could not.
    pub fn start(options: &PgServerOptions) -> Result<PgServer, String> {
        let fail = |why: String| {
            format!(
                "cannot start a throwaway PostgreSQL server for the tests: {why}\n\
                 (install it with `apt-get install postgresql`, set MR_PG_BIN to its bin \
                 directory, or point MR_TEST_POSTGRES_URL at a running server)"
            )
        };
        if options.netns.is_some() && options.port.is_none() {
            return Err(fail("a server in a network namespace needs a port".into()));
        }
        let bin = binaries().map_err(fail)?;
        let root = std::env::temp_dir().join(format!(
            "mr-pg-{}-{}",
            std::process::id(),
            ROOTS.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).map_err(|e| fail(format!("{}: {e}", root.display())))?;
        let run_as = running_as_root().then(|| "postgres".to_owned());
        if let Some(user) = &run_as {
            give_to(&root, user).map_err(fail)?;
        }
        let password = format!("mr-test-{}", std::process::id());
        let pwfile = root.join("password");
        std::fs::write(&pwfile, &password)
            .map_err(|e| fail(format!("{}: {e}", pwfile.display())))?;
        if let Some(user) = &run_as {
            give_to(&pwfile, user).map_err(fail)?;
        }
        let mut env = Vec::new();
        if let Some(offset) = &options.clock_offset {
            env.push(("LD_PRELOAD".to_owned(), libfaketime().map_err(fail)?));
            env.push(("FAKETIME".to_owned(), offset.clone()));
        }
        let data = root.join("data");
        let netns = options.netns.clone();
        run(
            &bin,
            run_as.as_deref(),
            &[],
            None,
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                USER.as_ref(),
                format!("--pwfile={}", pwfile.display()).as_ref(),
                "--auth-local=trust".as_ref(),
                "--auth-host=scram-sha-256".as_ref(),
                "--no-sync".as_ref(),
                "--encoding=UTF8".as_ref(),
                "--locale=C".as_ref(),
            ],
        )
        .map_err(fail)?;
        let listen = options.listen.clone().unwrap_or_else(|| "127.0.0.1".into());
        if options.listen.is_some() {
            // initdb lets in loopback clients only; a server on another address is reached
            // from other (simulated) hosts: let them in, with the same password.
            use std::io::Write;
            let hba = data.join("pg_hba.conf");
            std::fs::OpenOptions::new()
                .append(true)
                .open(&hba)
                .and_then(|mut f| f.write_all(b"host all all all scram-sha-256\n"))
                .map_err(|e| fail(format!("{}: {e}", hba.display())))?;
        }
        // A port found free may be taken before the server binds it: try a few.
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = match options.port {
                Some(port) => port,
                None => free_port(&listen).map_err(fail)?,
            };
            let mut server_options = format!(
                "-p {port} -k {} -c listen_addresses={listen} -c max_connections=200 \
                 -c shared_buffers=32MB",
                root.display()
            );
            for setting in &options.settings {
                server_options.push_str(&format!(" -c {setting}"));
            }
            let log = root.join("log");
            let started = run(
                &bin,
                run_as.as_deref(),
                &env,
                netns.as_deref(),
                "pg_ctl",
                &[
                    "-D".as_ref(),
                    data.as_os_str(),
                    "-l".as_ref(),
                    log.as_os_str(),
                    "-o".as_ref(),
                    server_options.as_ref(),
                    "-w".as_ref(),
                    "-t".as_ref(),
                    "60".as_ref(),
                    "start".as_ref(),
                ],
            );
            match started {
                Ok(()) => {
                    let watchdog = watchdog(&root, &bin, run_as.as_deref()).map_err(fail)?;
                    let host = if listen.contains(':') {
                        format!("[{listen}]")
                    } else {
                        listen.clone()
                    };
                    return Ok(PgServer {
                        url: format!("postgres://{USER}:{password}@{host}:{port}/postgres"),
                        local: Some(Local {
                            root,
                            bin,
                            run_as,
                            env,
                            netns,
                            watchdog,
                        }),
                    });
                }
                Err(e) => {
                    let log = std::fs::read_to_string(&log).unwrap_or_default();
                    last_error = format!("{e}\nserver log:\n{log}");
                    if !log.contains("could not bind") || options.port.is_some() {
                        break;
                    }
                }
            }
        }
        let _ = std::fs::remove_dir_all(&root);
        Err(fail(last_error))
    }

    /// The superuser's URL of database `postgres` (with its password).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL of a new, empty schema of the server's database: a fresh store for one test.
    pub fn fresh_store_url(&self) -> String {
        let schema = format!(
            "mr_test_{}_{}",
            std::process::id(),
            SCHEMAS.fetch_add(1, Ordering::Relaxed)
        );
        self.admin()
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .unwrap_or_else(|e| panic!("cannot create schema {schema}: {e}"));
        with_search_path(&self.url, &schema)
    }

    /// A superuser connection.
    pub fn admin(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).unwrap_or_else(|e| {
            panic!(
                "cannot connect to the test server {}: {e}",
                crate::redact(&self.url)
            )
        })
    }

    /// Restarts the server (`pg_ctl restart -m MODE`: `fast`, or `immediate` for a crash and
    /// recovery), and waits until it accepts connections again.
    pub fn restart(&self, mode: &str) -> Result<(), String> {
        let local = self
            .local
            .as_ref()
            .ok_or("an external server cannot be restarted")?;
        let data = local.root.join("data");
        run(
            &local.bin,
            local.run_as.as_deref(),
            &local.env,
            local.netns.as_deref(),
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-l".as_ref(),
                local.root.join("log").as_os_str(),
                "-m".as_ref(),
                mode.as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "restart".as_ref(),
            ],
        )
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some(local) = &mut self.local {
            stop(&local.root, &local.bin, local.run_as.as_deref());
            let _ = local.watchdog.kill();
            let _ = local.watchdog.wait();
            let _ = std::fs::remove_dir_all(&local.root);
        }
    }
}

/// Runs `body` on a thread of its own and returns what it returns, or panics with a message
/// naming `what` if it has not finished within `limit`: a test that would hang fails instead
/// (its stuck thread is left behind and ends with the test process). A panic in `body` is
/// passed on as it is.
pub fn within<T: Send + 'static>(
    limit: std::time::Duration,
    what: &str,
    body: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (sender, receiver) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(what.to_owned())
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
            let _ = sender.send(result);
        })
        .expect("cannot start a test thread");
    match receiver.recv_timeout(limit) {
        Ok(Ok(value)) => {
            let _ = thread.join();
            value
        }
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!(
            "{what} did not finish within {} s: it hangs (its thread is left running)",
            limit.as_secs()
        ),
    }
}

/// `url` with its connections' search_path set to `schema`.
pub fn with_search_path(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-csearch_path%3D{schema}")
}

/// A port nobody listens on right now.
pub fn free_port(listen: &str) -> Result<u16, String> {
    let listener =
        TcpListener::bind((listen, 0)).map_err(|e| format!("cannot bind {listen}: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

fn binaries() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("MR_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let versions = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("no PostgreSQL server under /usr/lib/postgresql ({e})"))?;
    versions
        .filter_map(|v| {
            let v = v.ok()?;
            let version: u32 = v.file_name().to_str()?.parse().ok()?;
            let bin = v.path().join("bin");
            bin.join("postgres").is_file().then_some((version, bin))
        })
        .max()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no /usr/lib/postgresql/*/bin/postgres".to_owned())
}

fn libfaketime() -> Result<String, String> {
    let lib = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|d| d.path().join("faketime/libfaketime.so.1"))
        .find(|p| p.is_file());
    lib.map(|p| p.display().to_string()).ok_or_else(|| {
        "libfaketime is not installed (apt-get install libfaketime): it shifts the server's clock"
            .to_owned()
    })
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Makes `user` own `path`, so the server running as `user` can use it.
fn give_to(path: &Path, user: &str) -> Result<(), String> {
    let status = Command::new("chown")
        .arg(user)
        .arg(path)
        .status()
        .map_err(|e| format!("cannot run chown: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "chown {user} {} failed (is there a `{user}` user?)",
            path.display()
        ))
    }
}

/// The command for PostgreSQL program `program`, as `run_as` with `env` set, inside network
/// namespace `netns` if one is given. (Stopping a server needs no namespace: `pg_ctl stop`
/// signals the process named in the data directory.)
fn command(
    bin: &Path,
    run_as: Option<&str>,
    env: &[(String, String)],
    netns: Option<&str>,
    program: &str,
) -> Command {
    // [ip netns exec NS] [runuser -u USER --] env K=V... PROGRAM
    let mut prefix: Vec<&str> = Vec::new();
    if let Some(ns) = netns {
        prefix.extend(["ip", "netns", "exec", ns]);
    }
    if let Some(user) = run_as {
        prefix.extend(["runuser", "-u", user, "--"]);
    }
    prefix.push("env");
    let mut command = Command::new(prefix[0]);
    command.args(&prefix[1..]);
    for (key, value) in env {
        command.arg(format!("{key}={value}"));
    }
    command.arg(bin.join(program));
    command
}

fn run(
    bin: &Path,
    run_as: Option<&str>,
    env: &[(String, String)],
    netns: Option<&str>,
    program: &str,
    args: &[&std::ffi::OsStr],
) -> Result<(), String> {
    let output = command(bin, run_as, env, netns, program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn stop(root: &Path, bin: &Path, run_as: Option<&str>) {
    let data = root.join("data");
    let _ = run(
        bin,
        run_as,
        &[],
        None,
        "pg_ctl",
        &[
            "-D".as_ref(),
            data.as_os_str(),
            "-m".as_ref(),
            "immediate".as_ref(),
            "stop".as_ref(),
        ],
    );
}

/// A process that stops the server and removes `root` once this process has exited (in its
/// own session, so a ^C to the tests does not kill it first).
fn watchdog(root: &Path, bin: &Path, run_as: Option<&str>) -> Result<Child, String> {
    let stop = command(bin, run_as, &[], None, "pg_ctl");
    let mut stop_line: Vec<String> = vec![stop.get_program().to_string_lossy().into_owned()];
    stop_line.extend(stop.get_args().map(|a| a.to_string_lossy().into_owned()));
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.2; done; {stop} -D '{data}' -m immediate stop >/dev/null 2>&1; rm -rf '{root}'",
        pid = std::process::id(),
        stop = stop_line.join(" "),
        data = root.join("data").display(),
        root = root.display(),
    );
    Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the server's watchdog: {e}"))
}
