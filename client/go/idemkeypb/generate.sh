#!/bin/sh
# generate.sh — regenerates the Go code of proto/idemkey/v1/*.proto into this
# directory (package idemkeypb).
#
#   idemkeypb/generate.sh            write the generated files here
#   idemkeypb/generate.sh OUTDIR     write them into OUTDIR instead (the
#                                    regeneration test compares the bytes)
#
# Needs protoc and protoc-gen-go-grpc on PATH (Debian: protobuf-compiler,
# protoc-gen-go-grpc). protoc-gen-go is built from the module's own
# google.golang.org/protobuf (v1.28.1, Debian's golang-google-protobuf-dev),
# so the generator always matches the runtime; Debian's /usr/bin/protoc-gen-go
# is the old APIv1 generator and is not used.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
module=$(cd "$here/.." && pwd)
root=$(cd "$module/../.." && pwd)
out=${1:-$here}
pkg=github.com/idemkey/idemkey/client/go/idemkeypb
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$module" && go build -o "$tmp/bin/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go)
maps="Midemkey/v1/idemkey.proto=$pkg;idemkeypb,Midemkey/v1/admin.proto=$pkg;idemkeypb"
mkdir -p "$tmp/out"
protoc -I "$root/proto" -I /usr/include \
  --plugin=protoc-gen-go="$tmp/bin/protoc-gen-go" \
  --go_out="paths=source_relative,$maps:$tmp/out" \
  --go-grpc_out="paths=source_relative,$maps:$tmp/out" \
  "$root/proto/idemkey/v1/idemkey.proto" "$root/proto/idemkey/v1/admin.proto"
mkdir -p "$out"
for f in "$tmp"/out/idemkey/v1/*.go; do
  cp "$f" "$out/$(basename "$f")"
done
