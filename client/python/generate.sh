#!/bin/sh
# Regenerates the committed Python stubs:
#   src/idemkey/v1/idemkey_pb2{,_grpc}.py   from proto/idemkey/v1/idemkey.proto
#   examples/payments_pb2{,_grpc}.py        from proto/idemkey/examples/payments.proto
# The proto package idemkey.v1 lands in the Python package idemkey.v1, so the
# generated imports ("from idemkey.v1 import idemkey_pb2") need no rewriting.
# The example API is no part of the idemkey package. Generated with proto/
# as proto_path its stubs would import "from idemkey.examples import
# payments_pb2", which Python looks up inside the idemkey package and fails;
# with the proto's own directory they are the top-level modules payments_pb2
# and payments_pb2_grpc, found next to the example apps (a script's
# directory is first on sys.path). Only the descriptor's file name changes
# (payments.proto); messages and service keep their full names, so the wire
# and the stored bytes are those of every language.
# Usage: generate.sh [OUT_DIR]   (default: this script's directory; writes
# OUT_DIR/src/idemkey/v1 and OUT_DIR/examples)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$here}
plugin=--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin
mkdir -p "$out/src" "$out/examples"
protoc -I"$root/proto" --python_out="$out/src" --grpc_out="$out/src" \
    "$plugin" "$root/proto/idemkey/v1/idemkey.proto"
protoc -I"$root/proto/idemkey/examples" --python_out="$out/examples" \
    --grpc_out="$out/examples" "$plugin" \
    "$root/proto/idemkey/examples/payments.proto"
