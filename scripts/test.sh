#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, host tests (which build the guests from source
# with `mr-host build`), and the guests' own native unit tests.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2 >/dev/null
rustup component add rustfmt clippy >/dev/null
cargo fmt --all -- --check
(cd plugins && cargo fmt --all -- --check)
cargo clippy --release --workspace --all-targets -- -D warnings
(cd plugins && cargo clippy --target wasm32-wasip2 --release -- -D warnings)
cargo test --release --workspace
(cd plugins && cargo test)
