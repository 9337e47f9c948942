#!/usr/bin/env bash
# Installs the pinned toolchains of the Python and JavaScript SDKs, for the tests, the benchmark
# and anyone building the Python or JavaScript plugins from this checkout:
# - target/lang/venv: a virtualenv with sdk/python (editable) and what it pins: componentize-py
#   0.25.1, and pytest for the SDK's tests;
# - sdk/js/node_modules: the JavaScript SDK's esbuild and componentize-js 0.23, exactly as its
#   package-lock.json says (`npm install` with the lock: `npm ci` refuses this lock because
#   jco's and rolldown's optional binaries for other platforms are not resolvable here);
# - node_modules/mr-sdk links in the JavaScript plugins, for their native tests.
# Quick when everything is in place: each step is skipped while its inputs are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/lang/venv
stamp="$venv/.mr-installed"
want=$(cat sdk/python/pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup-languages: Python SDK + componentize-py into $venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e 'sdk/python[test,docs]'
    echo "$want" > "$stamp"
fi

if ! cmp -s sdk/js/package-lock.json sdk/js/node_modules/.mr-installed-lock 2>/dev/null; then
    echo "setup-languages: JavaScript SDK dependencies into sdk/js/node_modules"
    npm install --prefix sdk/js --no-audit --no-fund --loglevel=error
    cp sdk/js/package-lock.json sdk/js/node_modules/.mr-installed-lock
fi
for project in plugins/*-js; do
    if [ ! -e "$project/node_modules/mr-sdk" ]; then
        npm install --prefix "$project" --no-audit --no-fund --loglevel=error
    fi
done
