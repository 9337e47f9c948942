#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, host tests (which build the guests from source
# with `mr-host build`), and the guests' own native unit tests. Ends with one
# "N passed, M failed" line summed over every test binary.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2 >/dev/null
rustup component add rustfmt clippy >/dev/null
cargo fmt --all -- --check
(cd plugins && cargo fmt --all -- --check)
cargo clippy --release --workspace --all-targets -- -D warnings
(cd plugins && cargo clippy --target wasm32-wasip2 --release -- -D warnings)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --release --workspace 2>&1 | tee "$log"
(cd plugins && cargo test) 2>&1 | tee -a "$log"
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f; if (p == 0 || f > 0) exit 1 }' "$log"
