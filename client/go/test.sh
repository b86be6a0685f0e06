#!/bin/bash
# test.sh — vets, tests and builds the Go package of idemkey, offline.
#
#   client/go/test.sh            (from any directory)
#   IDEMKEYD=path/to/idemkeyd client/go/test.sh
#
# Dependencies come from Debian's Go source packages (/usr/share/gocode/src,
# see go.mod); no module proxy is used. Integration tests start the real
# idemkeyd ($IDEMKEYD, default build/server/daemon/idemkeyd under the
# repository root) and skip, saying so, when it is absent. Builds
# bin/payments-http and bin/payments-grpc. Exits non-zero when anything fails.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here" || exit 1

export GOPROXY=off GOSUMDB=off GOFLAGS=-mod=mod GO111MODULE=on
unset GOTOOLCHAIN GOPATH
export GOCACHE=${GOCACHE:-$HOME/.cache/go-build}

fail=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "go: $(go version)"
if ! unformatted=$(gofmt -l . | grep -v '^third_party/'); then :; fi
if [ -n "$unformatted" ]; then
  echo "go: not gofmt-formatted:"; echo "$unformatted"; fail=1
fi
if ! go vet ./...; then
  echo "go: go vet failed"; fail=1
fi

# -p 2: the machine is shared with C++ builds.
go test -p 2 -count=1 -v ./... >"$log" 2>&1
test_rc=$?
grep -E '^(ok|FAIL|---|panic:)|^\?|\[no test files\]' "$log" | grep -vE '^--- PASS' | grep -vE '^--- SKIP' || true
# Each skip's reason (t.Skip prints it just before the --- SKIP line).
grep -E -B1 '^\s*--- SKIP' "$log" | grep -vE -- '--- SKIP|^--$|^=== ' | sed 's/^ */go: skipped: /' | sort -u || true
if [ "$test_rc" -ne 0 ]; then
  echo "go: go test failed; its failing output:"
  grep -E -B2 -A20 '^\s*--- FAIL|^panic:|build failed|cannot find|\[setup failed\]' "$log" | head -200
  fail=1
fi
packages=$(grep -cE '^ok\s' "$log")
failed_packages=$(grep -cE '^FAIL\s' "$log")
tests=$(grep -cE '^\s*--- PASS' "$log")
toplevel=$(grep -cE '^--- PASS' "$log")
skipped=$(grep -cE '^\s*--- SKIP' "$log")
failed=$(grep -cE '^\s*--- FAIL' "$log")

mkdir -p bin
for app in payments-http payments-grpc; do
  if ! go build -o "bin/$app" "./cmd/$app"; then
    echo "go: building bin/$app failed"; fail=1
  else
    echo "go: built $here/bin/$app"
  fi
done

echo "go: $packages packages ok, $tests tests ($toplevel top-level, the rest subtests) passed, $skipped skipped, $failed failed, $failed_packages packages failed"
if [ "$fail" -ne 0 ]; then
  echo "go: FAILED"
  exit 1
fi
echo "go: all ok"
