#!/usr/bin/env bash
# systemd_start_wait.sh UNIT IDEMKEYD — the health-checked start of
# deploy/systemd/idemkeyd.service (or idemkeyd-postgres@.service) works with
# the real idemkeyd, without systemd: the unit's ExecStartPost= script (with
# systemd's "$$" unescaped and the --port_file of its ExecStart=, e.g.
# /run/idemkey/port, moved to a temporary directory) must
#   1. return 0 once idemkeyd serves (it writes --port_file only then),
#   2. return 1 promptly when the main process exits instead (here: a second
#      idemkeyd on the same data directory, which idemkeyd refuses),
# and idemkeyd must stop cleanly on the unit's KillSignal (SIGTERM) well
# within its TimeoutStopSec. The script does not depend on the backend, so
# idemkeyd runs over RocksDB here whatever the unit's --backend.
set -euo pipefail
unit=$1
idemkeyd=$2

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

line=$(sed -n 's/^ExecStartPost=//p' "$unit")
case "$line" in
  "/bin/sh -c '"*"'") ;;
  *) echo "FAIL: expected ExecStartPost=/bin/sh -c '...', got: $line"; exit 1 ;;
esac
script=${line#"/bin/sh -c '"}
script=${script%"'"}
script=${script//'$$'/'$'}
# The file ExecStart= has idemkeyd write; the check must wait for that one.
port_file=$(sed -n 's/^ExecStart=.* --port_file=\([^ ]*\).*/\1/p' "$unit")
if [ -z "$port_file" ] || [[ "$script" != *"$port_file"* ]]; then
  echo "FAIL: ExecStartPost= does not wait for ExecStart='s --port_file ($port_file)"
  exit 1
fi
script=${script//"$port_file"/$tmp\/port}
echo "start check: $script"

# 1. idemkeyd comes up: the check returns 0 and the port file names the port.
"$idemkeyd" --listen=127.0.0.1:0 --data_dir="$tmp/data" \
  --port_file="$tmp/port" 2>"$tmp/first.log" &
first=$!
pids+=("$first")
start=$(date +%s%N)
if ! MAINPID=$first timeout 60 /bin/sh -c "$script"; then
  echo "FAIL: the start check did not succeed for a healthy idemkeyd"
  cat "$tmp/first.log"
  exit 1
fi
echo "start check passed after $(( ($(date +%s%N) - start) / 1000000 )) ms," \
  "port $(cat "$tmp/port")"
kill -0 "$first"

# 2. A main process that exits: the check fails fast instead of waiting.
"$idemkeyd" --listen=127.0.0.1:0 --data_dir="$tmp/data" \
  --port_file="$tmp/port2" 2>"$tmp/second.log" &
second=$!
pids+=("$second")
start=$(date +%s%N)
script2=${script//$tmp\/port/$tmp\/port2}
if MAINPID=$second timeout 60 /bin/sh -c "$script2"; then
  echo "FAIL: the start check succeeded although idemkeyd exited"
  exit 1
fi
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "start check failed after $ms ms for an idemkeyd that exited:" \
  "$(tail -1 "$tmp/second.log")"
if [ "$ms" -gt 20000 ]; then
  echo "FAIL: it took over 20 s to notice"
  exit 1
fi

# 3. SIGTERM: drain, flush, exit 0 within TimeoutStopSec.
stop_limit=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$unit")
start=$(date +%s%N)
kill -TERM "$first"
status=0
wait "$first" || status=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "SIGTERM: exit $status after $ms ms (TimeoutStopSec=${stop_limit}s)"
if [ "$status" -ne 0 ] || ! grep -q "stopped cleanly" "$tmp/first.log"; then
  echo "FAIL: idemkeyd did not stop cleanly on SIGTERM"
  cat "$tmp/first.log"
  exit 1
fi
if [ "$ms" -ge $((stop_limit * 1000)) ]; then
  echo "FAIL: stopping took longer than TimeoutStopSec"
  exit 1
fi
echo "PASS"
