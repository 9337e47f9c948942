//! The PostgreSQL store's schema versions. The store lives in the connection's current schema
//! (the first of its `search_path`: `public` unless the URL says `options=-csearch_path%3DNAME`),
//! so one database can hold several stores. `schema_version` has one row per applied
//! migration. Opening a store runs, in one transaction holding an advisory lock on the schema
//! (two processes starting at once queue), whatever migrations it lacks; PostgreSQL's DDL is
//! transactional, so a store is never left half migrated by a crash. Refused: a store from a
//! newer mr ([`StoreError::TooNew`]); a schema holding tables but no `schema_version`
//! (another program's), or one missing tables its version should have (a half-applied or
//! damaged schema) ([`StoreError::Unusable`]).

use super::session::Sql;
use crate::StoreError;

/// The migrations, in order: migration N (from 1) is `MIGRATIONS[N - 1]`. Append; never edit
/// one a released mr-host has applied.
const MIGRATIONS: &[&str] = &[
    include_str!("schema_1.sql"),
    include_str!("schema_2.sql"),
    include_str!("schema_3.sql"),
];

/// Every table of the schema, with the version that created it.
const TABLES: &[(&str, i64)] = &[
    ("schema_version", 1),
    ("jobs", 1),
    ("tasks", 1),
    ("slices", 1),
    ("outputs", 1),
    ("counters", 1),
    ("attempts", 1),
    ("events", 1),
    ("hooks", 1),
    ("write_log", 1),
    ("components", 1),
    ("pipelines", 2),
    ("stages", 2),
];

/// The advisory lock (first key; the second is the schema's name hashed) that serialises
/// migrations of one schema.
const MIGRATION_LOCK: i32 = 0x6d72_6d67;

/// Brings the store in the current schema to the newest version (inside `sql`'s transaction).
pub(crate) fn migrate(sql: &mut Sql<'_>, shown: &str) -> Result<(), StoreError> {
    let unusable = |message: String| StoreError::Unusable {
        store: shown.to_owned(),
        message,
    };
    let schema: Option<String> = sql
        .query_one(
            "SELECT pg_advisory_xact_lock($1, hashtext(coalesce(current_schema(), ''))), current_schema()::text",
            &[&MIGRATION_LOCK],
        )?
        .get(1);
    let Some(schema) = schema else {
        return Err(unusable(
            "its search_path names no schema that exists; create the schema first".into(),
        ));
    };
    let tables: Vec<String> = sql
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1",
            &[],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let supported = MIGRATIONS.len() as i64;
    let version = if tables.iter().any(|t| t == "schema_version") {
        let version: Option<i64> = sql
            .query_one("SELECT max(version)::bigint FROM schema_version", &[])?
            .get(0);
        version.ok_or_else(|| {
            unusable(format!(
                "schema {schema} has an empty schema_version table (a migration that never finished?)"
            ))
        })?
    } else if tables.is_empty() {
        0
    } else {
        return Err(unusable(format!(
            "schema {schema} holds tables ({}) but no schema_version: another program's? Give mr an empty database or schema (e.g. ?options=-csearch_path%3Dmr)",
            tables.join(", ")
        )));
    };
    if version > supported {
        return Err(StoreError::TooNew {
            store: shown.to_owned(),
            found: version,
            supported,
        });
    }
    let missing: Vec<&str> = TABLES
        .iter()
        .filter(|(table, since)| {
            version >= *since && version > 0 && !tables.iter().any(|t| t == table)
        })
        .map(|(table, _)| *table)
        .collect();
    if !missing.is_empty() {
        return Err(unusable(format!(
            "schema {schema} is at version {version} but lacks its tables {}",
            missing.join(", ")
        )));
    }
    let now_ms = sql.now_ms;
    for (n, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        sql.batch(migration)?;
        let n = n as i32 + 1;
        sql.execute(
            "INSERT INTO schema_version (version, applied_ms) VALUES ($1, $2)",
            &[&n, &now_ms],
        )?;
    }
    Ok(())
}

/// The newest schema version this build knows.
#[cfg(test)]
pub(crate) const SUPPORTED: i64 = MIGRATIONS.len() as i64;
