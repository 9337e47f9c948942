#!/usr/bin/env bash
# Installs the servers the end-to-end tests start themselves (a test never passes by skipping a
# missing service; it fails saying to run this):
# - s3s-fs, an S3-compatible server over a local directory (tests/all/objects.rs starts one per
#   test on a free port), built from crates.io at a pinned version into target/tools/bin;
# - the zstd, bzip2 and xz command-line tools (tests/all/io_formats.rs compresses its inputs with
#   the reference tools, not with the crates mr reads them with);
# - PostgreSQL's server binaries (mr-store's tests and tests/all/postgres.rs start throwaway
#   servers with initdb and pg_ctl from /usr/lib/postgresql/*/bin) and libfaketime (one test runs
#   a server whose clock is an hour ahead, and tests/all/hosts.rs workers an hour off);
# - iproute2 (tests/all/hosts.rs builds simulated hosts as network namespaces with `ip netns`).
# Quick when everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v zstd >/dev/null 2>&1 || missing+=(zstd)
command -v bzip2 >/dev/null 2>&1 || missing+=(bzip2)
command -v xz >/dev/null 2>&1 || missing+=(xz-utils)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
compgen -G '/usr/lib/*/faketime/libfaketime.so.1' >/dev/null || missing+=(faketime libfaketime)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup-services: installing ${missing[*]} from Debian"
    if [ "$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

S3S_FS_VERSION=0.14.1
tools=target/tools
if ! [ -x "$tools/bin/s3s-fs" ] || ! grep -qs "s3s-fs $S3S_FS_VERSION " "$tools/.crates.toml"; then
    echo "setup-services: building s3s-fs $S3S_FS_VERSION into $tools/bin (a few minutes, once)"
    CARGO_TARGET_DIR=target/tools-build cargo install s3s-fs --version "$S3S_FS_VERSION" \
        --features binary --locked --root "$tools" --quiet
    rm -rf target/tools-build
fi
