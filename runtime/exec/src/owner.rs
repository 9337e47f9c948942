//! Who holds a lease, and whether that holder still exists.
//!
//! An owner is `HOST:PID:START#THREAD`, START being the process's start time in clock ticks
//! since boot (`/proc/PID/stat` field 22). A lease normally ends by expiring; but when a worker
//! on this host finds a lease whose process is gone (or is a zombie, or whose PID now belongs to
//! a process started at another time), it may take the lease over at once. That is what lets a
//! rerun after `kill -9` continue immediately instead of waiting out the lease. A stopped
//! (SIGSTOP) process still exists, so its leases are only taken over once they expire, and its
//! later commits are fenced off.

use std::sync::OnceLock;

struct Me {
    host: String,
    pid: u32,
    start: String,
}

fn me() -> &'static Me {
    static ME: OnceLock<Me> = OnceLock::new();
    ME.get_or_init(|| {
        let pid = std::process::id();
        Me {
            host: hostname(),
            pid,
            start: process_start(pid)
                .map(|(_, start)| start)
                .unwrap_or_else(|| "0".into()),
        }
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty() && !h.contains([':', '#']))
        .unwrap_or_else(|| "localhost".into())
}

/// (state, start time) of a process, from `/proc/PID/stat`.
fn process_start(pid: u32) -> Option<(char, String)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: parse after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); field 22 (start time) is at index 19.
    Some((
        fields.first()?.chars().next()?,
        (*fields.get(19)?).to_owned(),
    ))
}

/// The owner name for worker thread `thread` of this process.
pub(crate) fn owner(thread: u32) -> String {
    let me = me();
    format!("{}:{}:{}#{thread}", me.host, me.pid, me.start)
}

/// Whether `owner` names a process on this host that no longer exists. Unknown formats, other
/// hosts and systems without `/proc` answer "not dead": those leases end by expiring.
pub(crate) fn is_dead(owner: &str) -> bool {
    let me = me();
    let process = owner.split('#').next().unwrap_or(owner);
    let mut parts = process.split(':');
    let (Some(host), Some(pid), Some(start)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    if host != me.host || !std::path::Path::new("/proc/self/stat").exists() {
        return false;
    }
    if pid == me.pid && start == me.start {
        return false;
    }
    match process_start(pid) {
        None => true,
        Some((state, started)) => state == 'Z' || state == 'X' || started != start,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_finished_child_is_dead() {
        assert!(!is_dead(&owner(0)));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = process_start(pid).map(|s| s.1).unwrap_or_default();
        child.wait().unwrap();
        let name = format!("{}:{pid}:{start}#0", me().host);
        assert!(is_dead(&name), "{name}");
        // Another host, or a name this module did not write: never presumed dead.
        assert!(!is_dead(&format!("elsewhere:{pid}:{start}#0")));
        assert!(!is_dead("w1"));
    }
}
