//! Identity: a map-only job that emits every record unchanged, with an empty key, so the text
//! sink writes the record alone. Useful to convert between formats (e.g. JSONL files into a
//! SQLite table with `--sink sqlite:...&shape=object`), and as the benchmark of the wasm
//! boundary itself: the guest does nothing but copy (`mr-bench boundary`).
use mr_sdk::prelude::*;

#[derive(Default)]
pub struct Identity;

impl Job for Identity {
    const INFO: JobInfo = JobInfo::new("identity", "0.1.0")
        .description("Copies every record to the output unchanged.");
}

impl Mapper for Identity {
    fn map(&mut self, record: Record<'_>, out: &mut Emitter) -> Result {
        out.emit(b"", record.value);
        Ok(())
    }
}

mr_sdk::export_job!(Identity: map);

#[cfg(test)]
mod tests {
    use super::*;
    use mr_sdk::testing::Harness;

    #[test]
    fn copies_records() {
        let out = Harness::new()
            .run_map::<Identity>(&["a b", "", "c"])
            .unwrap();
        assert_eq!(out.lines(), ["a b", "", "c"]);
    }
}
