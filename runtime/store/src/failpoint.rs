//! Crash injection for the reliability tests, compiled in only with the `failpoints` feature
//! (the test suite's builds turn it on through the CLI's dev-dependencies; a release build
//! carries no hook at all).
//!
//! With the feature, when the environment variable `MR_FAILPOINT` is `NAME` or `NAME:N`, the
//! process kills itself with SIGKILL the N-th time (default first) execution reaches
//! `failpoint(NAME)`: nothing may run after that point, exactly as with `kill -9`.
//!
//! A pause point opens a race window on purpose: when `MR_PAUSEPOINT` is `NAME` and
//! `MR_PAUSEPOINT_DIR` a directory, the first thread to reach `pausepoint(NAME)` creates
//! `DIR/reached` and waits until the test creates `DIR/release` (at most two minutes). Every crash
//! point is a pause point too, so a test can stop a worker exactly where it would crash and do
//! something else to it meanwhile (cut its network, restart the database, kill its host).

/// A named crash point (a no-op unless built with the `failpoints` feature).
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn failpoint(_name: &str) {}

/// A named crash point: SIGKILLs this process when `MR_FAILPOINT` names it (see the module).
#[cfg(feature = "failpoints")]
pub fn failpoint(name: &str) {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    pausepoint(name);
    static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);
    let armed = ARMED.get_or_init(|| {
        let spec = std::env::var("MR_FAILPOINT").ok()?;
        let (point, n) = match spec.split_once(':') {
            Some((p, n)) => (p.to_owned(), n.parse().unwrap_or(1)),
            None => (spec, 1),
        };
        Some((point, n.max(1)))
    });
    let Some((point, n)) = armed else { return };
    if point != name || HITS.fetch_add(1, Ordering::Relaxed) + 1 != *n {
        return;
    }
    eprintln!(
        "mr: failpoint {name} reached: killing this process (pid {})",
        std::process::id()
    );
    // SIGKILL, not abort(): nothing may run after this point, exactly as with `kill -9`.
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &std::process::id().to_string()])
        .status();
    std::process::abort();
}

/// A named pause point (a no-op unless built with the `failpoints` feature).
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn pausepoint(_name: &str) {}

/// A named pause point: the first (or N-th) time it is reached, holds the thread until the
/// test releases it (see the module).
#[cfg(feature = "failpoints")]
pub fn pausepoint(name: &str) {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    // Read once: every crash point (each commit) asks.
    static ARMED: OnceLock<Option<(String, u64, std::path::PathBuf)>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);
    let armed = ARMED.get_or_init(|| {
        let spec = std::env::var("MR_PAUSEPOINT").ok()?;
        let dir = std::env::var_os("MR_PAUSEPOINT_DIR")?;
        let (point, n) = match spec.split_once(':') {
            Some((p, n)) => (p.to_owned(), n.parse().unwrap_or(1)),
            None => (spec, 1),
        };
        Some((point, n.max(1), dir.into()))
    });
    let Some((point, n, dir)) = armed else { return };
    if point != name || HITS.fetch_add(1, Ordering::SeqCst) + 1 != *n {
        return;
    }
    eprintln!(
        "mr: pausepoint {name} reached: waiting for {}/release",
        dir.display()
    );
    let _ = std::fs::write(dir.join("reached"), b"");
    let started = std::time::Instant::now();
    while !dir.join("release").exists() && started.elapsed() < std::time::Duration::from_secs(120) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
