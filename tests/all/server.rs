//! A running `mr-host serve` for the end-to-end tests, and a small HTTP client for it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::mr_host;

pub const TOKEN: &str = "test-token-0123456789";

/// `mr-host serve` on a free loopback port; killed when dropped.
pub struct Server {
    child: Child,
    pub url: String,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    /// Starts `mr-host serve --db DB --listen 127.0.0.1:0 EXTRA...` and waits for its address.
    pub fn start(db: &Path, extra: &[&str]) -> Server {
        Server::start_with_env(db, extra, &[])
    }

    /// [`Server::start`] with `env` added to the server's environment.
    pub fn start_with_env(db: &Path, extra: &[&str], env: &[(&str, &Path)]) -> Server {
        let mut child = mr_host()
            .args(["serve", "--db", super::s(db), "--listen", "127.0.0.1:0"])
            .args(extra)
            .envs(env.iter().copied())
            .env_remove("MR_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("serving ") {
                    let _ = tx.send(url.to_owned());
                }
                kept.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("serve did not start:\n{}", log.lock().unwrap()));
        Server {
            child,
            url,
            stderr: log,
        }
    }

    /// What the server wrote to stderr so far.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "serve did not stop on SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An answer: status and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn answer(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>, what: &str) -> Answer {
    let mut r = r.unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = r.status().as_u16();
    let body = r.body_mut().read_to_string().unwrap_or_default();
    Answer { status, body }
}

/// A request: `method` `url`, with the bearer token when `token` is given.
pub fn call(method: &str, url: &str, token: Option<&str>) -> Answer {
    let agent = agent();
    let auth = token.map(|t| format!("Bearer {t}"));
    match method {
        "GET" => {
            let mut req = agent.get(url);
            if let Some(a) = &auth {
                req = req.header("authorization", a);
            }
            answer(req.call(), &format!("{method} {url}"))
        }
        "DELETE" => {
            let mut req = agent.delete(url);
            if let Some(a) = &auth {
                req = req.header("authorization", a);
            }
            answer(req.call(), &format!("{method} {url}"))
        }
        "POST" => post(url, token, "application/json", b"{}"),
        "PUT" => {
            let mut req = agent.put(url);
            if let Some(a) = &auth {
                req = req.header("authorization", a);
            }
            answer(req.send(&b""[..]), &format!("PUT {url}"))
        }
        m => panic!("no such method {m}"),
    }
}

/// A POST of `body`.
pub fn post(url: &str, token: Option<&str>, content_type: &str, body: &[u8]) -> Answer {
    let mut req = agent().post(url).header("content-type", content_type);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    answer(req.send(body), &format!("POST {url}"))
}

/// `POST /api/jobs` with the component file (or its SHA-256) and `spec`.
pub fn submit(
    server: &Server,
    token: Option<&str>,
    component: Option<&Path>,
    sha256: Option<&str>,
    spec: &serde_json::Value,
) -> Answer {
    let boundary = "mr-test-boundary-7f3a";
    let mut body = Vec::new();
    let mut part = |name: &str, filename: Option<&str>, data: &[u8]| {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(
                format!(
                    "content-disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\ncontent-type: application/wasm\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("content-disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    };
    if let Some(c) = component {
        part("component", Some("job.wasm"), &std::fs::read(c).unwrap());
    }
    if let Some(sha) = sha256 {
        part("component_sha256", None, sha.as_bytes());
    }
    part("spec", None, spec.to_string().as_bytes());
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    post(
        &format!("{}/api/jobs", server.url),
        token,
        &format!("multipart/form-data; boundary={boundary}"),
        &body,
    )
}

/// Polls `GET /api/jobs/{id}` until `done` says so (at most `within`); returns the document.
pub fn wait_for(
    server: &Server,
    id: i64,
    within: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let doc = call("GET", &format!("{}/api/jobs/{id}", server.url), Some(TOKEN)).json();
        if done(&doc) {
            return doc;
        }
        assert!(
            started.elapsed() < within,
            "job {id} did not get there in {within:?}: {doc:#}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads Server-Sent Events from `url` (plain HTTP/1.1 over a socket: the stream never ends,
/// so it is read line by line as it comes) until `enough` says so or `within` passes; returns
/// their `data:` lines.
pub fn sse_until(url: &str, within: Duration, enough: impl Fn(&[String]) -> bool) -> Vec<String> {
    use std::io::Write;
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream.set_read_timeout(Some(within)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nhost: {host}\r\nauthorization: Bearer {TOKEN}\r\naccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let started = Instant::now();
    let mut reader = BufReader::new(stream);
    let mut data = Vec::new();
    let mut line = String::new();
    while started.elapsed() < within {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if let Some(d) = line.trim_end().strip_prefix("data: ") {
            data.push(d.to_owned());
            if enough(&data) {
                break;
            }
        }
    }
    data
}

/// Everything left in a pipe.
pub fn drain(mut r: impl std::io::Read) -> String {
    let mut text = String::new();
    let _ = r.read_to_string(&mut text);
    text
}

/// An HTTP receiver on loopback that answers 200 and keeps every body it gets.
pub fn receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/done", listener.local_addr().unwrap());
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut data = Vec::new();
            let mut buf = [0u8; 8192];
            let body = loop {
                let n = stream.read(&mut buf).unwrap_or(0);
                data.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&data).into_owned();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length: usize = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if data.len() >= end + 4 + length || n == 0 {
                        break text[end + 4..].to_owned();
                    }
                } else if n == 0 {
                    break String::new();
                }
            };
            seen.lock().unwrap().push(body);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, bodies)
}

/// Writes `DIR/pipeline.toml`: pipeline `name`, two stages of the wordcount guest, `count`
/// reading `input` and `recount` reading `stage:count` (each with 2 reducers). Returns its path.
pub fn two_stage_pipeline(dir: &Path, name: &str, input: &Path) -> std::path::PathBuf {
    let file = dir.join("pipeline.toml");
    let wordcount = super::guest("wordcount");
    std::fs::write(
        &file,
        format!(
            "name = {name:?}\n\n\
             [stages.count]\njob = {wc:?}\ninput = [{input:?}]\nreducers = 2\n\n\
             [stages.recount]\njob = {wc:?}\ninput = [\"stage:count\"]\nreducers = 2\n",
            wc = super::s(&wordcount),
            input = super::s(input),
        ),
    )
    .unwrap();
    file
}
