#!/bin/sh
# generate.sh — regenerates the Go code of
# proto/idemkey/examples/payments.proto into this directory (package
# paymentspb).
#
#   cmd/payments-grpc/paymentspb/generate.sh          write the files here
#   cmd/payments-grpc/paymentspb/generate.sh OUTDIR   write them into OUTDIR
#                                    instead (the regeneration test compares)
#
# What it needs: ../../../internal/protogen/protogen.sh.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/../../../internal/protogen/protogen.sh" "${1:-$here}" \
  github.com/idemkey/idemkey/client/go/cmd/payments-grpc/paymentspb \
  idemkey/examples/payments.proto
