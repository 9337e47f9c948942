#!/usr/bin/env bash
# The SDKs' API references:
# - Python: docs/api/python/, rendered from the mr_sdk docstrings by pdoc (pinned with what it
#   renders with in sdk/python's [docs] extra, which scripts/setup-languages.sh installs into
#   target/lang/venv);
# - JavaScript: the typings in sdk/js/types are type-checked (tsc --noEmit, TypeScript pinned in
#   sdk/js/package-lock.json); docs/javascript-api.md is kept complete by sdk/js's tests.
# `--check` (CI, scripts/test.sh) regenerates the Python pages into a temporary directory and
# fails if docs/api/python differs: run this script without it and commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${MR_PYTHON:-target/lang/venv/bin/python}
out=docs/api/python
if [ "${1:-}" = "--check" ]; then
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
else
    rm -rf "$out"
fi
"$python" -m pdoc --no-search --no-show-source --docformat restructuredtext \
    --footer-text "mr_sdk $(sed -n 's/^version = "\(.*\)"/\1/p' sdk/python/pyproject.toml)" \
    -o "$out" mr_sdk mr_sdk.testing mr_sdk.build
if [ "${1:-}" = "--check" ]; then
    if ! diff -r "$out" docs/api/python >/dev/null; then
        diff -r "$out" docs/api/python | head -20 >&2 || true
        echo "docs/api/python is out of date with the Python SDK's docstrings: run scripts/api-docs.sh and commit it" >&2
        exit 1
    fi
    echo "docs/api/python is up to date"
fi
npm run --silent --prefix sdk/js typecheck
