//! Where each record of a map batch came from, kept by the host *beside* the batch for jobs
//! built against contract `mr:job@0.2.0` (whose map input keys are empty): a compact table
//! of `(file, line)` pairs for text records and the raw key bytes for other formats, turned into
//! text only when the job asks (`context.record-location`) or the host must name a record
//! (an error's blame, `_bad_records`, `--sample`). The text is exactly the key a 0.1.x job
//! gets for the same record: `path:line` for text, the format's own key otherwise.

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
    /// records from the same file.
    prefixes: Vec<String>,
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
        let same = self.prefixes.last().is_some_and(|p| p == prefix);
        if !same {
            self.prefixes.push(prefix.to_owned());
        }
        // At most one prefix per record, so the index fits whenever the batch does.
        let prefix = (self.prefixes.len() - 1) as u32;
        self.entries.push(Loc::Line { prefix, line });
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
                self.push_line(&other.prefixes[prefix as usize], line);
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
                out.extend_from_slice(self.prefixes[prefix as usize].as_bytes());
                out.push(b':');
                out.extend_from_slice(line.to_string().as_bytes());
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
}
