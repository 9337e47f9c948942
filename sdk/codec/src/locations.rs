//! Where each record of a map batch came from, kept by the host *beside* the batch for jobs
//! built against contract `mr:job@0.2.0` (whose map input keys are empty): a compact table
//! of `(file, line)` pairs for text records and the raw key bytes for other formats, turned into
//! text only when the job asks (`context.record-location`) or the host must name a record
//! (an error's blame, `_bad_records`, `--sample`). The text is exactly the key a 0.1.x job
//! gets for the same record: `path:line` for text, the format's own key otherwise.
//!
//! A record of a shard that starts inside a file may carry its line *relative* to the shard's
//! start, with a [`LineBase`] that counts the lines before it only when a location is written
//! (the host counts them once per file and offset): most jobs never ask, and then nothing
//! reads the file before the shard's start.

use std::sync::Arc;

/// The number of lines before a run of records whose lines are relative (see
/// [`Locations::push_relative_line`]), counted when first asked and remembered.
pub trait LineBase: Send + Sync + std::fmt::Debug {
    /// Lines before the run's base: a relative line `n` is absolute line `lines_before() + n`.
    /// An error says why they could not be counted (the file is unreadable or changed).
    fn lines_before(&self) -> Result<u64, String>;
}

/// A shared [`LineBase`], equal to another only when it is the same one.
#[derive(Debug, Clone)]
struct Base(Arc<dyn LineBase>);

impl PartialEq for Base {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Base {}

/// A path prefix of line records, with the base of their relative lines, if they are.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Prefix {
    name: String,
    base: Option<Base>,
}

/// One record's location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loc {
    /// `prefixes[prefix]:line`.
    Line { prefix: u32, line: u64 },
    /// `text[start..end]`, a key kept as it is.
    Text { start: usize, end: usize },
}

/// The locations of a batch's records, one per record in entry order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Locations {
    entries: Vec<Loc>,
    /// Path prefixes of line records (`path`, or `archive/member`), each kept once per run of
    /// records from the same file (and base).
    prefixes: Vec<Prefix>,
    /// Keys kept as they are, concatenated.
    text: Vec<u8>,
}

impl Locations {
    /// Forgets every record (keeps the allocations).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.prefixes.clear();
        self.text.clear();
    }

    /// How many records the table describes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it describes no record.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a record at line `line` of `prefix` (its location is `prefix:line`). Costs a compare
    /// of the prefix with the previous record's, and no formatting.
    pub fn push_line(&mut self, prefix: &str, line: u64) {
        self.push_line_from(prefix, None, line);
    }

    /// Adds a record at line `line` *after* `base` (its location is `prefix:N` where N is
    /// `base.lines_before() + line`, counted only when a location is written).
    pub fn push_relative_line(&mut self, prefix: &str, base: &Arc<dyn LineBase>, line: u64) {
        let same = self.prefixes.last().is_some_and(|p| {
            p.name == prefix && p.base.as_ref().is_some_and(|b| Arc::ptr_eq(&b.0, base))
        });
        if !same {
            self.prefixes.push(Prefix {
                name: prefix.to_owned(),
                base: Some(Base(base.clone())),
            });
        }
        let prefix = (self.prefixes.len() - 1) as u32;
        self.entries.push(Loc::Line { prefix, line });
    }

    fn push_line_from(&mut self, prefix: &str, base: Option<&Base>, line: u64) {
        let same = self
            .prefixes
            .last()
            .is_some_and(|p| p.name == prefix && p.base.as_ref() == base);
        if !same {
            self.prefixes.push(Prefix {
                name: prefix.to_owned(),
                base: base.cloned(),
            });
        }
        // At most one prefix per record, so the index fits whenever the batch does.
        let prefix = (self.prefixes.len() - 1) as u32;
        self.entries.push(Loc::Line { prefix, line });
    }

    /// Whether some records' lines are relative to a base (counted when first written).
    pub fn has_relative_lines(&self) -> bool {
        self.prefixes.iter().any(|p| p.base.is_some())
    }

    /// Counts the lines before every relative run now (each base remembers its count), so
    /// that writing a location later costs no counting; the first error, if any.
    pub fn resolve(&self) -> Result<(), String> {
        for p in &self.prefixes {
            if let Some(base) = &p.base {
                base.0.lines_before()?;
            }
        }
        Ok(())
    }

    /// Adds a record whose location is `key`, as it is.
    pub fn push_text(&mut self, key: &[u8]) {
        let start = self.text.len();
        self.text.extend_from_slice(key);
        self.entries.push(Loc::Text {
            start,
            end: self.text.len(),
        });
    }

    /// Adds record `index` of `other` (to build the table of a subset of a batch); `false`
    /// when `other` has no such record.
    pub fn push_from(&mut self, other: &Locations, index: usize) -> bool {
        match other.entries.get(index) {
            Some(&Loc::Line { prefix, line }) => {
                let p = &other.prefixes[prefix as usize];
                self.push_line_from(&p.name, p.base.as_ref(), line);
                true
            }
            Some(&Loc::Text { start, end }) => {
                self.push_text(&other.text[start..end]);
                true
            }
            None => false,
        }
    }

    /// Appends record `index`'s location to `out`; `false` when there is no such record.
    pub fn write(&self, index: usize, out: &mut Vec<u8>) -> bool {
        match self.entries.get(index) {
            Some(&Loc::Line { prefix, line }) => {
                let p = &self.prefixes[prefix as usize];
                out.extend_from_slice(p.name.as_bytes());
                out.push(b':');
                match p.base.as_ref().map(|b| b.0.lines_before()) {
                    None => out.extend_from_slice(line.to_string().as_bytes()),
                    Some(Ok(before)) => {
                        out.extend_from_slice((before + line).to_string().as_bytes())
                    }
                    // The file became unreadable since the record was read: say where the
                    // record is as far as is known, and why its line number is not.
                    Some(Err(e)) => out.extend_from_slice(
                        format!("?+{line} (the lines before could not be counted: {e})").as_bytes(),
                    ),
                }
                true
            }
            Some(&Loc::Text { start, end }) => {
                out.extend_from_slice(&self.text[start..end]);
                true
            }
            None => false,
        }
    }

    /// Record `index`'s location as text (lossy for a key that is not UTF-8); `None` when there
    /// is no such record.
    pub fn get(&self, index: usize) -> Option<String> {
        let mut out = Vec::new();
        self.write(index, &mut out)
            .then(|| String::from_utf8_lossy(&out).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_keys_format_on_demand_and_subset() {
        let mut l = Locations::default();
        l.push_line("/data/a.txt", 1);
        l.push_line("/data/a.txt", 2);
        l.push_text(b"row-17");
        l.push_line("/data/b.txt", 9);
        assert_eq!(l.len(), 4);
        assert_eq!(l.prefixes.len(), 2);
        assert_eq!(l.get(0).as_deref(), Some("/data/a.txt:1"));
        assert_eq!(l.get(1).as_deref(), Some("/data/a.txt:2"));
        assert_eq!(l.get(2).as_deref(), Some("row-17"));
        assert_eq!(l.get(3).as_deref(), Some("/data/b.txt:9"));
        assert_eq!(l.get(4), None);
        let mut sub = Locations::default();
        assert!(sub.push_from(&l, 3));
        assert!(sub.push_from(&l, 2));
        assert!(!sub.push_from(&l, 7));
        assert_eq!(sub.get(0).as_deref(), Some("/data/b.txt:9"));
        assert_eq!(sub.get(1).as_deref(), Some("row-17"));
        l.clear();
        assert!(l.is_empty());
        assert_eq!(l.get(0), None);
    }

    #[derive(Debug)]
    struct Counted {
        before: Result<u64, String>,
        asked: std::sync::atomic::AtomicUsize,
    }

    impl LineBase for Counted {
        fn lines_before(&self) -> Result<u64, String> {
            self.asked
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.before.clone()
        }
    }

    #[test]
    fn relative_lines_are_counted_only_when_written() {
        let counted = Arc::new(Counted {
            before: Ok(100),
            asked: Default::default(),
        });
        let base: Arc<dyn LineBase> = counted.clone();
        let other: Arc<dyn LineBase> = Arc::new(Counted {
            before: Err("gone".into()),
            asked: Default::default(),
        });
        let mut l = Locations::default();
        l.push_line("/data/a.txt", 1);
        l.push_relative_line("/data/a.txt", &base, 1);
        l.push_relative_line("/data/a.txt", &base, 2);
        l.push_relative_line("/data/a.txt", &other, 5);
        assert_eq!(l.prefixes.len(), 3, "one per base");
        assert!(l.has_relative_lines());
        assert_eq!(counted.asked.load(std::sync::atomic::Ordering::Relaxed), 0);
        assert_eq!(l.get(0).as_deref(), Some("/data/a.txt:1"));
        assert_eq!(l.get(1).as_deref(), Some("/data/a.txt:101"));
        assert_eq!(l.get(2).as_deref(), Some("/data/a.txt:102"));
        assert_eq!(
            l.get(3).as_deref(),
            Some("/data/a.txt:?+5 (the lines before could not be counted: gone)")
        );
        assert_eq!(l.resolve(), Err("gone".to_owned()));
        // A subset keeps the base.
        let mut sub = Locations::default();
        assert!(sub.push_from(&l, 2));
        assert!(sub.push_from(&l, 0));
        assert_eq!(sub.get(0).as_deref(), Some("/data/a.txt:102"));
        assert_eq!(sub.get(1).as_deref(), Some("/data/a.txt:1"));
        assert_eq!(sub.prefixes.len(), 2);
    }
}
