//! The job contract's names: the WIT package `mr:job` (`wit/job.wit`), its versions and the
//! fully qualified names of its interfaces (`mr:job/mapper@0.2.0`), in one place.
//!
//! The version is a parameter everywhere a name is built, so that a later version of the
//! contract can be added beside this one and components built against either keep loading.

/// The WIT package of the job contract.
pub const PACKAGE: &str = "mr:job";

/// The newest contract version this host implements (`package mr:job@0.2.0`,
/// `wit/v0.2/job.wit`).
pub const VERSION: &str = "0.2.0";

/// The 0.1 contract version this host still implements (`wit/job.wit`).
pub const VERSION_0_1: &str = "0.1.1";

/// Every contract version the host loads, newest first. 0.1.1 only added typed parameters, so
/// by the component model's semver rules the bindings for 0.1.1 find a 0.1.0 component's
/// exports and satisfy its imports; the host looks up `param-types` only where it exists.
/// 0.2.0 is bound separately (its map input keys are empty, locations come on demand).
pub const SUPPORTED_VERSIONS: &[&str] = &[VERSION, VERSION_0_1, "0.1.0"];

/// Whether a component of contract `version` gets map input without keys and asks for
/// locations on demand (`context.record-location`, 0.2.0), rather than getting each record's
/// location as its key (0.1.x).
pub fn locations_on_demand(version: &str) -> bool {
    !version.starts_with("0.1.")
}

/// The interfaces a job exports.
pub mod exports {
    /// `describe`: every job.
    pub const METADATA: &str = "metadata";
    /// `map`: every job.
    pub const MAPPER: &str = "mapper";
    /// `combine`: `mapreduce-job` only.
    pub const COMBINER: &str = "combiner";
    /// `reduce`: `mapreduce-job` only.
    pub const REDUCER: &str = "reducer";
    /// `on-event`: jobs built for the `-with-events` worlds.
    pub const LIFECYCLE: &str = "lifecycle";
    /// `param-types`: jobs built against 0.1.1 or later.
    pub const PARAM_TYPES: &str = "param-types";
}

/// The interfaces the host provides to a job.
pub mod imports {
    /// Counters, logs, parameters, the task identity.
    pub const CONTEXT: &str = "context";
    /// The reducer's value stream.
    pub const VALUES: &str = "values";
    /// Shared types.
    pub const TYPES: &str = "types";
    /// All of them.
    pub const ALL: &[&str] = &[CONTEXT, VALUES, TYPES];
}

/// The fully qualified name of a contract interface: `interface_name("mapper", "0.1.0")` is
/// `mr:job/mapper@0.1.0`.
pub fn interface_name(interface: &str, version: &str) -> String {
    format!("{PACKAGE}/{interface}@{version}")
}

/// Splits `mr:job/mapper@0.1.0` into `("mapper", "0.1.0")`; `None` for names outside the
/// contract's package.
pub fn parse_interface_name(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix(PACKAGE)?.strip_prefix('/')?;
    rest.split_once('@')
}

/// Which world `exports` (a component's export names) implement, and in which contract version.
pub fn detect_world(exports: &[String]) -> Option<(crate::World, &'static str)> {
    SUPPORTED_VERSIONS.iter().find_map(|&version| {
        let has = |interface: &str| exports.contains(&interface_name(interface, version));
        if has(exports::REDUCER) {
            Some((crate::World::MapreduceJob, version))
        } else if has(exports::MAPPER) && has(exports::METADATA) {
            Some((crate::World::MapperJob, version))
        } else {
            None
        }
    })
}

/// What a job must export, for the message that refuses a component that is not one.
pub fn expected_exports() -> String {
    let name = |interface| format!("`{}`", interface_name(interface, VERSION));
    format!(
        "{} and {} (world `mapper-job`), plus {} and {} for world `mapreduce-job` (or the same \
         interfaces of contract {})",
        name(exports::MAPPER),
        name(exports::METADATA),
        name(exports::REDUCER),
        name(exports::COMBINER),
        SUPPORTED_VERSIONS[1..].join(" or ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let name = interface_name(exports::MAPPER, VERSION);
        assert_eq!(name, "mr:job/mapper@0.2.0");
        assert_eq!(parse_interface_name(&name), Some(("mapper", "0.2.0")));
        assert_eq!(
            parse_interface_name("mr:job/reducer@0.2.0"),
            Some(("reducer", "0.2.0"))
        );
        assert_eq!(parse_interface_name("wasi:io/poll@0.2.0"), None);
        assert_eq!(parse_interface_name("mr:jobs/mapper@0.1.0"), None);
    }

    #[test]
    fn worlds_are_told_apart_by_their_exports() {
        let names = |list: &[&str]| -> Vec<String> {
            list.iter().map(|i| interface_name(i, VERSION)).collect()
        };
        assert_eq!(
            detect_world(&names(&["metadata", "mapper"])),
            Some((crate::World::MapperJob, VERSION))
        );
        assert_eq!(
            detect_world(&names(&["metadata", "mapper", "combiner", "reducer"])),
            Some((crate::World::MapreduceJob, VERSION))
        );
        assert_eq!(detect_world(&names(&["mapper"])), None);
        // A 0.1.0 component (no `param-types`) is told apart the same way.
        assert_eq!(
            detect_world(&["mr:job/metadata@0.1.0".into(), "mr:job/mapper@0.1.0".into()]),
            Some((crate::World::MapperJob, "0.1.0"))
        );
        assert_eq!(
            detect_world(&["mr:job/metadata@0.1.1".into(), "mr:job/mapper@0.1.1".into()]),
            Some((crate::World::MapperJob, "0.1.1"))
        );
        assert_eq!(detect_world(&["mr:job/mapper@9.9.9".to_owned()]), None);
        assert!(locations_on_demand("0.2.0"));
        assert!(!locations_on_demand("0.1.1") && !locations_on_demand("0.1.0"));
        assert_eq!(
            expected_exports(),
            "`mr:job/mapper@0.2.0` and `mr:job/metadata@0.2.0` (world `mapper-job`), plus \
             `mr:job/reducer@0.2.0` and `mr:job/combiner@0.2.0` for world `mapreduce-job` (or \
             the same interfaces of contract 0.1.1 or 0.1.0)"
        );
    }
}
