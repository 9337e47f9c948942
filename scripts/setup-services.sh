#!/usr/bin/env bash
# Installs the servers the end-to-end tests start themselves (a test never passes by skipping a
# missing service; it fails saying to run this):
# - s3s-fs, an S3-compatible server over a local directory (tests/all/objects.rs starts one per
#   test on a free port), built from crates.io at a pinned version into target/tools/bin;
# - the zstd, bzip2 and xz command-line tools (tests/all/io_formats.rs compresses its inputs with
#   the reference tools, not with the crates mr reads them with).
# Quick when everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in zstd bzip2 xz; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup-services: installing ${missing[*]} from Debian"
    if [ "$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq zstd bzip2 xz-utils >/dev/null
fi

S3S_FS_VERSION=0.14.1
tools=target/tools
if ! [ -x "$tools/bin/s3s-fs" ] || ! grep -qs "s3s-fs $S3S_FS_VERSION " "$tools/.crates.toml"; then
    echo "setup-services: building s3s-fs $S3S_FS_VERSION into $tools/bin (a few minutes, once)"
    CARGO_TARGET_DIR=target/tools-build cargo install s3s-fs --version "$S3S_FS_VERSION" \
        --features binary --locked --root "$tools" --quiet
    rm -rf target/tools-build
fi
