//! Internal to `mr-sdk`: the WIT bindings of the `mapper-job` world.
//!
//! They live in their own crate because wit-bindgen names its exported per-interface macros after
//! the interface only; generating both worlds (which share the `mapper` and `metadata` exports)
//! in one crate would define those `#[macro_export]` macros twice. Job code never uses this crate
//! directly: `mr_sdk::export_job!` does.

// The generated code names its runtime as `mr_sdk::bindings::rt`, a path that must resolve both
// here and in job crates (where it is `mr-sdk`'s re-export of this module).
extern crate self as mr_sdk;

/// Generated bindings, laid out as `mr_sdk::bindings` so the same paths resolve everywhere.
pub mod bindings {
    pub use wit_bindgen::rt;

    /// Bindings for the `mapper-job-with-events` world: `mapper-job` plus the `lifecycle`
    /// export.
    #[allow(missing_docs)]
    pub mod mapper {
        wit_bindgen::generate!({
            path: "../../../wit/v0.2",
            world: "mapper-job-with-events",
            pub_export_macro: true,
            export_macro_name: "export_mapper_job",
            default_bindings_module: "mr_sdk::bindings::mapper",
            runtime_path: "mr_sdk::bindings::rt",
            type_section_suffix: "mr-mapper-job",
        });
    }
}
