//! Crash injection for the reliability tests, compiled in only with the `failpoints` feature
//! (the test suite's builds turn it on through the CLI's dev-dependencies; a release build
//! carries no hook at all).
//!
//! With the feature, when the environment variable `MR_FAILPOINT` is `NAME` or `NAME:N`, the
//! process kills itself with SIGKILL the N-th time (default first) execution reaches
//! `failpoint(NAME)`: nothing may run after that point, exactly as with `kill -9`.

/// A named crash point (a no-op unless built with the `failpoints` feature).
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn failpoint(_name: &str) {}

/// A named crash point: SIGKILLs this process when `MR_FAILPOINT` names it (see the module).
#[cfg(feature = "failpoints")]
pub fn failpoint(name: &str) {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
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
