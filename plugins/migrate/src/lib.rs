//! A mapper-only migration over a SQLite table (see the README): each input row (a JSON object
//! from the `sqlite:` reader) gets its `column` (default `email`) trimmed and lowercased, and is
//! emitted under its key, for `--sink 'sqlite:DB?table=T&mode=upsert&shape=object'` to write
//! back. Rows that need no change are still emitted (an upsert of the same values), so the
//! output is the whole table; the `changed` counter says how many differed.

use mr_sdk::prelude::*;

/// The migration.
#[derive(Default)]
pub struct Migrate {
    column: Option<String>,
}

impl Job for Migrate {
    const INFO: JobInfo = JobInfo::new("migrate", "0.1.0")
        .description("Trims and lowercases one text column of every row (a mapper-only migration).")
        .params(&[Param::with_default(
            "column",
            "the text column to normalise",
            "email",
        )]);
}

/// The row with `column` normalised, and whether it changed.
pub fn migrate_row(row: &[u8], column: &str) -> Result<(Vec<u8>, bool)> {
    let mut object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(row)?;
    let mut changed = false;
    if let Some(serde_json::Value::String(s)) = object.get_mut(column) {
        let normal = s.trim().to_lowercase();
        changed = normal != *s;
        *s = normal;
    }
    Ok((serde_json::to_vec(&object)?, changed))
}

impl Mapper for Migrate {
    fn map(&mut self, record: Record<'_>, out: &mut Emitter) -> Result {
        let column = self
            .column
            .get_or_insert_with(|| param("column").unwrap_or_else(|| "email".into()));
        let (row, changed) = migrate_row(record.value, column)?;
        if changed {
            counter("changed", 1);
        }
        out.emit(record.location().as_bytes(), row);
        Ok(())
    }
}

mr_sdk::export_job!(Migrate: map);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_the_column_only() {
        let (row, changed) =
            migrate_row(br#"{"id":1,"email":"  Ann@X.org ","name":"Ann"}"#, "email").unwrap();
        assert!(changed);
        let v: serde_json::Value = serde_json::from_slice(&row).unwrap();
        assert_eq!(v["email"], "ann@x.org");
        assert_eq!(v["name"], "Ann");
        let (_, changed) = migrate_row(br#"{"id":2,"email":"b@x.org"}"#, "email").unwrap();
        assert!(!changed);
        assert!(migrate_row(b"not json", "email").is_err());
    }
}
