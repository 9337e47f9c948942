//! What a job is: its identity ([`Job`], [`JobInfo`], [`Param`]), its input ([`Record`]) and
//! the phases it implements ([`Mapper`], [`Combiner`], [`Reducer`], [`Lifecycle`]).

use crate::context;
use crate::emit::{Emitter, ValueEmitter};
use crate::error::{Error, Result};
use crate::values::Values;

/// A parameter a job declares; the host validates `--param` against these.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Name as given to `--param NAME=VALUE`.
    pub name: &'static str,
    /// One line for `mr-host inspect`.
    pub description: &'static str,
    /// Value used when none is given.
    pub default: Option<&'static str>,
    /// The job refuses to run without it.
    pub required: bool,
    /// What its values must look like; the host checks every value at submit.
    pub kind: ParamKind,
}

/// The type of a parameter's value. Values still reach the job as text (parse them with
/// `str::parse`); the host refuses a value of the wrong type when the job is submitted, naming
/// the parameter, so a typo never reaches the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// Any text (the default).
    String,
    /// A signed 64-bit decimal integer.
    Integer,
    /// A finite decimal number.
    Float,
    /// `true` or `false`.
    Bool,
    /// One of these words.
    Enum(&'static [&'static str]),
}

impl ParamKind {
    /// Checks `value` the way the host does; the error says what was expected.
    pub fn check(&self, value: &str) -> std::result::Result<(), String> {
        let ok = match self {
            ParamKind::String => true,
            ParamKind::Integer => value.parse::<i64>().is_ok(),
            ParamKind::Float => value.parse::<f64>().is_ok_and(f64::is_finite),
            ParamKind::Bool => matches!(value, "true" | "false"),
            ParamKind::Enum(words) => words.contains(&value),
        };
        if ok {
            return Ok(());
        }
        let expected = match self {
            ParamKind::String => "text".to_owned(),
            ParamKind::Integer => "an integer (e.g. 42 or -7)".to_owned(),
            ParamKind::Float => "a number (e.g. 0.25, 3 or 1e-3)".to_owned(),
            ParamKind::Bool => "true or false".to_owned(),
            ParamKind::Enum(words) => format!("one of {}", words.join(", ")),
        };
        Err(format!("must be {expected}, not {value:?}"))
    }
}

impl Param {
    /// An optional parameter without a default.
    pub const fn optional(name: &'static str, description: &'static str) -> Self {
        Param {
            name,
            description,
            default: None,
            required: false,
            kind: ParamKind::String,
        }
    }

    /// A parameter with a default value.
    pub const fn with_default(
        name: &'static str,
        description: &'static str,
        default: &'static str,
    ) -> Self {
        Param {
            name,
            description,
            default: Some(default),
            required: false,
            kind: ParamKind::String,
        }
    }

    /// A parameter the user must give.
    pub const fn required(name: &'static str, description: &'static str) -> Self {
        Param {
            name,
            description,
            default: None,
            required: true,
            kind: ParamKind::String,
        }
    }
}

impl Param {
    /// Its values must be integers: `Param::with_default("top", "how many", "10").integer()`.
    pub const fn integer(mut self) -> Self {
        self.kind = ParamKind::Integer;
        self
    }

    /// Its values must be numbers.
    pub const fn float(mut self) -> Self {
        self.kind = ParamKind::Float;
        self
    }

    /// Its values must be `true` or `false`.
    pub const fn bool(mut self) -> Self {
        self.kind = ParamKind::Bool;
        self
    }

    /// Its values must be one of `words`.
    pub const fn one_of(mut self, words: &'static [&'static str]) -> Self {
        self.kind = ParamKind::Enum(words);
        self
    }
}

/// What `mr-host inspect` shows about a job.
#[derive(Debug, Clone, Copy)]
pub struct JobInfo {
    /// Short machine-friendly name.
    pub name: &'static str,
    /// The job's version.
    pub version: &'static str,
    /// One paragraph on what it does.
    pub description: &'static str,
    /// Declared parameters.
    pub params: &'static [Param],
}

impl JobInfo {
    /// Name and version; no description, no parameters.
    pub const fn new(name: &'static str, version: &'static str) -> Self {
        JobInfo {
            name,
            version,
            description: "",
            params: &[],
        }
    }

    /// Sets the description.
    pub const fn description(mut self, description: &'static str) -> Self {
        self.description = description;
        self
    }

    /// Sets the declared parameters.
    pub const fn params(mut self, params: &'static [Param]) -> Self {
        self.params = params;
        self
    }
}

/// A job's identity. The job type must also be `Default`: each worker instance creates one value
/// and reuses it for every batch it processes, so state may be cached in `self`.
pub trait Job: Default + 'static {
    /// Name, version, description and parameters.
    const INFO: JobInfo;
}

/// One input record.
///
/// Under contract `mr:job@0.2.0` (what this SDK builds) the host sends map input without keys:
/// `key` is empty and [`Record::location`] asks the host where the record came from, only
/// when called. Jobs that read the location must call `location()`, not `key`.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The record's key as the host sent it: empty for map input from the host (contract
    /// 0.2.0); the location in the native test harness and in records made with
    /// [`Record::new`]. Use [`Record::location`] for where the record came from.
    pub key: &'a [u8],
    /// The record itself (a line without its terminator, for text input).
    pub value: &'a [u8],
    /// The record's index in its batch, to ask the host for its location.
    index: Option<u32>,
}

impl<'a> Record<'a> {
    /// A record whose location is `key` (for tests of job code; the host's records come
    /// through the export macro).
    pub fn new(key: &'a [u8], value: &'a [u8]) -> Self {
        Record {
            key,
            value,
            index: None,
        }
    }

    /// Record `index` of a map batch.
    pub(crate) fn at(key: &'a [u8], value: &'a [u8], index: u32) -> Self {
        Record {
            key,
            value,
            index: Some(index),
        }
    }

    /// Where the record came from, e.g. `logs/a.txt:17` for line 17 of a text file (the
    /// format's own location for other inputs: see `wit/v0.2/job.wit`,
    /// `context.record-location`). A record with a key names it (lossy for non-UTF-8 keys);
    /// a keyless one from the host is looked up with one host call, formatted only now.
    /// Empty when neither knows.
    pub fn location(&self) -> std::borrow::Cow<'a, str> {
        if self.key.is_empty()
            && let Some(index) = self.index
        {
            return crate::context::record_location(index)
                .unwrap_or_default()
                .into();
        }
        String::from_utf8_lossy(self.key)
    }

    /// The value as UTF-8 text, or an error naming the record's location.
    pub fn text(&self) -> Result<&'a str> {
        std::str::from_utf8(self.value)
            .map_err(|e| Error::new(format!("record {} is not UTF-8: {e}", self.location())))
    }
}

/// The map phase: called once per input record.
pub trait Mapper: Job {
    /// Maps one record to zero or more key-value pairs.
    fn map(&mut self, record: Record<'_>, out: &mut Emitter) -> Result;
}

/// The optional map-side combiner: pre-aggregates a key's values before the shuffle. It may run
/// any number of times on any subset of a key's values, so its effect must be associative and
/// commutative (sums, counts, maxima, set unions).
pub trait Combiner: Job {
    /// Combines `values` of `key` into (usually fewer) values.
    fn combine(
        &mut self,
        key: &[u8],
        values: &mut Values<'_>,
        out: &mut ValueEmitter<'_>,
    ) -> Result;
}

/// The reduce phase: called once per distinct key, keys in byte order.
pub trait Reducer: Job {
    /// Reduces all values of `key` (in input order) to zero or more output pairs.
    fn reduce(&mut self, key: &[u8], values: &mut Values<'_>, out: &mut Emitter) -> Result;
}

/// What a [`Lifecycle`] job is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// An attempt at a task (map shard, reduce partition, the job's finalize step) started.
    TaskStarted,
    /// A map slice is about to be read.
    SliceStarted,
    /// A slice was committed: it will not run again.
    SliceCommitted,
    /// A task's last slice was committed.
    TaskCompleted,
    /// The job's output is in place and the job is done.
    JobCompleted,
}

/// Lifecycle events, for jobs that want them (export with `events`, e.g.
/// `export_job!(MyJob: map, reduce, events)`). Useful for logging progress in the job's own
/// words. Counter increments made here are ignored (an event belongs to no committed slice);
/// an error returned for `TaskStarted` or `SliceStarted` fails that attempt, one returned after
/// a commit is only logged by the host.
pub trait Lifecycle: Job {
    /// Called on the instance that runs `task`.
    fn on_event(&mut self, kind: EventKind, task: &context::Task) -> Result;
}
