#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS] [WORK_DIR] — build the libFuzzer targets with
# clang++ (-fsanitize=fuzzer,address,undefined) and run each for SECONDS
# (default 60) over its committed seed corpus. Exits non-zero when a target
# does not build or libFuzzer finds a crash, a leak or a failed check.
#
# Self-contained: the main build uses g++, so this compiles the few sources
# each target needs directly, plus protoc's output for the protos, and links
# Debian's (uninstrumented) protobuf, gRPC and Abseil.
#
#   bash tests/fuzz/run.sh 600                 # a long run
#   FUZZ_TARGETS=record_codec_fuzz bash tests/fuzz/run.sh 60
set -euo pipefail

SECS=${1:-60}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${2:-${TMPDIR:-/tmp}/idemkey-fuzz}
CXX=${CLANGXX:-clang++}
TARGETS=${FUZZ_TARGETS:-record_codec_fuzz validation_fuzz middleware_core_fuzz}
JOBS=${FUZZ_BUILD_JOBS:-1}

mkdir -p "$WORK/gen" "$WORK/obj" "$WORK/corpus" "$WORK/artifacts"

# Generated code: messages (and the gRPC stubs the client library needs).
protos=(idemkey/v1/idemkey.proto idemkey/v1/admin.proto
        idemkey/storage/v1/record_body.proto)
protoc --proto_path="$SRC/proto" --cpp_out="$WORK/gen" \
  --grpc_out="$WORK/gen" --plugin=protoc-gen-grpc="$(command -v grpc_cpp_plugin)" \
  "${protos[@]}"

CXXFLAGS=(-std=c++17 -g -O1 -fno-omit-frame-pointer
  -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
  -I"$SRC" -I"$SRC/client/include" -I"$WORK/gen")
read -r -a PKG_CFLAGS <<< "$(pkg-config --cflags protobuf grpc++ absl_status)"
read -r -a LIBS <<< "$(pkg-config --libs grpc++ protobuf absl_statusor \
  absl_status absl_strings absl_str_format absl_time absl_random_random \
  absl_synchronization libcrypto)"

# Every library source a target may need; each target links all of them
# (unused ones cost nothing but link time).
sources=(
  server/store/record_codec.cc server/store/validation.cc
  server/store/backend.cc server/store/key_store.cc
  server/store/memory_backend.cc server/api/convert.cc server/api/key_calls.cc
  client/src/call_batcher.cc client/src/client.cc
  client/src/middleware/core.cc
  client/src/middleware/in_process_key_service.cc
)
objs=()
compile() {  # compile SRC OBJ [extra flags]
  local src=$1 obj=$2; shift 2
  "$CXX" "${CXXFLAGS[@]}" "${PKG_CFLAGS[@]}" "$@" -c "$src" -o "$obj"
}
pids=()
for p in "${protos[@]}"; do
  base=${p%.proto}
  for suffix in pb grpc.pb; do
    obj="$WORK/obj/$(echo "$base.$suffix" | tr / _).o"
    objs+=("$obj")
    compile "$WORK/gen/$base.$suffix.cc" "$obj" -w &
    pids+=($!)
    if [ ${#pids[@]} -ge "$JOBS" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
  done
done
for s in "${sources[@]}"; do
  obj="$WORK/obj/$(echo "$s" | tr / _).o"
  objs+=("$obj")
  compile "$SRC/$s" "$obj" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$JOBS" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for pid in "${pids[@]}"; do wait "$pid"; done

status=0
for t in $TARGETS; do
  echo "=== $t: building"
  "$CXX" "${CXXFLAGS[@]}" "${PKG_CFLAGS[@]}" -fsanitize=fuzzer \
    "$SRC/tests/fuzz/$t.cc" "${objs[@]}" "${LIBS[@]}" -lpthread \
    -o "$WORK/$t"
  name=${t%_fuzz}
  # libFuzzer adds what it finds to the first corpus directory: a scratch
  # copy, so the committed seeds stay as they are.
  rm -rf "$WORK/corpus/$name"
  mkdir -p "$WORK/corpus/$name"
  cp "$SRC/tests/fuzz/corpus/$name/"* "$WORK/corpus/$name/"
  echo "=== $t: fuzzing for $SECS s"
  if ! UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
       "$WORK/$t" -max_total_time="$SECS" -print_final_stats=1 \
       -timeout=25 -rss_limit_mb=2048 \
       -artifact_prefix="$WORK/artifacts/$t-" "$WORK/corpus/$name" \
       > "$WORK/$t.log" 2>&1; then
    tail -n 60 "$WORK/$t.log"
    echo "=== $t: FAILED (log $WORK/$t.log, artifacts in $WORK/artifacts)"
    status=1
    continue
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$WORK/$t.log" |
          grep -o '[0-9]*$' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$WORK/$t.log" | tail -n 1 || true)
  echo "=== $t: OK, $execs executions in $SECS s ($cov)"
done
exit $status
