//! Run errors: each names the job, phase, shard or partition and, for guest failures, the input
//! record's location and the guest's own words.

use std::path::PathBuf;

use mr_engine::GuestError;

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// Input resolution, planning or reading failed.
    #[error(transparent)]
    Input(#[from] mr_io::InputError),
    /// A run file could not be written or read back.
    #[error(transparent)]
    Shuffle(#[from] mr_shuffle::ShuffleError),
    /// The output directory already holds files.
    #[error(
        "output directory {} is not empty; choose a new directory or pass --overwrite to replace its contents",
        path.display()
    )]
    OutputNotEmpty {
        /// The directory.
        path: PathBuf,
    },
    /// Writing output failed.
    #[error("cannot write {}: {source}", path.display())]
    Output {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The guest failed.
    #[error("job `{job}` failed in {phase} {unit} {index} (attempt {attempt}){}: {error}", location.as_ref().map(|l| format!(" at {l}")).unwrap_or_default())]
    Guest {
        /// Job id.
        job: String,
        /// `map`, `combine` or `reduce`.
        phase: &'static str,
        /// `shard` or `partition`.
        unit: &'static str,
        /// Shard or partition index.
        index: u32,
        /// Attempt number.
        attempt: u32,
        /// Where in the input: `path:line`, or the range of a failed batch.
        location: Option<String>,
        /// The guest failure, with its output.
        error: Box<GuestError>,
    },
    /// A worker thread panicked (a bug in mr, not in the job).
    #[error("a worker thread panicked (this is a bug in mr-host): {0}")]
    WorkerPanicked(String),
}
