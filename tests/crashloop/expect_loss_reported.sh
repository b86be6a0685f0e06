#!/usr/bin/env bash
# CrashLoop.ReportsInjectedLoss: the crash loop's verifier reports a lost
# write. Runs idemkey-crash-loop with --inject_loss (one acknowledged record is
# deleted after the first restart) and passes only if the run fails with exit
# status 1 and exactly one violation, naming that record.
#
#   expect_loss_reported.sh path/to/idemkey-crash-loop --cycles=1
set -uo pipefail
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
out=$("$@" --inject_loss --data_dir="$dir/data" 2>&1)
rc=$?
printf '%s\n' "$out"

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
lost=$(sed -n 's/^injected loss: deleted \([^ ]*\) .*/\1/p' <<<"$out")
[ -n "$lost" ] || fail "no acknowledged record was deleted (exit status $rc)"
[ "$rc" -eq 1 ] || fail "exit status $rc; a reported violation is status 1"
grep -qF "VIOLATION: $lost: acknowledged" <<<"$out" ||
  fail "no violation names the deleted record $lost"
grep -q " 1 violations: FAIL$" <<<"$out" ||
  fail "the deleted record should be the one and only violation"
echo "PASS: the verifier reported the deleted record $lost"
