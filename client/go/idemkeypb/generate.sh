#!/bin/sh
# generate.sh — regenerates the Go code of proto/idemkey/v1/*.proto into this
# directory (package idemkeypb).
#
#   idemkeypb/generate.sh            write the generated files here
#   idemkeypb/generate.sh OUTDIR     write them into OUTDIR instead (the
#                                    regeneration test compares the bytes)
#
# What it needs: ../internal/protogen/protogen.sh.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/../internal/protogen/protogen.sh" "${1:-$here}" \
  github.com/idemkey/idemkey/client/go/idemkeypb \
  idemkey/v1/idemkey.proto idemkey/v1/admin.proto
