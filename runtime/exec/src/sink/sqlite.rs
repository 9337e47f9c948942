//! The SQLite sink: applies a job's committed record files to a table of the user's database.
//!
//! This is the one place outside `mr-store` that runs SQL, on purpose: `mr-store` owns the *job
//! store* (its schema, its protocol); this module writes the *user's* database, an output like a
//! part file, with statements that depend on the user's table.
//!
//! **Crash safety of the SQLite sink.** Tasks write their records to attempt-specific work
//! files committed like any output; nothing touches the target database until finalize. Finalize
//! then applies every committed file, in order, in *one* transaction that also inserts a marker
//! row (`_mr_writes`, keyed by the job's fingerprint). A finalize attempt that crashed after that
//! transaction committed finds the marker on its rerun and skips the writes, so `insert` mode
//! never inserts twice and the database sees the job's rows exactly once, all or nothing.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Sink, SqliteMode, SqliteShape};
use crate::ExecError;

/// What the SQLite sink did, for the manifest.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SinkReport {
    pub database: String,
    pub table: String,
    pub rows: u64,
}

fn sql_err(path: &Path, e: impl std::fmt::Display) -> ExecError {
    ExecError::Output {
        path: path.to_owned(),
        source: std::io::Error::other(format!("SQLite: {e}")),
    }
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn sql_value(v: &serde_json::Value) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Integer(i64::from(*b)),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::Text(s.clone()),
        other => Value::Text(other.to_string()),
    }
}

/// Applies the committed record files, in order, to the sink's table in one transaction,
/// exactly once per job (see the module documentation). Returns the rows written (those of the
/// earlier, committed transaction when the marker is found).
pub(crate) fn apply_sqlite(
    sink: &Sink,
    fingerprint: &str,
    files: &[PathBuf],
) -> Result<SinkReport, ExecError> {
    let Sink::Sqlite {
        path,
        table,
        mode,
        shape,
    } = sink
    else {
        unreachable!("a SQLite sink")
    };
    let mut conn = rusqlite::Connection::open(path).map_err(|e| sql_err(path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(60))
        .map_err(|e| sql_err(path, e))?;
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| sql_err(path, e))?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS _mr_writes (job TEXT PRIMARY KEY, tbl TEXT, rows INTEGER)",
    )
    .map_err(|e| sql_err(path, e))?;
    let done: Option<i64> = tx
        .query_row(
            "SELECT rows FROM _mr_writes WHERE job = ?",
            [fingerprint],
            |r| r.get(0),
        )
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })
        .map_err(|e| sql_err(path, e))?;
    let report = |rows: u64| SinkReport {
        database: path.display().to_string(),
        table: table.clone(),
        rows,
    };
    if let Some(rows) = done {
        tracing::info!(
            "{} already holds this job's rows; not writing them again",
            path.display()
        );
        return Ok(report(rows as u64));
    }
    let t = quote(table);
    if *shape == SqliteShape::Kv {
        tx.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {t} (key TEXT PRIMARY KEY, value TEXT)"
        ))
        .map_err(|e| sql_err(path, e))?;
    }
    let mut rows = 0u64;
    for file in files {
        let data = std::fs::read(file).map_err(|source| ExecError::Output {
            path: file.clone(),
            source,
        })?;
        for kv in mr_codec::kvs(&data) {
            let (key, value) = kv.map_err(|e| sql_err(file, format!("damaged work file: {e}")))?;
            let context = |e: rusqlite::Error| {
                sql_err(
                    path,
                    format!(
                        "writing the record with key {:?} into {table}: {e}",
                        String::from_utf8_lossy(key)
                    ),
                )
            };
            match shape {
                SqliteShape::Kv => {
                    let sql = match mode {
                        SqliteMode::Insert => {
                            format!("INSERT INTO {t} (key, value) VALUES (?1, ?2)")
                        }
                        SqliteMode::Upsert => format!(
                            "INSERT INTO {t} (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                        ),
                    };
                    tx.prepare_cached(&sql)
                        .and_then(|mut s| {
                            s.execute((
                                String::from_utf8_lossy(key).as_ref(),
                                String::from_utf8_lossy(value).as_ref(),
                            ))
                        })
                        .map_err(context)?;
                }
                SqliteShape::Object => {
                    // Validated when the task wrote the file.
                    let object: serde_json::Map<String, serde_json::Value> =
                        serde_json::from_slice(value).map_err(|e| sql_err(file, e))?;
                    let cols: Vec<String> = object.keys().map(|k| quote(k)).collect();
                    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
                    let mut sql = format!(
                        "INSERT INTO {t} ({}) VALUES ({})",
                        cols.join(", "),
                        marks.join(", ")
                    );
                    if *mode == SqliteMode::Upsert {
                        let set: Vec<String> =
                            cols.iter().map(|c| format!("{c} = excluded.{c}")).collect();
                        sql += &format!(" ON CONFLICT DO UPDATE SET {}", set.join(", "));
                    }
                    let values: Vec<rusqlite::types::Value> =
                        object.values().map(sql_value).collect();
                    tx.prepare_cached(&sql)
                        .and_then(|mut s| s.execute(rusqlite::params_from_iter(values)))
                        .map_err(context)?;
                }
            }
            rows += 1;
        }
    }
    tx.execute(
        "INSERT INTO _mr_writes (job, tbl, rows) VALUES (?1, ?2, ?3)",
        (fingerprint, table.as_str(), rows as i64),
    )
    .map_err(|e| sql_err(path, e))?;
    tx.commit().map_err(|e| sql_err(path, e))?;
    Ok(report(rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::Sink;

    fn records(dir: &Path, name: &str, kvs: &[(&str, &str)]) -> PathBuf {
        let mut buf = Vec::new();
        for (k, v) in kvs {
            mr_codec::put_kv(&mut buf, k.as_bytes(), v.as_bytes());
        }
        let p = dir.join(name);
        std::fs::write(&p, buf).unwrap();
        p
    }

    #[test]
    fn specs_parse() {
        assert_eq!(Sink::parse("text").unwrap(), Sink::Text);
        let Sink::Sqlite {
            table, mode, shape, ..
        } = Sink::parse("sqlite:o.db?table=t&mode=upsert&shape=object").unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (table.as_str(), mode, shape),
            ("t", SqliteMode::Upsert, SqliteShape::Object)
        );
        assert!(
            Sink::parse("sqlite:o.db?mode=upsert")
                .unwrap_err()
                .contains("table= is required")
        );
        assert!(Sink::parse("csv").is_err());
    }

    #[test]
    fn kv_insert_is_applied_exactly_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("o.db");
        let sink = Sink::parse(&format!("sqlite:{}?table=t", db.display())).unwrap();
        let a = records(dir.path(), "a", &[("k1", "v1"), ("k2", "v2")]);
        let b = records(dir.path(), "b", &[("k3", "v3")]);
        let r = apply_sqlite(&sink, "job-1", &[a.clone(), b.clone()]).unwrap();
        assert_eq!(r.rows, 3);
        // A rerun of the same job (finalize crashed after this commit) writes nothing again.
        assert_eq!(
            apply_sqlite(&sink, "job-1", &[a.clone(), b]).unwrap().rows,
            3
        );
        let conn = rusqlite::Connection::open(&db).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3);
        // Another job inserting an existing key fails, naming the key; nothing of it remains.
        let e = apply_sqlite(&sink, "job-2", &[a]).unwrap_err().to_string();
        assert!(
            e.contains("\"k1\"") && e.contains("UNIQUE constraint failed"),
            "{e}"
        );
        let n: i64 = conn
            .query_row("SELECT count(*) FROM _mr_writes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn object_upsert_updates_columns() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("o.db");
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, tags TEXT); INSERT INTO users VALUES (1, 'a', NULL)")
            .unwrap();
        let sink = Sink::parse(&format!(
            "sqlite:{}?table=users&mode=upsert&shape=object",
            db.display()
        ))
        .unwrap();
        let f = records(
            dir.path(),
            "a",
            &[
                ("1", r#"{"id":1,"name":"A"}"#),
                ("2", r#"{"id":2,"name":"b","tags":["x"]}"#),
            ],
        );
        apply_sqlite(&sink, "j", &[f]).unwrap();
        let rows: Vec<(i64, String, Option<String>)> = conn
            .prepare("SELECT id, name, tags FROM users ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            rows,
            [
                (1, "A".into(), None),
                (2, "b".into(), Some(r#"["x"]"#.into()))
            ]
        );
    }
}
