//! A real S3-compatible server for tests and benchmarks (compiled with the `testing` feature):
//! `s3s-fs` over a directory, `ROOT/BUCKET/KEY` being object `s3://BUCKET/KEY`. The binary is
//! `$MR_S3S_FS`, else `target/tools/bin/s3s-fs`, which `scripts/setup-services.sh` builds.
//! Stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server's credentials.
const ACCESS_KEY: &str = "mr-test";
const SECRET_KEY: &str = "mr-test-secret";

/// A running `s3s-fs` (see the module).
pub struct S3Server {
    child: Child,
    /// `http://ADDRESS:PORT`.
    pub endpoint: String,
}

impl S3Server {
    /// Serves `root` on `address:port`, inside network namespace `netns` when one is given (a
    /// simulated host; `address` must be reachable from this process). `port: None` takes a free
    /// one (outside a namespace only). Returns once the server accepts connections; the error
    /// says why it could not start.
    pub fn start(
        root: &Path,
        netns: Option<&str>,
        address: &str,
        port: Option<u16>,
    ) -> Result<S3Server, String> {
        let binary = std::env::var_os("MR_S3S_FS")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tools/bin/s3s-fs")
            });
        if !binary.is_file() {
            return Err(format!(
                "the S3 server is missing: {} does not exist; run scripts/setup-services.sh (or set MR_S3S_FS)",
                binary.display()
            ));
        }
        let port = match port {
            Some(port) => port,
            None => std::net::TcpListener::bind((address, 0))
                .and_then(|l| l.local_addr())
                .map_err(|e| format!("no free port on {address}: {e}"))?
                .port(),
        };
        let mut command = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&binary);
                c
            }
            None => Command::new(&binary),
        };
        let child = command
            .args(["--host", address, "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let server = S3Server {
            child,
            endpoint: format!("http://{address}:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect((address, port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!(
                    "the S3 server {} did not start listening on {address}:{port} within 10 s",
                    binary.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    /// The environment every S3 tool reads, pointing at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    /// The server's process id (to read the CPU time it spent).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
