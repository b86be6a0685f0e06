#!/usr/bin/env bash
# Installs the build tree BUILD into a temporary prefix, checks that the
# package holds no server code, builds this folder as a separate project
# against it (every installed header compiled, every exported target
# linked), and runs the result.
# Usage: run.sh BUILD_DIR
set -euo pipefail
build=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null

# Only idemkey/... headers, and none that reaches into the server or RocksDB.
if [ -e "$prefix/include/server" ]; then
  echo "FAIL: the package installs include/server"; exit 1
fi
stray=$(find "$prefix/include" -mindepth 1 -maxdepth 1 ! -name idemkey)
if [ -n "$stray" ]; then echo "FAIL: installed outside include/idemkey: $stray"; exit 1; fi
if grep -rlE '#include +"(server|rocksdb)/' "$prefix/include"; then
  echo "FAIL: the installed headers above include server or RocksDB headers"
  exit 1
fi

# Each installed header compiled on its own (one source file per header),
# from the install tree alone: a header that needs another include first,
# or a file that was not installed, fails here.
mkdir -p "$work/headers"
headers=$(cd "$prefix/include" && find idemkey -name '*.h' | sort)
sources=""
for h in $headers; do
  src="$work/headers/$(echo "$h" | tr / _).cc"
  echo "#include \"$h\"" > "$src"
  sources="$sources;$src"
done
echo "$(echo "$headers" | wc -l) installed headers, each compiled alone"

cmake -S "$here" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=Release "-DHEADER_SOURCES=${sources#;}" >/dev/null
ninja -C "$work/build" >/dev/null
# Port 1 on loopback: nothing listens there.
"$work/build/consumer" 127.0.0.1:1
