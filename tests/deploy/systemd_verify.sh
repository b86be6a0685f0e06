#!/usr/bin/env bash
# systemd_verify.sh UNIT IDEMKEYD — `systemd-analyze verify` accepts
# deploy/systemd/idemkeyd.service (or the template idemkeyd-postgres@.service,
# which systemd-analyze checks as an instance of itself), and its offline
# security review stays at an exposure level of 2.0 or better.
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
wants=('^Type=exec$' '^Restart=on-failure$' '^KillSignal=SIGTERM$'
  '^ExecReload=/bin/kill -HUP \$MAINPID$' '^ExecStartPost=' '^User=idemkey$'
  '^NoNewPrivileges=yes$' '^ProtectSystem=strict$' '^CapabilityBoundingSet=$')
unwanted=()
case "$name" in
  *@.service)
    # One stateless replica per instance, the instance name its port: its
    # own port file and runtime directory, no data directory at all.
    wants+=('^EnvironmentFile=/etc/idemkey/idemkeyd-postgres.env$'
      '^ExecStart=[^ ]+ --backend=postgres '
      '^ExecStart=.* --postgres_dsn=\$\{IDEMKEYD_POSTGRES_DSN\} '
      '^ExecStart=.* --listen=[^ ]*:%i '
      '^ExecStart=.* --port_file=/run/idemkey-postgres-%i/port '
      '^RuntimeDirectory=idemkey-postgres-%i$')
    unwanted+=('^StateDirectory=' '^ExecStart=.*--data_dir' '^ExecStart=.*--postgres_dsn=\$[A-Z]') ;;
  *)
    wants+=('^StateDirectory=idemkey( |$)'
      '^EnvironmentFile=/etc/idemkey/idemkeyd.env$') ;;
esac
for want in "${wants[@]}"; do
  grep -Eq -- "$want" "$unit" || { echo "FAIL: $unit lacks $want"; exit 1; }
done
for unwant in "${unwanted[@]}"; do
  if grep -Eq -- "$unwant" "$unit"; then
    echo "FAIL: $unit has $unwant"
    exit 1
  fi
done
# The stop timeout must leave room for the default --drain_timeout (10s)
# plus the flush at exit.
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$unit")
if [ -z "$stop" ] || [ "$stop" -le 10 ]; then
  echo "FAIL: TimeoutStopSec ($stop) must be plain seconds above --drain_timeout (10)"
  exit 1
fi
echo "PASS"
