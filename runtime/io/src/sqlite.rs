//! SQLite tables and queries as input (the datastore reader's analogue): each row becomes a
//! JSON object (column → value; integers, reals, text and null as themselves, blobs as hex
//! strings), keyed by its integer key column.
//!
//! **Splitting.** A table is split into N key ranges of near-equal row counts by sampling its
//! key column: `N × SQLITE_OVERSAMPLING` keys, sorted, cut at the N-quantiles (as appengine's
//! datastore reader did with `__scatter__` and an oversampling factor). The sample is the keys
//! with the smallest value of a fixed hash (an LCG step on the key's low 31 bits), not
//! `random()`, so the same table always gives the same plan and two runs of the same job write
//! byte-identical part files. The sampling query scans the key column once. Key ranges
//! are half-open, `[lo, hi)`, the first and last unbounded, so rows inserted later still belong
//! to exactly one shard.
//!
//! **Resuming.** Rows are read in key order; the cursor is the last key read, and a retried
//! slice continues at `key > last`, so it never rereads a committed row. That needs the key to
//! be unique (rowid, or an `INTEGER PRIMARY KEY`); a repeated key is reported, not skipped.

use std::collections::VecDeque;
use std::path::Path;

use rusqlite::types::ValueRef;
use serde::{Deserialize, Serialize};

use crate::format::{Format, InputFormat};
use crate::reader::{JsonObject, RangeReader, ReadOptions, Step, bad_cursor};
use crate::{FileRange, InputError, InputFile, Shard, bad_spec, parse_settings};

/// Oversampling factor of the key sampling: samples taken per shard. With 8 shards this
/// samples 8192 keys, so each cut's quantile is off by about 0.6% of the table (one standard
/// deviation), well inside the ±20% balance the tests assert.
pub const SQLITE_OVERSAMPLING: u64 = 1024;

/// The `sqlite:` format.
pub(crate) struct Sqlite;

impl InputFormat for Sqlite {
    fn plan(
        &self,
        files: &[InputFile],
        first: usize,
        shards: u32,
    ) -> Result<(Vec<Shard>, usize), InputError> {
        let shards = plan(&files[first], shards)?
            .into_iter()
            .map(|keys| {
                let mut shard = crate::format::one_range(first, 0, 0);
                shard.ranges[0].keys = Some(keys);
                shard
            })
            .collect();
        Ok((shards, 1))
    }

    fn open<'a>(
        &self,
        file: &'a InputFile,
        range: &FileRange,
        inner: &str,
        _options: ReadOptions,
    ) -> Result<Box<dyn RangeReader + 'a>, InputError> {
        Ok(Box::new(SqliteReader::open(file, range, inner)?))
    }
}

/// `sqlite:PATH?table=T[&key=K]` or `sqlite:PATH?query=SQL&key=K`. A query may contain `&`:
/// only `&table=`, `&query=` and `&key=` separate settings.
pub(crate) fn parse(spec: &str, rest: &str) -> Result<InputFile, InputError> {
    let (path, query) = rest.split_once('?').ok_or_else(|| {
        bad_spec(
            spec,
            "expected sqlite:PATH?table=NAME or ?query=SQL&key=COLUMN",
        )
    })?;
    if crate::objects::is_url(path) {
        return Err(bad_spec(
            spec,
            "a SQLite database must be a local file (SQLite needs a filesystem with locks, not \
             object storage): download it first",
        ));
    }
    let settings = parse_settings(spec, query, &["table", "query", "key"])?;
    let get = |k: &str| {
        settings
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    let (table, sql) = (get("table"), get("query"));
    let key = match (&table, &sql, get("key")) {
        (Some(_), None, key) => key.unwrap_or_else(|| "rowid".to_owned()),
        (None, Some(_), Some(key)) => key,
        (None, Some(_), None) => {
            return Err(bad_spec(
                spec,
                "a query needs &key=COLUMN (a unique integer column it returns)",
            ));
        }
        _ => return Err(bad_spec(spec, "give exactly one of table= and query=")),
    };
    let file = Path::new(path);
    let len = crate::resolve::regular_file(file, path)?.len();
    Ok(InputFile {
        path: file.to_path_buf(),
        display: path.to_owned(),
        len,
        format: Format::Sqlite {
            table,
            query: sql,
            key,
        },
        gzip: false,
        compression: Default::default(),
    })
}

/// A half-open key range; `None` is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KeyRange {
    /// First key (inclusive).
    pub lo: Option<i64>,
    /// Last key (exclusive).
    pub hi: Option<i64>,
}

/// Rows fetched per query while reading.
const FETCH: usize = 1024;

fn sql_err(file: &InputFile, e: impl std::fmt::Display) -> InputError {
    InputError::Corrupt {
        path: file.display.clone(),
        message: format!("SQLite: {e}"),
    }
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `SELECT key AS __mr_key, * FROM source`, where `source` is the table or the query.
fn select(file: &InputFile) -> (String, String) {
    let Format::Sqlite { table, query, key } = &file.format else {
        unreachable!("a SQLite input")
    };
    let key = quote(key);
    match (table, query) {
        (Some(t), _) => (
            format!("SELECT {key} AS __mr_key, * FROM {}", quote(t)),
            key,
        ),
        (None, Some(q)) => (
            format!("SELECT q.{key} AS __mr_key, q.* FROM ({q}) AS q"),
            format!("q.{key}"),
        ),
        _ => unreachable!("table or query"),
    }
}

fn open(file: &InputFile) -> Result<rusqlite::Connection, InputError> {
    let conn = rusqlite::Connection::open_with_flags(
        &file.path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| sql_err(file, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(60))
        .map_err(|e| sql_err(file, e))?;
    Ok(conn)
}

fn int_key(file: &InputFile, v: ValueRef<'_>) -> Result<i64, InputError> {
    match v {
        ValueRef::Integer(i) => Ok(i),
        other => Err(sql_err(
            file,
            format!(
                "the key column holds a {:?} value; the key must be a unique integer column (rowid, an INTEGER PRIMARY KEY)",
                other.data_type()
            ),
        )),
    }
}

/// Key ranges of near-equal row counts (see the module documentation).
fn plan(file: &InputFile, shards: u32) -> Result<Vec<KeyRange>, InputError> {
    let conn = open(file)?;
    let (sql, _) = select(file);
    let n = u64::from(shards) * SQLITE_OVERSAMPLING;
    let mut stmt = conn
        .prepare(&format!(
            "SELECT __mr_key FROM ({sql}) ORDER BY ((__mr_key & 2147483647) * 1103515245 + 12345) % 2147483648, __mr_key LIMIT {n}"
        ))
        .map_err(|e| sql_err(file, e))?;
    let mut rows = stmt.query([]).map_err(|e| sql_err(file, e))?;
    let mut sample = Vec::new();
    while let Some(row) = rows.next().map_err(|e| sql_err(file, e))? {
        sample.push(int_key(
            file,
            row.get_ref(0).map_err(|e| sql_err(file, e))?,
        )?);
    }
    sample.sort_unstable();
    let mut cuts: Vec<i64> = (1..shards as usize)
        .filter_map(|i| sample.get(i * sample.len() / shards as usize).copied())
        .collect();
    cuts.dedup();
    let mut out = Vec::new();
    let mut lo = None;
    for c in cuts {
        if lo == Some(c) {
            continue;
        }
        out.push(KeyRange { lo, hi: Some(c) });
        lo = Some(c);
    }
    out.push(KeyRange { lo, hi: None });
    if let [first, ..] = &mut out[..] {
        first.lo = None;
    }
    Ok(out)
}

struct SqliteReader {
    file: InputFile,
    conn: rusqlite::Connection,
    sql: String,
    key: String,
    range: KeyRange,
    last: Option<i64>,
    rows: VecDeque<(i64, Vec<u8>)>,
    done: bool,
}

impl SqliteReader {
    fn open(file: &InputFile, range: &FileRange, inner: &str) -> Result<Self, InputError> {
        let last = if inner.is_empty() {
            None
        } else {
            Some(inner.parse().map_err(|_| bad_cursor(file, inner))?)
        };
        let (sql, key) = select(file);
        Ok(SqliteReader {
            file: file.clone(),
            conn: open(file)?,
            sql,
            key,
            range: range.keys.unwrap_or_default(),
            last,
            rows: VecDeque::new(),
            done: false,
        })
    }

    fn fetch(&mut self) -> Result<(), InputError> {
        let mut cond = Vec::new();
        let mut args: Vec<i64> = Vec::new();
        match (self.last, self.range.lo) {
            (Some(last), _) => {
                cond.push(format!("{} > ?", self.key));
                args.push(last);
            }
            (None, Some(lo)) => {
                cond.push(format!("{} >= ?", self.key));
                args.push(lo);
            }
            (None, None) => {}
        }
        if let Some(hi) = self.range.hi {
            cond.push(format!("{} < ?", self.key));
            args.push(hi);
        }
        let sql = format!(
            "{}{}{} ORDER BY {} LIMIT {FETCH}",
            self.sql,
            if cond.is_empty() { "" } else { " WHERE " },
            cond.join(" AND "),
            self.key
        );
        let file = &self.file;
        let mut stmt = self
            .conn
            .prepare_cached(&sql)
            .map_err(|e| sql_err(file, e))?;
        let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(args))
            .map_err(|e| sql_err(file, e))?;
        let mut prev = self.last;
        let mut n = 0;
        while let Some(row) = rows.next().map_err(|e| sql_err(file, e))? {
            let key = int_key(file, row.get_ref(0).map_err(|e| sql_err(file, e))?)?;
            if prev.is_some_and(|p| p >= key) {
                return Err(sql_err(
                    file,
                    format!("key {key} appears more than once; the key column must be unique"),
                ));
            }
            prev = Some(key);
            let mut json = Vec::new();
            let mut object = JsonObject::new(&mut json);
            for (i, name) in names.iter().enumerate().skip(1) {
                let v = row.get_ref(i).map_err(|e| sql_err(file, e))?;
                let value = match v {
                    ValueRef::Null => serde_json::Value::Null,
                    ValueRef::Integer(i) => i.into(),
                    ValueRef::Real(f) => serde_json::Number::from_f64(f)
                        .map_or(serde_json::Value::Null, serde_json::Value::Number),
                    ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
                    ValueRef::Blob(b) => b
                        .iter()
                        .map(|x| format!("{x:02x}"))
                        .collect::<String>()
                        .into(),
                };
                object.field(name, &value);
            }
            object.finish();
            self.rows.push_back((key, json));
            n += 1;
        }
        if n < FETCH {
            self.done = true;
        }
        Ok(())
    }
}

impl RangeReader for SqliteReader {
    fn next(&mut self, out: &mut Vec<u8>) -> Result<Step, InputError> {
        if self.rows.is_empty() && !self.done {
            self.fetch()?;
        }
        let Some((key, json)) = self.rows.pop_front() else {
            return Ok(Step::End);
        };
        self.last = Some(key);
        mr_codec::put_kv(out, itoa::Buffer::new().format(key).as_bytes(), &json);
        Ok(Step::Record(json.len() as u64))
    }

    fn cursor(&self) -> String {
        self.last.map(|k| k.to_string()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use crate::ReadOptions;
    use crate::testing::{read, read_resumed};

    /// A table of `n` rows whose keys are skewed: dense near 0, sparse far out (key = i² / 7
    /// made unique), plus a text column.
    pub(crate) fn skewed_table(path: &std::path::Path, n: i64) {
        let mut conn = rusqlite::Connection::open(path).unwrap();
        conn.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, score REAL, pic BLOB)",
        )
        .unwrap();
        let tx = conn.transaction().unwrap();
        {
            let mut stmt = tx.prepare("INSERT INTO users VALUES (?, ?, ?, ?)").unwrap();
            for i in 0..n {
                let id = i * i / 7 + i;
                stmt.execute(rusqlite::params![
                    id,
                    format!("user {i}"),
                    i as f64 / 2.0,
                    if i == 0 { Some(vec![1u8, 255]) } else { None }
                ])
                .unwrap();
            }
        }
        tx.commit().unwrap();
    }

    #[test]
    fn a_skewed_million_row_table_splits_evenly_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("app.db");
        skewed_table(&db, 1_000_000);
        let files =
            crate::resolve_inputs(&[format!("sqlite:{}?table=users", db.display())], None).unwrap();
        let plan = crate::plan(&files, 8).unwrap();
        assert_eq!(plan.len(), 8);
        let conn = rusqlite::Connection::open(&db).unwrap();
        let counts: Vec<i64> = plan
            .iter()
            .map(|s| {
                let k = s.ranges[0].keys.unwrap();
                conn.query_row(
                    "SELECT count(*) FROM users WHERE id >= ?1 AND id < ?2",
                    [k.lo.unwrap_or(i64::MIN), k.hi.unwrap_or(i64::MAX)],
                    |r| r.get(0),
                )
                .unwrap()
            })
            .collect();
        assert_eq!(counts.iter().sum::<i64>(), 1_000_000);
        for c in &counts {
            assert!((*c - 125_000).abs() <= 25_000, "shard sizes {counts:?}");
        }
        eprintln!("shard row counts: {counts:?}");
        // Read two shards in slices of 777 rows, resuming from the cursor each time.
        let (rows, _) = read_resumed(&files, &plan[3..5], 777, ReadOptions::default()).unwrap();
        assert_eq!(rows.len() as i64, counts[3] + counts[4]);
        let keys: Vec<i64> = rows.iter().map(|(k, _)| k.parse().unwrap()).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn rows_are_json_objects_and_queries_and_empty_tables_work() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        skewed_table(&db, 3);
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("CREATE TABLE empty (id INTEGER PRIMARY KEY, x TEXT)")
            .unwrap();
        let d = db.display();
        let files = crate::resolve_inputs(&[format!("sqlite:{d}?table=users")], None).unwrap();
        let rows = read(&files, 2).unwrap();
        assert_eq!(
            rows[0],
            (
                "0".into(),
                r#"{"id":0,"name":"user 0","score":0.0,"pic":"01ff"}"#.into()
            )
        );
        assert_eq!(
            rows[2],
            (
                "2".into(),
                r#"{"id":2,"name":"user 2","score":1.0,"pic":null}"#.into()
            )
        );
        let q = crate::resolve_inputs(
            &[format!(
                "sqlite:{d}?query=SELECT id, upper(name) AS n FROM users WHERE id > 0&key=id"
            )],
            None,
        )
        .unwrap();
        assert_eq!(
            read(&q, 3).unwrap(),
            vec![
                ("1".into(), r#"{"id":1,"n":"USER 1"}"#.into()),
                ("2".into(), r#"{"id":2,"n":"USER 2"}"#.into())
            ]
        );
        let e = crate::resolve_inputs(&[format!("sqlite:{d}?table=empty")], None).unwrap();
        assert_eq!(crate::plan(&e, 4).unwrap().len(), 1);
        assert_eq!(read(&e, 4).unwrap(), vec![]);
        let bad = crate::resolve_inputs(&[format!("sqlite:{d}?table=nope")], None).unwrap();
        let err = crate::plan(&bad, 2).unwrap_err().to_string();
        assert!(err.contains("no such table: nope"), "{err}");
        let text =
            crate::resolve_inputs(&[format!("sqlite:{d}?table=users&key=name")], None).unwrap();
        let err = crate::plan(&text, 2).unwrap_err().to_string();
        assert!(
            err.contains("the key must be a unique integer column"),
            "{err}"
        );
    }
}
