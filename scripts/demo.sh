#!/usr/bin/env bash
# Sets everything up and runs word count end to end on a generated corpus:
# installs the wasm target, builds mr-host and the word-count plugin, generates a 128 MB corpus
# (deterministic), and runs the job on all cores, printing the summary.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${SIZE:-128M}
if [ ! -x target/release/mr-host ]; then
    # Measured: README.md, "Two commands".
    echo "demo: first run: compiling mr-host (wasmtime, Cranelift, SQLite) takes about 15 CPU-minutes," >&2
    echo "demo: about 8-10 minutes on an idle 2-core machine; later runs take seconds." >&2
fi
rustup target add wasm32-wasip2 >/dev/null
cargo build --release -p mr-cli -p mr-corpus
WASM=$(target/release/mr-host build plugins/wordcount)
DATA=target/demo
if [ ! -f "$DATA/corpus-$SIZE.txt" ]; then
  target/release/mr-corpus --bytes "$SIZE" --seed 7 --out "$DATA/corpus-$SIZE.txt"
fi
target/release/mr-host inspect "$WASM"
target/release/mr-host run "$WASM" --input "$DATA/corpus-$SIZE.txt" --output "$DATA/wordcount" --overwrite
echo "the job as its store recorded it:"
target/release/mr-host status --output "$DATA/wordcount" --events 3
echo "top words:"
# sed, not head: head exits after five lines, and a sort still writing then dies of SIGPIPE,
# which pipefail turns into the script's exit status (141) after a successful run.
sort -t$'\t' -k2,2nr "$DATA"/wordcount/part-* | sed -n 1,5p
