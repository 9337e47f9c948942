#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, host tests (which build the guests from source
# with `mr-host build`, in Rust, Python and JavaScript), the guests' own native unit tests, and
# the Python and JavaScript SDKs' unit tests (pytest, node --test). Ends with one
# "N passed, M failed" line summed over every test run.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2 >/dev/null
rustup component add rustfmt clippy >/dev/null
# The pinned Python and JavaScript toolchains (componentize-py, componentize-js, esbuild, pytest).
./scripts/setup-languages.sh
# Chromium, playwright-core and schemathesis for the tests of `mr-host serve`.
./scripts/setup-serve-tests.sh
# s3s-fs (the S3-compatible server the object-storage tests start) and the compression tools.
./scripts/setup-services.sh
# The Python API reference is up to date with the docstrings; the JavaScript typings type-check.
./scripts/api-docs.sh --check
cargo fmt --all -- --check
(cd plugins && cargo fmt --all -- --check)
cargo clippy --release --workspace --all-targets -- -D warnings
(cd plugins && cargo clippy --target wasm32-wasip2 --release -- -D warnings)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --release --workspace 2>&1 | tee "$log"
(cd plugins && cargo test) 2>&1 | tee -a "$log"
# Python: the SDK's tests and the Python plugins' native tests.
target/lang/venv/bin/python -m pytest -q -p no:cacheprovider \
    sdk/python/tests plugins/*-python 2>&1 | tee -a "$log"
# JavaScript: the SDK's tests and the JavaScript plugins' native tests (TAP summary lines).
node --test sdk/js/test plugins/*-js 2>&1 | tee -a "$log"
# Sums cargo's "test result: ok. N passed; M failed", pytest's "N passed, M failed in 0.1s" and
# node's "# pass N" / "# fail M".
awk '/^test result:/ || (/ in [0-9.]+s/ && /(passed|failed)/) {
         for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     /^# pass [0-9]+$/ { p += $3 }
     /^# fail [0-9]+$/ { f += $3 }
     END { printf "%d passed, %d failed\n", p, f; if (p == 0 || f > 0) exit 1 }' "$log"
