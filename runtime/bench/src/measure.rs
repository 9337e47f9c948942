//! Runs one command as a child process and measures its whole process tree: wall time, CPU time
//! (user + system) and peak resident set size, from the kernel's `wait4` accounting.
//!
//! The bench process makes itself a *child subreaper* (`PR_SET_CHILD_SUBREAPER`), so a
//! descendant whose parent exits without waiting for it (a JVM left behind by its Python driver,
//! say) is re-parented to us instead of to init; we reap it too and count it. A measurement ends
//! when the last process of the tree has been reaped.
//!
//! What the numbers mean, exactly (Linux `getrusage(2)`):
//! - CPU time is the sum, over every process of the tree, of its user and system time.
//! - `ru_maxrss` of a reaped child is the largest resident set of that child *or of any one
//!   descendant it waited for*; we take the maximum over everything we reap. So peak RSS is the
//!   largest single process of the tree, not the sum of processes that ran at the same time
//!   (relevant for pipelines and for PySpark's Python driver + JVM).
#![allow(unsafe_code)] // libc calls: prctl, wait4, kill

use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::Context;

/// What one run of a process tree cost.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// From just before the spawn to the reaping of the tree's last process.
    pub wall: Duration,
    /// User time summed over the tree.
    pub user: Duration,
    /// System time summed over the tree.
    pub sys: Duration,
    /// The largest resident set of any single process of the tree, in bytes.
    pub max_rss: u64,
    /// How the command itself (the tree's root) ended.
    pub status: ExitStatus,
    /// The run was killed for exceeding its timeout.
    pub timed_out: bool,
}

impl Usage {
    /// User plus system time.
    pub fn cpu(&self) -> Duration {
        self.user + self.sys
    }
}

/// Makes this process the reaper of its orphaned descendants (Linux only; elsewhere orphans go to
/// init and are not counted).
pub fn become_subreaper() -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes one integer argument and touches no
        // memory of ours.
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Reaps, without blocking, children left over from earlier work (so that they are not counted
/// in the next measurement).
pub fn reap_leftovers() {
    loop {
        let mut status = 0;
        // SAFETY: wait4 writes only into `status`; a null rusage pointer is allowed.
        let pid = unsafe { libc::wait4(-1, &mut status, libc::WNOHANG, std::ptr::null_mut()) };
        if pid <= 0 {
            return;
        }
    }
}

/// Spawns `command` in a new process group and waits for its whole tree. After `timeout` the
/// group is killed (SIGKILL) and the usage so far is returned with `timed_out` set.
///
/// This reaps *any* child of the calling process, so nothing else in the process may have
/// children running at the same time; calls to `run` are serialised by a lock.
pub fn run(command: &mut Command, timeout: Duration) -> io::Result<Usage> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    command.process_group(0);
    let start = Instant::now();
    let child = command.spawn()?;
    let root = child.id() as libc::pid_t;
    // Dropping a `Child` neither waits nor kills; we reap it ourselves below.
    drop(child);

    let (stop, stopped) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(timeout) {
            // SAFETY: kill sends a signal to the process group we created; no memory involved.
            unsafe { libc::kill(-root, libc::SIGKILL) };
            true
        } else {
            false
        }
    });

    let mut user = Duration::ZERO;
    let mut sys = Duration::ZERO;
    let mut max_rss = 0u64;
    let mut root_status = None;
    loop {
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value of this plain C struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 writes only into `status` and `usage`, both live locals.
        let pid = unsafe { libc::wait4(-1, &mut status, 0, &mut usage) };
        if pid < 0 {
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ECHILD) => break, // the whole tree is gone
                _ => {
                    let _ = stop.send(());
                    let _ = watchdog.join();
                    return Err(err);
                }
            }
        }
        user += timeval(usage.ru_utime);
        sys += timeval(usage.ru_stime);
        // Linux reports ru_maxrss in KiB.
        max_rss = max_rss.max(u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024);
        if pid == root {
            root_status = Some(ExitStatus::from_raw(status));
        }
    }
    let wall = start.elapsed();
    let _ = stop.send(());
    let timed_out = watchdog.join().unwrap_or(false);
    let status = root_status.ok_or_else(|| {
        io::Error::other("the child was reaped by someone else (another thread waited for it)")
    })?;
    Ok(Usage {
        wall,
        user,
        sys,
        max_rss,
        status,
        timed_out,
    })
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
}

/// Runs `command` to its end and returns (wall seconds, CPU seconds of the process and the
/// children it reaped); an error, with its stderr, when it fails. Waits for that one process only (unlike [`run`], which reaps every child: a caller with
/// servers as children uses this), its stderr going to `log`.
pub fn timed(command: &mut Command, what: &str, log: &Path) -> anyhow::Result<(f64, f64)> {
    let started = Instant::now();
    let child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .spawn()
        .with_context(|| format!("cannot start {what}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4 writes only into `status` and `usage`, both live locals.
        let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if got == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err).with_context(|| format!("waiting for {what}"));
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let cpu = seconds(usage.ru_utime) + seconds(usage.ru_stime);
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        anyhow::bail!(
            "{what} failed (wait status {status}); its stderr, {}:\n{}",
            log.display(),
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
    Ok((wall, cpu))
}

/// CPU seconds (user + system) process `pid` has used so far, from `/proc/PID/stat`; `None`
/// when it cannot be read. For a server the benchmark started, whose work is part of a run's
/// cost but not of the run's own processes.
pub fn cpu_of(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14,
    // stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf reads a constant of the system; no memory is involved.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (per_second > 0).then(|| ticks as f64 / per_second as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_process_tree_including_orphans() {
        become_subreaper().unwrap();
        // The shell starts a CPU-bound grandchild in the background and exits at once: the
        // grandchild is orphaned, re-parented to us and must still be waited for and counted.
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "(i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done) & exit 3",
        ]);
        let usage = run(&mut cmd, Duration::from_secs(60)).unwrap();
        assert_eq!(usage.status.code(), Some(3));
        assert!(!usage.timed_out);
        assert!(usage.cpu() > Duration::from_millis(20), "{usage:?}");
        assert!(usage.max_rss > 0);
    }

    #[test]
    fn kills_a_tree_after_its_timeout() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 30 & sleep 30"]);
        let usage = run(&mut cmd, Duration::from_millis(200)).unwrap();
        assert!(usage.timed_out);
        assert!(usage.wall < Duration::from_secs(10), "{usage:?}");
        assert_eq!(usage.status.signal(), Some(libc::SIGKILL));
    }
}
