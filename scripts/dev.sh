#!/usr/bin/env bash
# The two set-up commands of the README, for a Debian 12 machine:
#   bash scripts/dev.sh run   install packages, build, run idemkeyd
#                             (127.0.0.1:50051, data in ./data; extra args go
#                             to idemkeyd)
#   bash scripts/dev.sh test  install packages, build, run every test: the
#                             optimized build and the middleware
#                             conformance suite, then a clang Debug build
#                             with ASan+UBSan that checks lock annotations
#                             (-Wthread-safety as errors) and runs the
#                             fuzzers too, then the unit tests under
#                             ThreadSanitizer
# Both are safe to run again: packages already there are not reinstalled and
# builds are incremental.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  cmake ninja-build g++ pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  librocksdb-dev libssl-dev libgtest-dev libgmock-dev libbenchmark-dev
  # the PostgreSQL backend (libpq), and the servers its tests run: one
  # PostgreSQL 15, and three under Patroni with etcd for the failover suite
  libpq-dev postgresql patroni etcd-server python3-psycopg2
  # `ip netns`: a database machine that vanishes (tests/support/test_postgres.h)
  iproute2
  libcpp-httplib-dev openssl
  systemd python3-yaml
  clang libclang-rt-14-dev
  # Reruns compile only what changed, also in a fresh clone of the same
  # sources (the cache lives in ~/.cache/ccache, outside the tree; see
  # build()).
  ccache
  # bench/: idemkey-bench's Redis target, compare.sh's Redis, growth.sh's plot
  libhiredis-dev redis-server gnuplot-nox
  # client/go, built offline from Debian's Go sources (client/go/README.md)
  golang-go golang-google-grpc-dev golang-google-protobuf-dev
  golang-github-golang-protobuf-1-5-dev protoc-gen-go-grpc
  # client/python, run by Debian's /usr/bin/python3 (client/python/README.md)
  python3-grpcio python3-protobuf python3-pytest python3-starlette
  python3-fastapi python3-httpx python3-flask python3-django
)

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$p")
  done
  # client/node: Debian's Node.js and npm, unless a Node.js is there already
  # (npm comes with it from other sources, and Debian's npm would conflict).
  command -v npm >/dev/null || missing+=(nodejs npm)
  [ ${#missing[@]} -eq 0 ] && return
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
    --no-install-recommends "${missing[@]}"
}

# build DIR [cmake args...]
build() {
  local dir=$1
  shift
  # Paths under the clone are hashed relative to it, and the working
  # directory not at all, so a clone elsewhere (CI's, a second checkout)
  # hits the cache entries of this one. The price: debug info of a hit names
  # the directory that first compiled it.
  export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=true
  cmake -S . -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER_LAUNCHER=ccache "$@" \
    >/dev/null
  ninja -C "$dir" -j"$(nproc)"
}

# timed LABEL COMMAND...: runs COMMAND, then says how long it took.
timed() {
  local label=$1 start=$SECONDS
  shift
  "$@"
  echo "dev.sh: $label took $((SECONDS - start)) s"
}

case "${1:-}" in
  run)
    shift
    install_packages
    build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIDEMKEY_BUILD_TESTS=OFF \
      -DIDEMKEY_BUILD_BENCH=OFF
    exec build/server/daemon/idemkeyd --listen=127.0.0.1:50051 --data_dir=./data "$@"
    ;;
  test)
    timed "package install" install_packages
    timed "C++ build" build build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DIDEMKEY_BUILD_TESTS=ON -DIDEMKEY_BUILD_BENCH=ON
    (cd build && timed "C++ tests" ctest -j"$(nproc)" --output-on-failure)
    # The other languages' packages (their integration tests use the
    # idemkeyd just built), then the middleware conformance suite, from
    # outside, against every language's example app
    # (tests/conformance/README.md).
    timed "Go package" bash client/go/test.sh
    timed "Node package" bash client/node/test.sh
    timed "Python package" bash client/python/test.sh
    timed "conformance suite" /usr/bin/python3 tests/conformance/conformance.py \
      --idemkeyd build/server/daemon/idemkeyd \
      --app cpp=build/client/cpp/examples/payments-http \
      --app go=client/go/bin/payments-http \
      --app node='node client/node/examples/payments-http.js' \
      --app python='/usr/bin/python3 client/python/examples/payments_http.py' \
      --grpc-app cpp=build/client/cpp/examples/payments-grpc \
      --grpc-app go=client/go/bin/payments-grpc \
      --grpc-app node='node client/node/examples/payments-grpc.js' \
      --grpc-app python='/usr/bin/python3 client/python/examples/payments_grpc.py'
    # clang, so that the one sanitized build of everything also checks the
    # lock annotations and builds the libFuzzer targets, which its ctest
    # runs beside the rest (a separate clang build took another 130 s
    # to compile on a new machine).
    timed "ASan+UBSan build" build build-asan -DCMAKE_CXX_COMPILER=clang++ \
      -DCMAKE_BUILD_TYPE=Debug -DIDEMKEY_SANITIZE=ON -DIDEMKEY_THREAD_SAFETY=ON \
      -DIDEMKEY_FUZZ=ON -DIDEMKEY_BUILD_TESTS=ON -DIDEMKEY_BUILD_BENCH=OFF
    (cd build-asan && timed "ASan+UBSan tests" ctest -j"$(nproc)" --output-on-failure)
    # Unit tests only (see IDEMKEY_TSAN); optimized, as ThreadSanitizer slows
    # the many-thread races down several times over.
    timed "TSan build" build build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIDEMKEY_TSAN=ON \
      -DIDEMKEY_BUILD_TESTS=ON -DIDEMKEY_BUILD_BENCH=OFF
    (cd build-tsan && timed "TSan tests" ctest -j"$(nproc)" --output-on-failure)
    ;;
  *)
    echo "usage: bash scripts/dev.sh run [idemkeyd flags...] | test" >&2
    exit 2
    ;;
esac
