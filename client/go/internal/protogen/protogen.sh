#!/bin/sh
# protogen.sh — generates the Go code (messages and gRPC services) of protos
# under the repository's proto/ into one package of this module. Each
# generated package's generate.sh calls it with its own protos, so that all
# of them are made the same way.
#
#   internal/protogen/protogen.sh OUTDIR IMPORTPATH PROTO...
#
# PROTO is relative to proto/ (idemkey/v1/idemkey.proto); all of them go
# into the package IMPORTPATH, whose files are written into OUTDIR.
#
# Needs protoc and protoc-gen-go-grpc on PATH (Debian: protobuf-compiler,
# protoc-gen-go-grpc). protoc-gen-go is built from the module's own
# google.golang.org/protobuf (v1.28.1, Debian's golang-google-protobuf-dev),
# so the generator always matches the runtime; Debian's /usr/bin/protoc-gen-go
# is the old APIv1 generator and is not used.
set -eu
if [ $# -lt 3 ]; then
  echo "usage: protogen.sh OUTDIR IMPORTPATH PROTO..." >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
module=$(cd "$here/../.." && pwd)
root=$(cd "$module/../.." && pwd)
out=$1
pkg=$2
shift 2
# The M options put every proto into the package, whatever its go_package.
opts=paths=source_relative
for p in "$@"; do
  opts="$opts,M$p=$pkg;$(basename "$pkg")"
  set -- "$@" "$root/proto/$p"
  shift
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$module" && go build -o "$tmp/bin/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go)
mkdir -p "$tmp/out"
protoc -I "$root/proto" -I /usr/include \
  --plugin=protoc-gen-go="$tmp/bin/protoc-gen-go" \
  --go_out="$opts:$tmp/out" \
  --go-grpc_out="$opts:$tmp/out" \
  "$@"
mkdir -p "$out"
find "$tmp/out" -name '*.go' -exec cp {} "$out/" \;
