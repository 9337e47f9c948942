//! [`export_job!`](crate::export_job): turns a job type into the exports of a component. On
//! the host target (the native test harness, doc tests) it exports nothing, and instead tells
//! [`crate::testing::Harness::run_files`] which phases the component would run.

/// Exports a job type as a WebAssembly component.
///
/// - `export_job!(MyJob: map)` — a map-only job (`mapper-job` world).
/// - `export_job!(MyJob: map, reduce)` — map and reduce (`mapreduce-job` world).
/// - `export_job!(MyJob: map, combine, reduce)` — with a map-side combiner.
/// - Any of these followed by `, events` also delivers lifecycle events to the job's
///   [`Lifecycle`] implementation.
///
/// Every component the SDK builds exports the `lifecycle` interface (of the `-with-events`
/// worlds); without `events` it does nothing.
///
/// Natively (not on wasm) the macro implements [`testing::Exported`](crate::testing::Exported)
/// instead, so that [`Harness::run_files`](crate::testing::Harness::run_files) runs the phases
/// the component runs.
#[macro_export]
macro_rules! export_job {
    ($job:ty: map) => {
        $crate::__export_mapper!($job, |_job, _kind, _task| Ok(()));
        $crate::__export_native!($job, map_records);
    };
    ($job:ty: map, events) => {
        $crate::__export_mapper!($job, |job, kind, task| {
            $crate::bindings::mapper_on_event(job, kind, task)
        });
        $crate::__export_native!($job, map_records);
    };
    ($job:ty: map, reduce) => {
        $crate::__export_native!($job, mapreduce_records);
        $crate::__export_mapreduce!(
            $job,
            false,
            |job, input| { $crate::bindings::mapreduce_map(job, input) },
            |_job, _groups| { $crate::bindings::mapreduce_no_combiner() },
            |_job, _kind, _task| Ok(())
        );
    };
    ($job:ty: map, reduce, events) => {
        $crate::__export_native!($job, mapreduce_records);
        $crate::__export_mapreduce!(
            $job,
            false,
            |job, input| { $crate::bindings::mapreduce_map(job, input) },
            |_job, _groups| { $crate::bindings::mapreduce_no_combiner() },
            |job, kind, task| { $crate::bindings::mapreduce_on_event(job, kind, task) }
        );
    };
    ($job:ty: map, combine, reduce) => {
        $crate::__export_native!($job, mapreduce_combined_records);
        // With a combiner, each map batch is pre-combined inside the guest.
        $crate::__export_mapreduce!(
            $job,
            true,
            |job, input| { $crate::bindings::mapreduce_map_combined(job, input) },
            |job, groups| { $crate::bindings::mapreduce_combine(job, groups) },
            |_job, _kind, _task| Ok(())
        );
    };
    ($job:ty: map, combine, reduce, events) => {
        $crate::__export_native!($job, mapreduce_combined_records);
        $crate::__export_mapreduce!(
            $job,
            true,
            |job, input| { $crate::bindings::mapreduce_map_combined(job, input) },
            |job, groups| { $crate::bindings::mapreduce_combine(job, groups) },
            |job, kind, task| { $crate::bindings::mapreduce_on_event(job, kind, task) }
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_native {
    ($job:ty, $run:ident) => {
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            impl $crate::testing::Exported for $job {
                fn run_records(
                    harness: &$crate::testing::Harness,
                    records: &[(::std::vec::Vec<u8>, ::std::vec::Vec<u8>)],
                ) -> ::core::result::Result<$crate::testing::Output, $crate::testing::Failure>
                {
                    harness.$run::<$job>(records)
                }
            }
        };
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_mapper {
    ($job:ty, $on_event:expr) => {
        // Exports exist only in the component; natively the job is plain Rust for the harness.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct MrJobExport;
            ::std::thread_local! {
                static MR_JOB: ::core::cell::RefCell<$job> =
                    ::core::cell::RefCell::new(<$job as ::core::default::Default>::default());
            }
            use $crate::bindings::mapper as b;
            impl b::exports::mr::job::metadata::Guest for MrJobExport {
                fn describe() -> b::mr::job::types::JobInfo {
                    $crate::bindings::mapper_job_info(&<$job as $crate::Job>::INFO)
                }
            }
            impl b::exports::mr::job::param_types::Guest for MrJobExport {
                fn param_types() -> ::std::vec::Vec<b::exports::mr::job::param_types::ParamTypeInfo>
                {
                    $crate::bindings::mapper_param_types(&<$job as $crate::Job>::INFO)
                }
            }
            impl b::exports::mr::job::mapper::Guest for MrJobExport {
                fn map(
                    input: ::std::vec::Vec<u8>,
                ) -> ::core::result::Result<::std::vec::Vec<u8>, b::mr::job::types::JobError>
                {
                    MR_JOB.with_borrow_mut(|job| $crate::bindings::mapper_map(job, &input))
                }
            }
            impl b::exports::mr::job::lifecycle::Guest for MrJobExport {
                fn on_event(
                    kind: b::exports::mr::job::lifecycle::EventKind,
                    task: b::mr::job::types::TaskIdentity,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    MR_JOB.with_borrow_mut(|job| ($on_event)(job, kind, task))
                }
            }
    b::export_mapper_job!(MrJobExport with_types_in $crate::bindings::mapper);
        };
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_mapreduce {
    ($job:ty, $has_combiner:expr, $map:expr, $combine:expr, $on_event:expr) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct MrJobExport;
            ::std::thread_local! {
                static MR_JOB: ::core::cell::RefCell<$job> =
                    ::core::cell::RefCell::new(<$job as ::core::default::Default>::default());
            }
            use $crate::bindings::mapreduce as b;
            type JobError = b::mr::job::types::JobError;
            impl b::exports::mr::job::metadata::Guest for MrJobExport {
                fn describe() -> b::mr::job::types::JobInfo {
                    $crate::bindings::mapreduce_job_info(
                        &<$job as $crate::Job>::INFO,
                        $has_combiner,
                    )
                }
            }
            impl b::exports::mr::job::param_types::Guest for MrJobExport {
                fn param_types() -> ::std::vec::Vec<b::exports::mr::job::param_types::ParamTypeInfo>
                {
                    $crate::bindings::mapreduce_param_types(&<$job as $crate::Job>::INFO)
                }
            }
            impl b::exports::mr::job::mapper::Guest for MrJobExport {
                fn map(
                    input: ::std::vec::Vec<u8>,
                ) -> ::core::result::Result<::std::vec::Vec<u8>, JobError> {
                    MR_JOB.with_borrow_mut(|job| ($map)(job, &input))
                }
            }
            impl b::exports::mr::job::combiner::Guest for MrJobExport {
                fn combine(
                    groups: ::std::vec::Vec<u8>,
                ) -> ::core::result::Result<::std::vec::Vec<u8>, JobError> {
                    MR_JOB.with_borrow_mut(|job| ($combine)(job, &groups))
                }
            }
            impl b::exports::mr::job::reducer::Guest for MrJobExport {
                fn reduce(
                    groups: ::std::vec::Vec<u8>,
                    rest: &b::exports::mr::job::reducer::ValueStream,
                ) -> ::core::result::Result<::std::vec::Vec<u8>, JobError> {
                    MR_JOB.with_borrow_mut(|job| {
                        $crate::bindings::mapreduce_reduce(job, &groups, rest)
                    })
                }
            }
            impl b::exports::mr::job::lifecycle::Guest for MrJobExport {
                fn on_event(
                    kind: b::exports::mr::job::lifecycle::EventKind,
                    task: b::mr::job::types::TaskIdentity,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    MR_JOB.with_borrow_mut(|job| ($on_event)(job, kind, task))
                }
            }
    b::export_mapreduce_job!(MrJobExport with_types_in $crate::bindings::mapreduce);
        };
    };
}
