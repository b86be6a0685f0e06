#!/bin/sh
# Regenerates src/idemkey/v1/idemkey_pb2{,_grpc}.py from proto/idemkey/v1/idemkey.proto.
# The proto package idemkey.v1 lands in the Python package idemkey.v1, so the
# generated imports ("from idemkey.v1 import idemkey_pb2") need no rewriting.
# Usage: generate.sh [OUT_DIR]   (default: src, next to this script)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$here/src}
protoc -I"$root/proto" --python_out="$out" --grpc_out="$out" \
    --plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin \
    "$root/proto/idemkey/v1/idemkey.proto"
