//! Test fixture: a map-only job that attacks its sandbox when a record says so. Other records
//! are echoed, so the rest of the input is processed normally.
//!
//! - `LOOP`: spins forever (the call timeout must stop it);
//! - `HOARD`: allocates and touches memory in 16 MiB steps, up to 4 GiB (the memory limit must
//!   stop it);
//! - `RECURSE`: recurses without bound (a stack-overflow trap, never a host crash);
//! - `FLOOD`: returns 1 GiB of output in one call (the output cap must refuse it);
//! - `PROBE [PORT]`: tries to read `/etc/passwd`, list `/`, read the environment and connect
//!   to 127.0.0.1:PORT, and emits one record per attempt saying what it got.
use std::hint::black_box;
use std::io::Write;

use mr_sdk::prelude::*;

#[derive(Default)]
pub struct Hostile {
    hoard: Vec<Vec<u8>>,
}

impl Job for Hostile {
    const INFO: JobInfo =
        JobInfo::new("hostile", "0.0.1").description("Misbehaves on marked records.");
}

// Unbounded on purpose: the sandbox must turn it into a stack-overflow trap.
#[allow(unconditional_recursion)]
// Its frames hold only wasm locals (no address-taken data), so they live on the wasm stack,
// whose limit the host sets, not on the guest's own shadow stack in linear memory.
fn recurse(depth: u64) -> u64 {
    let next = black_box(depth.wrapping_mul(31).wrapping_add(7));
    1 + recurse(black_box(depth + 1)) + black_box(next)
}

impl Mapper for Hostile {
    fn map(&mut self, record: Record<'_>, out: &mut Emitter) -> Result {
        let line = String::from_utf8_lossy(record.value).into_owned();
        match line.split_whitespace().next().unwrap_or("") {
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

mr_sdk::export_job!(Hostile: map);
