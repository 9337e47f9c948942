//! The new user's path and the edit-run loop, end to end with the real `mr-host`: projects
//! created by `mr-host new` outside this checkout that build, move and run; `mr-host run DIR`
//! rebuilding stale projects; what `run` says about things that are not components; `inspect`'s
//! hash and build time; the compiled-component cache's pruning; the Rust SDK's panic text.

mod support;

use support::*;

#[test]
fn a_rust_panic_shows_its_message_and_location_without_backtrace_advice() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "a\nb POISON\nc\n").unwrap();
    let err = run_err(&run_args(
        &guest("faulty"),
        &input,
        &dir.path().join("out"),
        &["--param", "panic-on=POISON", "--max-attempts", "1"],
    ));
    let location = format!("{}:2", input.display());
    assert!(
        err.contains(&format!(
            "| panicked at {}:41:13: found the panic marker \"POISON\" at {location}",
            repo().join("tests/guests/faulty/src/lib.rs").display()
        )),
        "{err}"
    );
    // The standard hook's advice, impossible to follow in the sandbox, is gone.
    assert!(!err.contains("RUST_BACKTRACE"), "{err}");
}
