//! Ctrl-C (SIGINT) during `mr-host run`: the process stops at once, as after a crash (every
//! committed slice is kept, leases of a process that is gone are taken over at once), after
//! saying which job stopped and how to resume it; the exit status is 130 (128 + SIGINT).
//!
//! The signal handler only sets a flag (the one thing a handler may safely do); a thread
//! watching the flag prints the message and exits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn handler(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// From now on, SIGINT stops this process with the message for job `id`. Without a handler
/// (it could not be installed) Ctrl-C still stops the process, only without the message.
pub fn on_interrupt(job: i64) {
    // The one unsafe block of mr-host: std has no way to install a signal handler.
    // SAFETY: `sigaction` with a zeroed struct, an empty mask and a handler that only stores
    // to an atomic, which is async-signal-safe.
    #[allow(unsafe_code)]
    let installed = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut()) == 0
    };
    if !installed {
        return;
    }
    std::thread::spawn(move || {
        loop {
            if INTERRUPTED.load(Ordering::SeqCst) {
                // Off the progress bar's line first, when there is one.
                let newline = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                    "\n"
                } else {
                    ""
                };
                eprintln!(
                    "{newline}interrupted: job {job} stopped; rerun the same command to resume it from its last committed slice"
                );
                std::process::exit(130);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
}
