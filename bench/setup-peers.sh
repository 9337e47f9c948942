#!/usr/bin/env bash
# Installs the benchmark's peer systems (DuckDB, Polars, PySpark) from PyPI into a virtualenv,
# target/bench-venv by default (or $1). Idempotent: an existing venv with every package importable
# is left alone. `mr-bench` runs this itself when the venv is missing. PySpark also needs a Java
# 17+ runtime on PATH (or JAVA_HOME); it is checked here but not installed.
#
#   bench/setup-peers.sh [VENV_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-target/bench-venv}
python=${PYTHON:-python3}
# Pinned so that a table can be reproduced; bump deliberately.
packages=(duckdb==2.0.0 polars==2.1.0 pyspark==4.3.0)

if [ -x "$venv/bin/python" ] &&
    "$venv/bin/python" -c 'import duckdb, polars, pyspark' 2>/dev/null; then
    exit 0
fi
echo "setup-peers: creating $venv with ${packages[*]}" >&2
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${packages[@]}"
"$venv/bin/python" -c 'import duckdb, polars, pyspark
print("setup-peers: duckdb", duckdb.__version__, "polars", polars.__version__,
      "pyspark", pyspark.__version__)' >&2
if ! java -version >/dev/null 2>&1; then
    echo "setup-peers: warning: no java on PATH; PySpark will not run (it needs Java 17+)" >&2
fi
