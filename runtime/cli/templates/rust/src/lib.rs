//! {{name}}: counts words (runs of ASCII letters and digits, lowercased). Replace the bodies
//! below with your own job; `mr-host build .` compiles it, `cargo test` runs the tests natively.
use mr_sdk::prelude::*;

#[derive(Default)]
pub struct {{type}};

impl Job for {{type}} {
    const INFO: JobInfo = JobInfo::new("{{name}}", "0.1.0")
        .description("Counts words (runs of ASCII letters and digits, lowercased).");
}

impl Mapper for {{type}} {
    fn map(&mut self, record: Record<'_>, out: &mut Emitter) -> Result {
        for word in record.value.split(|b| !b.is_ascii_alphanumeric()) {
            if !word.is_empty() {
                out.emit(word.to_ascii_lowercase(), b"1");
            }
        }
        Ok(())
    }
}

impl Combiner for {{type}} {
    fn combine(
        &mut self,
        _key: &[u8],
        values: &mut Values<'_>,
        out: &mut ValueEmitter<'_>,
    ) -> Result {
        out.emit(values.sum_u64()?.to_string());
        Ok(())
    }
}

impl Reducer for {{type}} {
    fn reduce(&mut self, key: &[u8], values: &mut Values<'_>, out: &mut Emitter) -> Result {
        out.emit(key, values.sum_u64()?.to_string());
        Ok(())
    }
}

mr_sdk::export_job!({{type}}: map, combine, reduce);

#[cfg(test)]
mod tests {
    use super::*;
    use mr_sdk::testing::Harness;

    #[test]
    fn counts_words() {
        let out = Harness::new()
            .run_mapreduce_combined::<{{type}}>(&["The cat", "the hat"])
            .unwrap();
        assert_eq!(out.lines(), ["cat\t1", "hat\t1", "the\t2"]);
    }
}
