//! Test fixture for the `mapper-job` world: upper-cases every line (ASCII only) and keeps the
//! line's location as the key.
use mr_sdk::prelude::*;

#[derive(Default)]
pub struct Uppercase;

impl Job for Uppercase {
    const INFO: JobInfo = JobInfo::new("uppercase", "0.0.1").description("Upper-cases lines.");
}

impl Mapper for Uppercase {
    fn map(&mut self, record: Record<'_>, out: &mut Emitter) -> Result {
        out.emit(b"", record.value.to_ascii_uppercase());
        Ok(())
    }
}

mr_sdk::export_job!(Uppercase: map);
