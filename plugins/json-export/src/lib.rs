//! Exports rows as JSON Lines (see the README): each input record's value, a JSON object (a
//! SQLite row, a CSV row, a JSONL line), is emitted with an empty key, keeping only the
//! comma-separated `columns` when that parameter is set. Run with `--sink jsonl` (and
//! `--compose` for one file).

use mr_sdk::prelude::*;

/// The export.
#[derive(Default)]
pub struct JsonExport {
    columns: Option<Option<Vec<String>>>,
}

impl Job for JsonExport {
    const INFO: JobInfo = JobInfo::new("json-export", "0.1.0")
        .description(
            "Writes each input row (a JSON object) as one JSON line, optionally projected.",
        )
        .params(&[Param::optional(
            "columns",
            "comma-separated columns to keep (default: all)",
        )]);
}

/// The row, projected on `columns` (in their order) when given.
pub fn export_row(row: &[u8], columns: Option<&[String]>) -> Result<Vec<u8>> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(row)?;
    let Some(columns) = columns else {
        // Validated above; pass the row through unchanged (keeps its column order).
        return Ok(row.to_vec());
    };
    let mut out = Vec::from(&b"{"[..]);
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend(serde_json::to_vec(c)?);
        out.push(b':');
        out.extend(serde_json::to_vec(
            object.get(c).unwrap_or(&serde_json::Value::Null),
        )?);
    }
    out.push(b'}');
    Ok(out)
}

impl Mapper for JsonExport {
    fn map(&mut self, record: Record<'_>, out: &mut Emitter) -> Result {
        let columns = self.columns.get_or_insert_with(|| {
            param("columns").map(|c| c.split(',').map(|s| s.trim().to_owned()).collect())
        });
        out.emit(b"", export_row(record.value, columns.as_deref())?);
        Ok(())
    }
}

mr_sdk::export_job!(JsonExport: map);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projects_columns_in_order() {
        let row = br#"{"id":1,"name":"a","x":true}"#;
        let cols = vec!["x".to_owned(), "id".to_owned(), "missing".to_owned()];
        assert_eq!(
            export_row(row, Some(&cols)).unwrap(),
            br#"{"x":true,"id":1,"missing":null}"#
        );
        assert!(export_row(b"[1]", None).is_err());
    }
}
