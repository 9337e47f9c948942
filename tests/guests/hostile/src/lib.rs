//! Test fixture: a map-only job that attacks its sandbox when a record says so. Other records
//! are echoed, so the rest of the input is processed normally.
//!
//! - `LOOP`: spins forever (the call timeout must stop it);
//! - `HOARD`: allocates and touches memory in 16 MiB steps, up to 4 GiB (the memory limit must
//!   stop it);
//! - `RECURSE`: recurses without bound (a stack-overflow trap, never a host crash);
//! - `FLOOD`: returns 1 GiB of output in one call (the output cap must refuse it);
//! - `PROBE [PORT]`: tries to read `/etc/passwd`, list `/`, read the environment and connect
//!   to 127.0.0.1:PORT, and emits one record per attempt saying what it got;
//! - `SLEEP`: `std::thread::sleep` for an hour (waits in the host, where no epoch check runs);
//! - `BLOCK`: blocks on a monotonic-clock pollable for an hour (`pollable.block`);
//! - `POLL`: waits for a monotonic-clock pollable for an hour with `wasi:io/poll.poll`;
//! - `EXIT`: calls `std::process::exit(3)` (WASI 0.2 `exit`, which carries only failure);
//! - `OOB`: reads far past the end of its linear memory (a plain wasm trap);
//! - `COUNTERS N`: increments N distinct counters, calling the host directly (as a guest that
//!   does not use the SDK's buffering would);
//! - `LONG-COUNTER N`: increments one counter whose name is N bytes long;
//! - `LONG-LOG N`: logs one line of N bytes;
//! - `LONG-ERROR N`: returns a job error whose message is N bytes long.
//!
//! With `--param count-in-events=NAME`, it increments counter NAME (directly, past the SDK,
//! which drops such increments itself) while handling every lifecycle event.
use std::hint::black_box;
use std::io::Write;
use std::time::Duration;

use mr_sdk::bindings::mapreduce::mr::job::{context as host, types::LogLevel};
use mr_sdk::prelude::*;

/// An hour: far past any call timeout a test sets.
const HOUR: Duration = Duration::from_secs(3600);

#[derive(Default)]
pub struct Hostile {
    hoard: Vec<Vec<u8>>,
}

impl Job for Hostile {
    const INFO: JobInfo = JobInfo::new("hostile", "0.0.1")
        .description("Misbehaves on marked records.")
        .params(&[Param::optional(
            "count-in-events",
            "Increment this counter while handling lifecycle events",
        )]);
}

// Unbounded on purpose: the sandbox must turn it into a stack-overflow trap.
#[allow(unconditional_recursion)]
// Its frames hold only wasm locals (no address-taken data), so they live on the wasm stack,
// whose limit the host sets, not on the guest's own shadow stack in linear memory.
fn recurse(depth: u64) -> u64 {
    let next = black_box(depth.wrapping_mul(31).wrapping_add(7));
    1 + recurse(black_box(depth + 1)) + black_box(next)
}

/// The number after the marker word, e.g. `1000` in `COUNTERS 1000`.
fn count(line: &str) -> usize {
    line.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

impl Mapper for Hostile {
    fn map(&mut self, record: Record<'_>, out: &mut Emitter) -> Result {
        let line = String::from_utf8_lossy(record.value).into_owned();
        match line.split_whitespace().next().unwrap_or("") {
            "SLEEP" => std::thread::sleep(HOUR),
            "BLOCK" => {
                let nanos = HOUR.as_nanos() as u64;
                wasip2::clocks::monotonic_clock::subscribe_duration(nanos).block();
            }
            "POLL" => {
                let nanos = HOUR.as_nanos() as u64;
                let pollable = wasip2::clocks::monotonic_clock::subscribe_duration(nanos);
                wasip2::io::poll::poll(&[&pollable]);
            }
            "EXIT" => std::process::exit(3),
            "OOB" => {
                // Far past any memory a guest can have (4 GiB is the most a 32-bit one can
                // address; this one has far less), so the load traps.
                let address = black_box(u32::MAX as usize - 16) as *const u8;
                // SAFETY: none; trapping is the point.
                let byte = unsafe { address.read_volatile() };
                out.emit(b"", [byte]);
            }
            "COUNTERS" => {
                for i in 0..count(&line) {
                    host::counter_add(&format!("counter-{i}"), 1);
                }
            }
            "LONG-COUNTER" => host::counter_add(&"c".repeat(count(&line)), 1),
            "LONG-LOG" => host::log(LogLevel::Warn, &"l".repeat(count(&line))),
            "LONG-ERROR" => mr_sdk::bail!("{}", "e".repeat(count(&line))),
            "LOOP" => {
                let mut x = 0u64;
                loop {
                    x = black_box(x.wrapping_add(1));
                }
            }
            "HOARD" => {
                for _ in 0..256 {
                    let mut block = vec![0u8; 16 << 20];
                    for i in (0..block.len()).step_by(4096) {
                        block[i] = 1;
                    }
                    self.hoard.push(block);
                }
                out.emit(b"", "hoarded 4 GiB");
            }
            "RECURSE" => {
                out.emit(b"", recurse(0).to_string());
            }
            "FLOOD" => {
                let value = vec![b'x'; 16 << 20];
                for _ in 0..64 {
                    out.emit(b"", &value);
                }
            }
            "PROBE" => {
                let port = line.split_whitespace().nth(1).unwrap_or("9");
                let mut report = |what: &str, got: String| {
                    out.emit(what, got);
                };
                report(
                    "read /etc/passwd",
                    match std::fs::read("/etc/passwd") {
                        Ok(bytes) => format!("GOT {} bytes", bytes.len()),
                        Err(e) => format!("refused: {e}"),
                    },
                );
                report(
                    "list /",
                    match std::fs::read_dir("/") {
                        Ok(entries) => format!("GOT {} entries", entries.count()),
                        Err(e) => format!("refused: {e}"),
                    },
                );
                report(
                    "env HOME",
                    match std::env::var("HOME") {
                        Ok(v) => format!("GOT {v}"),
                        Err(e) => format!("refused: {e}"),
                    },
                );
                report(
                    "env count",
                    format!("{} variables", std::env::vars_os().count()),
                );
                report(
                    "connect 127.0.0.1",
                    match std::net::TcpStream::connect(format!("127.0.0.1:{port}")) {
                        Ok(mut s) => {
                            let _ = s.write_all(b"hello from the sandbox");
                            "GOT a connection".to_owned()
                        }
                        Err(e) => format!("refused: {e}"),
                    },
                );
            }
            _ => out.emit(b"", record.value),
        }
        Ok(())
    }
}

impl Lifecycle for Hostile {
    fn on_event(&mut self, _kind: EventKind, _task: &mr_sdk::context::Task) -> Result {
        if let Some(name) = param("count-in-events") {
            host::counter_add(&name, 1);
        }
        Ok(())
    }
}

mr_sdk::export_job!(Hostile: map, events);
