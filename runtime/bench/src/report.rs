//! The result tables, as aligned text for the terminal and as Markdown for results.md.

use std::fmt::Write;

/// What the output check found for one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Equal to the reference's normalised output.
    Equal,
    /// Different; the string says where (for a note).
    Differs(String),
    /// The system did not produce an output to check.
    Failed(String),
}

/// One row of a table.
#[derive(Debug, Clone)]
pub struct Row {
    pub system: String,
    pub wall: Option<f64>,
    pub cpu: Option<f64>,
    pub rss_mib: Option<f64>,
    pub check: Check,
}

/// One workload's table: a title, rows and notes.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub title: String,
    pub input_bytes: u64,
    /// Index of the row ratios are taken to (native Rust), if it ran.
    pub baseline: Option<usize>,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

const HEADERS: [&str; 7] = [
    "system",
    "wall s",
    "CPU s",
    "peak RSS MiB",
    "MB/s",
    "× native",
    "output",
];

impl Table {
    fn cells(&self) -> Vec<[String; 7]> {
        let base = self
            .baseline
            .and_then(|i| self.rows.get(i))
            .and_then(|r| r.wall);
        let mb = self.input_bytes as f64 / 1e6;
        self.rows
            .iter()
            .map(|r| {
                let num = |v: Option<f64>, digits: usize| {
                    v.map_or("–".to_owned(), |v| format!("{v:.digits$}"))
                };
                let check = match &r.check {
                    Check::Equal => "equal".to_owned(),
                    Check::Differs(_) => "DIFFERS".to_owned(),
                    Check::Failed(_) => "failed".to_owned(),
                };
                [
                    r.system.clone(),
                    num(r.wall, 2),
                    num(r.cpu, 2),
                    num(r.rss_mib, 0),
                    num(r.wall.map(|w| mb / w), 1),
                    num(r.wall.zip(base).map(|(w, b)| w / b), 2),
                    check,
                ]
            })
            .collect()
    }

    /// Aligned text.
    pub fn text(&self) -> String {
        let cells = self.cells();
        let mut widths = HEADERS.map(|h| h.chars().count());
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = format!("{}\n", self.title);
        let line = |out: &mut String, row: &[String]| {
            for (i, (c, w)) in row.iter().zip(widths).enumerate() {
                let pad = " ".repeat(w - c.chars().count());
                match i {
                    0 => {
                        let _ = write!(out, "{c}{pad}  ");
                    }
                    6 => {
                        let _ = writeln!(out, "{c}");
                    }
                    _ => {
                        let _ = write!(out, "{pad}{c}  ");
                    }
                }
            }
        };
        line(&mut out, &HEADERS.map(str::to_owned));
        for row in &cells {
            line(&mut out, row);
        }
        for (i, note) in self.notes.iter().enumerate() {
            let _ = writeln!(out, "  {}. {note}", i + 1);
        }
        out
    }

    /// A Markdown section.
    pub fn markdown(&self) -> String {
        let mut out = format!("### {}\n\n", self.title);
        let _ = writeln!(out, "| {} |", HEADERS.join(" | "));
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---|");
        for row in self.cells() {
            // A `|` inside a cell (`tr | sort`) would end it.
            let row = row.map(|c| c.replace('|', "\\|"));
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        out.push('\n');
        for (i, note) in self.notes.iter().enumerate() {
            let _ = writeln!(out, "{}. {note}", i + 1);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_rates_and_failures() {
        let table = Table {
            title: "word count".into(),
            input_bytes: 100_000_000,
            baseline: Some(0),
            rows: vec![
                Row {
                    system: "native".into(),
                    wall: Some(1.0),
                    cpu: Some(1.9),
                    rss_mib: Some(20.0),
                    check: Check::Equal,
                },
                Row {
                    system: "mr".into(),
                    wall: Some(2.5),
                    cpu: Some(4.8),
                    rss_mib: Some(300.4),
                    check: Check::Differs("x".into()),
                },
                Row {
                    system: "tr | sort".into(),
                    wall: None,
                    cpu: None,
                    rss_mib: None,
                    check: Check::Failed("no python".into()),
                },
            ],
            notes: vec!["a note".into()],
        };
        let text = table.text();
        assert!(text.contains("100.0"), "{text}");
        assert!(text.contains("40.0") && text.contains("2.50") && text.contains("DIFFERS"));
        assert!(
            text.contains("failed") && text.contains("1. a note"),
            "{text}"
        );
        let md = table.markdown();
        assert!(
            md.contains("| mr | 2.50 | 4.80 | 300 | 40.0 | 2.50 | DIFFERS |"),
            "{md}"
        );
        assert!(
            md.contains("| tr \\| sort | – | – | – | – | – | failed |"),
            "{md}"
        );
    }
}
