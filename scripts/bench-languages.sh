#!/usr/bin/env bash
# Word count in Rust, Python and JavaScript guests over the same generated corpus, in the same
# run, on the same mr-host: builds the three plugins from source, runs each (WORKERS workers),
# checks that the three outputs are byte-identical, and prints a Markdown table (the README's
# language table comes from this script).
#
#   SIZE=20M WORKERS=2 ./scripts/bench-languages.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${SIZE:-20M}
WORKERS=${WORKERS:-2}
./scripts/setup-languages.sh
rustup target add wasm32-wasip2 >/dev/null
cargo build --release -p mr-cli -p mr-corpus
export MR_PYTHON=${MR_PYTHON:-$PWD/target/lang/venv/bin/python}
host=target/release/mr-host
data=target/bench-languages
mkdir -p "$data"
corpus="$data/corpus-$SIZE.txt"
[ -f "$corpus" ] || target/release/mr-corpus --bytes "$SIZE" --seed 7 --out "$corpus" >&2

results=()
for plugin in wordcount wordcount-python wordcount-js; do
    start=$(date +%s.%N)
    wasm=$($host build "plugins/$plugin")
    build_s=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
    # Untimed first run: compiles the component into the cache (5 s for Python and JavaScript).
    $host run "$wasm" --input "$corpus" --output "$data/out-$plugin" --overwrite \
        --workers "$WORKERS" --json >/dev/null
    summary=$($host run "$wasm" --input "$corpus" --output "$data/out-$plugin" --overwrite \
        --workers "$WORKERS" --json)
    results+=("$plugin $build_s $(echo "$summary" | "$MR_PYTHON" -c '
import json, sys
s = json.load(sys.stdin)
print(s["input_bytes"], s["wall_seconds"], s["map_seconds"], s["counters"]["records-in"])')")
done
for plugin in wordcount-python wordcount-js; do
    diff -r -q "$data/out-wordcount" "$data/out-$plugin" >/dev/null ||
        { echo "error: $plugin output differs from the Rust plugin's" >&2; exit 1; }
done

echo "word count, $(du -h "$corpus" | cut -f1) corpus ($SIZE, seed 7), $WORKERS workers, outputs byte-identical:"
echo
echo "| guest | wall s | MB/s | vs Rust | mr-host build s |"
echo "|---|---|---|---|---|"
rust_wall=
for r in "${results[@]}"; do
    read -r plugin build_s bytes wall _map _records <<<"$r"
    rust_wall=${rust_wall:-$wall}
    case $plugin in
        wordcount) name="Rust (plugins/wordcount)";;
        wordcount-python) name="Python (plugins/wordcount-python)";;
        wordcount-js) name="JavaScript (plugins/wordcount-js)";;
    esac
    awk -v n="$name" -v w="$wall" -v b="$bytes" -v r="$rust_wall" -v s="$build_s" \
        'BEGIN { printf "| %s | %.2f | %.1f | %.0fx | %.1f |\n", n, w, b / 1e6 / w, w / r, s }'
done
echo
echo "(build s: Rust rebuilds incrementally, so a warm cargo target shows ~0; Python and"
echo "JavaScript components are built from scratch every time.)"
