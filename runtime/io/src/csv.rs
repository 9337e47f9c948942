//! CSV with a header row: each row after the header becomes a JSON object of header name →
//! field, keyed `path:line` (the row's first line). Quoting and newlines inside quoted fields
//! follow RFC 4180 (the `csv` crate), so a file cannot be cut at an arbitrary line start: a CSV
//! file is one shard. The cursor is `OFFSET:LINE:RECORD`; a resumed reader re-reads the header,
//! then continues at OFFSET (seeking, or decompressing and discarding for a compressed file).

use std::cell::Cell;
use std::io::{BufRead, Read};
use std::rc::Rc;

use crate::compress::text_stream;
use crate::format::{InputFormat, one_range};
use crate::reader::{
    BadRecord, JsonObject, RangeReader, ReadOptions, Step, line_key, parse_text_position,
};
use crate::{FileRange, InputError, InputFile, Shard};

/// The CSV format.
pub(crate) struct Csv;

impl InputFormat for Csv {
    fn plan(
        &self,
        files: &[InputFile],
        first: usize,
        _shards: u32,
    ) -> Result<(Vec<Shard>, usize), InputError> {
        Ok((vec![one_range(first, 0, files[first].len)], 1))
    }

    fn open<'a>(
        &self,
        file: &'a InputFile,
        range: &FileRange,
        inner: &str,
        options: ReadOptions,
    ) -> Result<Box<dyn RangeReader + 'a>, InputError> {
        let (offset, line, record) =
            parse_text_position(file, inner, (range.start, range.first_line))?;
        Ok(Box::new(CsvReader::open(
            file, offset, line, record, options,
        )?))
    }
}

/// A reader that fails once more than `limit` bytes were read: bounds what the CSV parser may
/// buffer for one record, so a runaway quoted field is an error, not an out-of-memory.
struct Limited<R> {
    inner: R,
    pos: u64,
    limit: Rc<Cell<u64>>,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.limit.get() {
            return Err(std::io::Error::other(RECORD_TOO_LARGE));
        }
        let room = (self.limit.get() - self.pos).min(buf.len() as u64) as usize;
        let n = self.inner.read(&mut buf[..room])?;
        self.pos += n as u64;
        Ok(n)
    }
}

const RECORD_TOO_LARGE: &str = "record is longer than the record cap";

/// CSV rows as JSON objects keyed by the header's names.
pub(crate) struct CsvReader {
    reader: csv::Reader<Limited<Box<dyn BufRead>>>,
    display: String,
    header: Vec<String>,
    /// Stream offset where the csv reader started (its positions are relative to it).
    base: u64,
    base_line: u64,
    offset: u64,
    line: u64,
    record: u64,
    cap: usize,
    limit: Rc<Cell<u64>>,
    row: csv::ByteRecord,
    json: Vec<u8>,
    key: Vec<u8>,
}

impl CsvReader {
    fn open(
        file: &InputFile,
        offset: u64,
        line: u64,
        record: u64,
        options: ReadOptions,
    ) -> Result<Self, InputError> {
        let limit = Rc::new(Cell::new(0));
        let slack = options.max_record_bytes as u64 + (64 << 10);
        limit.set(slack);
        // The header is read from its own stream: the csv reader buffers ahead, so the rows
        // are read from a second stream opened at the first row (or at the cursor).
        let mut head = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(Limited {
                inner: text_stream(file, file.len, 0, options)?,
                pos: 0,
                limit: limit.clone(),
            });
        let mut h = csv::ByteRecord::new();
        let has_header = head
            .read_byte_record(&mut h)
            .map_err(|e| csv_error(file, 0, e))?;
        let header = if has_header {
            header_names(file, &h)?
        } else {
            Vec::new()
        };
        let (offset, line) = match offset {
            0 if has_header => (head.position().byte(), head.position().line()),
            _ => (offset, line),
        };
        drop(head);
        limit.set(slack);
        Ok(CsvReader {
            reader: csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(Limited {
                    inner: text_stream(file, file.len, offset, options)?,
                    pos: 0,
                    limit: limit.clone(),
                }),
            display: file.display.clone(),
            header,
            base: offset,
            base_line: line,
            offset,
            line,
            record,
            cap: options.max_record_bytes,
            limit,
            row: csv::ByteRecord::new(),
            json: Vec::new(),
            key: Vec::new(),
        })
    }
}

/// Where the record that starts at `offset` is, for errors and bad records.
fn location(display: &str, line: u64, record: u64, offset: u64) -> String {
    format!("{display}:{line} (record {record}, byte {offset})")
}

fn header_names(file: &InputFile, h: &csv::ByteRecord) -> Result<Vec<String>, InputError> {
    h.iter()
        .map(|f| {
            String::from_utf8(f.to_vec()).map_err(|_| InputError::Corrupt {
                path: file.display.clone(),
                message: "the CSV header row is not valid UTF-8".into(),
            })
        })
        .collect()
}

fn csv_error(file: &InputFile, offset: u64, e: csv::Error) -> InputError {
    InputError::Corrupt {
        path: file.display.clone(),
        message: format!("cannot read CSV at byte {offset}: {e}"),
    }
}

impl CsvReader {
    /// The next row: keyed `path:line` (0.1.x), or keyless with its line noted in `locations`
    /// (0.2.0).
    fn read_record(
        &mut self,
        out: &mut Vec<u8>,
        locations: Option<&mut mr_codec::Locations>,
    ) -> Result<Step, InputError> {
        let (offset, line, record) = (self.offset, self.line, self.record);
        // Allow this record the cap (plus the parser's read-ahead) from its start.
        self.limit
            .set(offset - self.base + self.cap as u64 + (64 << 10));
        let more = self.reader.read_byte_record(&mut self.row);
        let pos = self.reader.position();
        let consumed = self.base + pos.byte() - offset;
        self.offset = self.base + pos.byte();
        self.line = self.base_line + pos.line() - 1;
        match more {
            Ok(false) => return Ok(Step::End),
            Ok(true) => {}
            Err(e) => {
                let text = e.to_string();
                return Err(InputError::Corrupt {
                    path: location(&self.display, line, record, offset),
                    message: if text.contains(RECORD_TOO_LARGE) {
                        format!(
                            "a CSV record is longer than the record cap of {} bytes",
                            self.cap
                        )
                    } else {
                        format!("cannot read CSV: {e}")
                    },
                });
            }
        }
        self.record += 1;
        if self.row.len() != self.header.len() {
            let reason = format!(
                "the row has {} fields, the header {}",
                self.row.len(),
                self.header.len()
            );
            let location = location(&self.display, line, record, offset);
            return Ok(Step::Bad(BadRecord { location, reason }, consumed));
        }
        if consumed > self.cap as u64 {
            let reason = format!("record is longer than the record cap of {} bytes", self.cap);
            let location = location(&self.display, line, record, offset);
            return Ok(Step::Bad(BadRecord { location, reason }, consumed));
        }
        let mut object = JsonObject::new(&mut self.json);
        for (i, (name, field)) in self.header.iter().zip(self.row.iter()).enumerate() {
            match std::str::from_utf8(field) {
                Ok(text) => object.field(name, &text),
                Err(_) => {
                    let reason = format!("field {} ({name}) is not valid UTF-8", i + 1);
                    let location = location(&self.display, line, record, offset);
                    return Ok(Step::Bad(BadRecord { location, reason }, consumed));
                }
            }
        }
        object.finish();
        match locations {
            Some(locations) => {
                locations.push_line(&self.display, line);
                mr_codec::put_kv(out, b"", &self.json);
            }
            None => {
                line_key(&mut self.key, &self.display, line);
                mr_codec::put_kv(out, &self.key, &self.json);
            }
        }
        Ok(Step::Record(consumed))
    }
}

impl RangeReader for CsvReader {
    fn next(&mut self, out: &mut Vec<u8>) -> Result<Step, InputError> {
        self.read_record(out, None)
    }

    fn next_located(
        &mut self,
        out: &mut Vec<u8>,
        locations: &mut mr_codec::Locations,
    ) -> Result<Step, InputError> {
        self.read_record(out, Some(locations))
    }

    fn cursor(&self) -> String {
        format!("{}:{}:{}", self.offset, self.line, self.record)
    }
}

#[cfg(test)]
mod tests {
    use crate::ReadOptions;
    use crate::testing::{BadRecord, gz, input, pairs, read, read_error, read_resumed};

    #[test]
    fn csv_rows_become_json_objects_with_quotes_and_newlines() {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![input(
            dir.path(),
            "t.csv",
            b"name,note\nann,\"a, b\"\n\"bob\",\"two\nlines \"\"q\"\"\"\ncid,x,extra\ndee,\n",
        )];
        let expected = pairs(&[
            ("t.csv:2", r#"{"name":"ann","note":"a, b"}"#),
            ("t.csv:3", r#"{"name":"bob","note":"two\nlines \"q\""}"#),
            ("t.csv:6", r#"{"name":"dee","note":""}"#),
        ]);
        let plan = crate::plan(&files, 4).unwrap();
        let skip = ReadOptions {
            skip_bad: true,
            ..Default::default()
        };
        for k in 1..5 {
            let (got, bad) = read_resumed(&files, &plan, k, skip).unwrap();
            assert_eq!(got, expected, "{k} records per slice");
            assert_eq!(
                bad,
                [BadRecord {
                    location: "t.csv:5 (record 3, byte 45)".into(),
                    reason: "the row has 3 fields, the header 2".into()
                }]
            );
        }
        let e = read(&files, 1).unwrap_err().to_string();
        assert!(e.contains("t.csv:5 (record 3, byte 45)"), "{e}");
        // The same through gzip.
        let data = std::fs::read(dir.path().join("t.csv")).unwrap();
        let files = vec![input(dir.path(), "t.csv.gz", &gz(&data))];
        let plan = crate::plan(&files, 4).unwrap();
        for k in 1..5 {
            let (got, _) = read_resumed(&files, &plan, k, skip).unwrap();
            let renamed: Vec<_> = expected
                .iter()
                .map(|(k, v)| (k.replace("t.csv", "t.csv.gz"), v.clone()))
                .collect();
            assert_eq!(got, renamed);
        }
    }

    #[test]
    fn csv_record_over_the_cap_fails_without_buffering_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut data = b"a\n\"".to_vec();
        data.extend(std::iter::repeat_n(b'x', 4 << 20));
        let files = vec![input(dir.path(), "big.csv", &data)];
        let plan = crate::plan(&files, 1).unwrap();
        let options = ReadOptions {
            max_record_bytes: 1000,
            ..Default::default()
        };
        let e = read_error(&files, &plan, options);
        assert!(
            e.contains("big.csv:2") && e.contains("longer than the record cap of 1000"),
            "{e}"
        );
    }
}
