//! Errors a job returns on purpose: [`Error`], [`Result`], and the [`bail!`](crate::bail) and
//! [`ensure!`](crate::ensure) macros that build them from a format string.

use std::fmt;

/// The result type of job functions.
pub type Result<T = ()> = std::result::Result<T, Error>;

/// An error a job reports on purpose. The host records its message as the job's own words,
/// together with the record's location, and retries or fails the task.
///
/// Any [`std::error::Error`] converts into it, so `?` works on parse and I/O errors; the
/// message is the error's `Display` text.
pub struct Error {
    pub(crate) message: String,
}

impl Error {
    /// An error with the given message.
    pub fn new(message: impl fmt::Display) -> Self {
        Error {
            message: message.to_string(),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl<E: std::error::Error> From<E> for Error {
    fn from(err: E) -> Self {
        Error::new(err)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Returns early with an [`Error`] built from a format string:
/// `bail!("bad count {n} in {}", record.location())`.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return ::core::result::Result::Err($crate::Error::new(::std::format!($($arg)*)))
    };
}

/// Returns early with an [`Error`] built from a format string unless `cond` holds:
/// `ensure!(fields.len() == 3, "expected 3 fields, found {}", fields.len())`.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            $crate::bail!($($arg)+);
        }
    };
}
