#!/usr/bin/env bash
# Installs what the tests of `mr-host serve` need besides Rust (tests/all/serve.rs and
# tests/all/serve_browser.rs fail, saying to run this, when something is missing):
# - Debian's chromium (the browser test drives the real headless browser);
# - playwright-core into tests/browser/node_modules, exactly as tests/browser/package-lock.json
#   pins it (npm ci);
# - schemathesis into target/serve-venv, as tests/serve-requirements.txt pins it.
# Quick when everything is in place: each step is skipped while its inputs are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
    echo "setup-serve-tests: installing Debian's chromium"
    if [ "$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi

if ! cmp -s tests/browser/package-lock.json tests/browser/node_modules/.mr-installed-lock 2>/dev/null; then
    echo "setup-serve-tests: playwright-core into tests/browser/node_modules"
    npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
    cp tests/browser/package-lock.json tests/browser/node_modules/.mr-installed-lock
fi

venv=target/serve-venv
if ! cmp -s tests/serve-requirements.txt "$venv/.mr-installed" 2>/dev/null; then
    echo "setup-serve-tests: schemathesis into $venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/serve-requirements.txt
    cp tests/serve-requirements.txt "$venv/.mr-installed"
fi
