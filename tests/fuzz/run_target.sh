#!/usr/bin/env bash
# run_target.sh FUZZER SEED_DIR WORK_DIR SECONDS — runs one libFuzzer target
# for SECONDS over a scratch copy of its seed corpus (libFuzzer adds what it
# finds to the first corpus directory, so the committed seeds stay as they
# are). Fails on a crash, leak, sanitizer report or failed check, leaving the
# input in WORK_DIR/artifacts/; prints the executions done.
set -euo pipefail
fuzzer=$1 seeds=$2 work=$3 secs=$4
rm -rf "$work/corpus"
mkdir -p "$work/corpus" "$work/artifacts"
cp "$seeds"/* "$work/corpus/"
name=$(basename "$fuzzer")
if ! UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     "$fuzzer" -max_total_time="$secs" -print_final_stats=1 -timeout=25 \
     -rss_limit_mb=2048 -artifact_prefix="$work/artifacts/$name-" \
     "$work/corpus" > "$work/$name.log" 2>&1; then
  tail -n 60 "$work/$name.log"
  echo "=== $name: FAILED (log $work/$name.log, artifacts in $work/artifacts)"
  exit 1
fi
execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$name.log" |
        grep -o '[0-9]*$' || echo "?")
cov=$(grep -o 'cov: [0-9]*' "$work/$name.log" | tail -n 1 || true)
echo "=== $name: OK, $execs executions in $secs s ($cov)"
