#!/usr/bin/env bash
# Installs the build tree BUILD into a temporary prefix, builds this folder as
# a separate project against it, and runs the result.
# Usage: run.sh BUILD_DIR
set -euo pipefail
build=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$here" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$work/build" >/dev/null
# Port 1 on loopback: nothing listens there.
"$work/build/consumer" 127.0.0.1:1
