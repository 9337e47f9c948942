//! Pruning the compiled-component cache that `mr-engine` fills (`$MR_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/mr/components`, else `~/.cache/mr/components`).
//!
//! Every distinct component compiled adds an entry (about 35 MB for a Python or JavaScript
//! job), so an edit-build-run loop grows the cache by that much per edit. At the end of each
//! `mr-host` command the cache is brought back within its bounds, least recently used first:
//!
//! - entries not used for [`DEFAULT_MAX_AGE_DAYS`] days (`MR_CACHE_MAX_AGE_DAYS`) are removed;
//! - then, while the entries take more than [`DEFAULT_MAX_BYTES`] (`MR_CACHE_MAX_SIZE`, e.g.
//!   `2G`), the least recently used is removed;
//! - temporary files a crashed writer left behind are removed after an hour.
//!
//! "Used" is the later of a file's access and modification times: the engine reads an entry
//! whenever it loads that component, and the access time records it (under the usual
//! `relatime` mount option at least once a day, enough for a bound in days; on a `noatime`
//! filesystem the order is by when an entry was written). The cost is one directory listing
//! and one `stat` per entry. A removed entry only costs a recompilation the next time.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Largest total size of the cache's entries (2 GiB).
pub const DEFAULT_MAX_BYTES: u64 = 2 << 30;
/// Entries unused for longer than this many days are removed.
pub const DEFAULT_MAX_AGE_DAYS: u64 = 30;
/// How old a leftover temporary file must be before it is removed (one that young may still
/// be being written).
const TEMP_GRACE: Duration = Duration::from_secs(3600);

/// Prunes the default cache directory within the bounds the environment sets; once per process.
/// Problems are logged, never fatal: the cache is an optimisation.
pub fn prune_once() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        let Some(dir) = mr_engine::default_cache_dir() else {
            return;
        };
        let bounds = match Bounds::from_env() {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("not pruning the component cache: {e}");
                return;
            }
        };
        match prune(&dir, &bounds, SystemTime::now()) {
            Ok(removed) if !removed.is_empty() => tracing::debug!(
                "pruned {} entries from the component cache {}",
                removed.len(),
                dir.display()
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!("cannot prune the component cache {}: {e}", dir.display()),
        }
    });
}

/// How large and how old the cache may get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounds {
    pub max_bytes: u64,
    pub max_age: Duration,
}

impl Bounds {
    /// The defaults, overridden by `MR_CACHE_MAX_SIZE` and `MR_CACHE_MAX_AGE_DAYS`.
    fn from_env() -> Result<Self, String> {
        let max_bytes = match std::env::var("MR_CACHE_MAX_SIZE") {
            Ok(v) => mr_corpus::parse_size(&v).map_err(|e| format!("MR_CACHE_MAX_SIZE: {e}"))?,
            Err(_) => DEFAULT_MAX_BYTES,
        };
        let days = match std::env::var("MR_CACHE_MAX_AGE_DAYS") {
            Ok(v) => v
                .parse::<u64>()
                .map_err(|_| format!("MR_CACHE_MAX_AGE_DAYS={v:?} is not a number of days"))?,
            Err(_) => DEFAULT_MAX_AGE_DAYS,
        };
        Ok(Bounds {
            max_bytes,
            max_age: Duration::from_secs(days * 86_400),
        })
    }
}

/// One cache file.
struct Entry {
    path: PathBuf,
    bytes: u64,
    last_used: SystemTime,
}

/// Removes what is over `bounds` from `dir` as of `now`; returns the removed files. A missing
/// directory is an empty cache.
pub fn prune(dir: &Path, bounds: &Bounds, now: SystemTime) -> std::io::Result<Vec<PathBuf>> {
    let listing = match std::fs::read_dir(dir) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let age = |t: SystemTime| now.duration_since(t).unwrap_or_default();
    let mut removed = Vec::new();
    let mut entries = Vec::new();
    for item in listing {
        let item = item?;
        let name = item.file_name();
        let name = name.to_string_lossy();
        let Ok(meta) = item.metadata() else {
            continue; // gone meanwhile
        };
        if !meta.is_file() {
            continue;
        }
        let modified = meta.modified().unwrap_or(now);
        let last_used = meta.accessed().map_or(modified, |a| a.max(modified));
        let stale_temp = name.starts_with(".tmp-") && age(modified) > TEMP_GRACE;
        if name.ends_with(".cwasm") {
            entries.push(Entry {
                path: item.path(),
                bytes: meta.len(),
                last_used,
            });
        } else if stale_temp {
            remove(item.path(), &mut removed);
        }
    }
    // Least recently used first.
    entries.sort_by_key(|e| e.last_used);
    let mut total: u64 = entries.iter().map(|e| e.bytes).sum();
    for e in entries {
        if age(e.last_used) > bounds.max_age || total > bounds.max_bytes {
            total -= e.bytes;
            remove(e.path, &mut removed);
        }
    }
    Ok(removed)
}

/// Removes a cache file; one that another process removed first is not an error.
fn remove(path: PathBuf, removed: &mut Vec<PathBuf>) {
    match std::fs::remove_file(&path) {
        Ok(()) => removed.push(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(
            "cannot remove {} from the component cache: {e}",
            path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn file(dir: &Path, name: &str, bytes: usize, used_days_ago: u64, now: SystemTime) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, vec![0u8; bytes]).unwrap();
        let at = now - DAY * used_days_ago as u32;
        set_times(
            &path,
            std::fs::FileTimes::new().set_accessed(at).set_modified(at),
        );
        path
    }

    fn set_times(path: &Path, times: std::fs::FileTimes) {
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_times(times).unwrap();
    }

    fn names(paths: &[PathBuf]) -> Vec<String> {
        let mut n: Vec<String> = paths
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    }

    #[test]
    fn old_entries_go_then_the_least_recently_used_until_within_size() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        file(dir.path(), "a-old.cwasm", 10, 40, now);
        file(dir.path(), "b.cwasm", 100, 5, now);
        file(dir.path(), "c.cwasm", 100, 3, now);
        file(dir.path(), "d.cwasm", 100, 1, now);
        file(dir.path(), ".tmp-1-ThreadId(2)", 10, 2, now);
        file(dir.path(), "unrelated.txt", 10, 90, now);
        let bounds = Bounds {
            max_bytes: 250,
            max_age: DAY * 30,
        };
        let removed = prune(dir.path(), &bounds, now).unwrap();
        assert_eq!(
            names(&removed),
            [".tmp-1-ThreadId(2)", "a-old.cwasm", "b.cwasm"]
        );
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["c.cwasm", "d.cwasm", "unrelated.txt"]);
        // Within bounds now: a second pass removes nothing.
        assert!(prune(dir.path(), &bounds, now).unwrap().is_empty());
    }

    #[test]
    fn a_recent_access_keeps_an_old_entry() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let path = file(dir.path(), "x.cwasm", 10, 40, now);
        set_times(&path, std::fs::FileTimes::new().set_accessed(now - DAY));
        let bounds = Bounds {
            max_bytes: DEFAULT_MAX_BYTES,
            max_age: DAY * 30,
        };
        assert!(prune(dir.path(), &bounds, now).unwrap().is_empty());
        assert!(
            prune(&dir.path().join("missing"), &bounds, now)
                .unwrap()
                .is_empty()
        );
    }
}
