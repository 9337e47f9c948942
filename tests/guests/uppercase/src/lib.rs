//! Test fixture for the `mapper-job` world: upper-cases every line (ASCII only) and keeps the
//! line's location as the key. It asks for lifecycle events and logs each one (at info level),
//! and bumps a counter while doing so, which the host must ignore.
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

impl Lifecycle for Uppercase {
    fn on_event(&mut self, kind: EventKind, task: &mr_sdk::context::Task) -> Result {
        counter("events-seen", 1);
        log::info(format!(
            "event {kind:?} {} shard {} slice {} attempt {}",
            task.phase, task.shard, task.slice, task.attempt
        ));
        Ok(())
    }
}

mr_sdk::export_job!(Uppercase: map, events);
