#!/usr/bin/env bash
# systemd_verify.sh UNIT IDEMKEYD — `systemd-analyze verify` accepts
# deploy/systemd/idemkeyd.service, and its offline security review stays at
# an exposure level of 2.0 or better.
#
# verify checks that ExecStart's program exists and is executable; the unit
# names /usr/local/bin/idemkeyd (where the install steps put it), so the test
# verifies a copy whose ExecStart names the freshly built binary instead:
# everything else is the unit byte for byte. verify exits 0 on warnings such
# as an unknown or misspelled setting, so any output at all fails the test.
# Exit 77 (ctest: skipped) only when systemd-analyze is not installed
# (Debian package systemd; `bash scripts/dev.sh test` installs it).
set -euo pipefail
unit=$1
idemkeyd=$2

if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "SKIP: systemd-analyze is not installed (Debian package systemd;" \
    "bash scripts/dev.sh test installs it)"
  exit 77
fi
systemd-analyze --version | head -1

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
name=$(basename "$unit")

grep -q '^ExecStart=/usr/local/bin/idemkeyd ' "$unit" || {
  echo "FAIL: $unit: ExecStart must run /usr/local/bin/idemkeyd"
  exit 1
}
sed "s#^ExecStart=/usr/local/bin/idemkeyd #ExecStart=$idemkeyd #" "$unit" \
  >"$tmp/$name"

status=0
out=$(systemd-analyze verify "$tmp/$name" 2>&1) || status=$?
if [ "$status" -ne 0 ] || [ -n "$out" ]; then
  echo "FAIL: systemd-analyze verify $name (exit $status):"
  echo "$out"
  exit 1
fi
echo "systemd-analyze verify $name: no findings"

out=$(systemd-analyze security --offline=true "$tmp/$name" 2>&1) || true
level=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$out")
if [ -z "$level" ]; then
  echo "FAIL: systemd-analyze security --offline printed no exposure level:"
  echo "$out"
  exit 1
fi
echo "systemd-analyze security --offline: exposure level $level"
if ! awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }'; then
  echo "FAIL: exposure level $level is above 2.0; findings:"
  grep '✗' <<<"$out" || true
  exit 1
fi

# Settings the deployment relies on (deploy/README.md).
for want in '^Type=exec$' '^Restart=on-failure$' '^KillSignal=SIGTERM$' \
  '^StateDirectory=idemkey( |$)' '^ExecReload=/bin/kill -HUP \$MAINPID$' \
  '^EnvironmentFile=/etc/idemkey/idemkeyd.env$' '^ExecStartPost=' \
  '^NoNewPrivileges=yes$' '^ProtectSystem=strict$' '^CapabilityBoundingSet=$'; do
  grep -Eq "$want" "$unit" || { echo "FAIL: $unit lacks $want"; exit 1; }
done
# The stop timeout must leave room for the default --drain_timeout (10s)
# plus the flush at exit.
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$unit")
if [ -z "$stop" ] || [ "$stop" -le 10 ]; then
  echo "FAIL: TimeoutStopSec ($stop) must be plain seconds above --drain_timeout (10)"
  exit 1
fi
echo "PASS"
