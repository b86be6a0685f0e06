# shellcheck shell=bash disable=SC2034  # sourced; sets variables for its callers
# lib.sh — what bench/compare.sh and bench/growth.sh share: building the
# binaries, starting and stopping servers on fresh data directories, and the
# description of the machine that goes above every result.
#
#   source "$(dirname "$0")/lib.sh"
#   bench_init compare                    # $REPO, $BUILD_DIR, $WORK, cleanup trap
#   ensure_built idemkeyd idemkey-bench
#   start_idemkeyd sync --sync=true       # sets $IDEMKEYD_PID, $IDEMKEYD_ADDR
#   "$BUILD_DIR/bench/idemkey-bench" --address="$IDEMKEYD_ADDR" ...
#   stop_server "$IDEMKEYD_PID"
#   machine_header "$WORK"
#
# Environment: BUILD_DIR (default <repo>/build), NO_BUILD=1 (use the binaries
# as they are), DATA_ROOT (where the temporary data directories go; default
# $TMPDIR or /tmp: put it on the disk you want to measure), KEEP_WORK=1 (keep
# the data directories and server logs).

# The binaries, relative to $BUILD_DIR.
IDEMKEYD_BIN=server/daemon/idemkeyd
BENCH_BIN=bench/idemkey-bench
IDEMCTL_BIN=client/cpp/idemctl/idemctl

SERVER_PIDS=()

# bench_init NAME: sets REPO, BUILD_DIR and WORK (a new directory under
# DATA_ROOT), and stops every server started here when the script exits.
bench_init() {
  REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  BUILD_DIR=${BUILD_DIR:-$REPO/build}
  WORK=$(mktemp -d "${DATA_ROOT:-${TMPDIR:-/tmp}}/idemkey-$1.XXXXXX")
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

bench_cleanup() {
  local pid
  for pid in "${SERVER_PIDS[@]}"; do stop_server "$pid"; done
  if [ "${KEEP_WORK:-0}" = 1 ]; then
    echo "kept $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}

# ensure_built TARGET...: builds the targets with ninja in $BUILD_DIR
# (configuring it first if needed), unless NO_BUILD=1; then checks that the
# build is optimized and that the binaries exist.
ensure_built() {
  if [ "${NO_BUILD:-0}" != 1 ]; then
    if [ ! -f "$BUILD_DIR/build.ninja" ]; then
      cmake -S "$REPO" -B "$BUILD_DIR" -G Ninja \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIDEMKEY_BUILD_TESTS=OFF >/dev/null
    fi
    ninja -C "$BUILD_DIR" -j"$(nproc)" "$@" >&2
  fi
  local cache=$BUILD_DIR/CMakeCache.txt
  if [ -f "$cache" ]; then
    # An empty type is the project's default, RelWithDebInfo.
    if ! grep -Eq '^CMAKE_BUILD_TYPE:[A-Z]+=(Release|RelWithDebInfo|)$' "$cache" ||
      grep -q '^IDEMKEY_SANITIZE:BOOL=ON$' "$cache"; then
      echo "warning: $BUILD_DIR is not an optimized build without sanitizers;" \
        "the numbers will be too low" >&2
    fi
  fi
  local bin
  for bin in "$IDEMKEYD_BIN" "$BENCH_BIN"; do
    [ -x "$BUILD_DIR/$bin" ] || {
      echo "missing $BUILD_DIR/$bin: build it (bench/README.md)" >&2
      exit 1
    }
  done
}

# free_port: a TCP port of 127.0.0.1 nobody listens on right now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# server_pin, load_pin: the command prefix that keeps a server (idemkeyd,
# Redis) or a load generator on the CPUs listed in SERVER_CPUS or LOAD_CPUS
# (taskset lists, e.g. 0 or 1-3); nothing while the variable is empty. taskset
# execs the command, so $! is still the server's PID.
server_pin() { [ -z "${SERVER_CPUS:-}" ] || echo "taskset -c $SERVER_CPUS"; }
load_pin() { [ -z "${LOAD_CPUS:-}" ] || echo "taskset -c $LOAD_CPUS"; }

# start_idemkeyd NAME [FLAG...]: idemkeyd on a fresh data directory
# $WORK/NAME, on a free port of 127.0.0.1; sets IDEMKEYD_PID, IDEMKEYD_ADDR
# and IDEMKEYD_DATA. Its log is $WORK/NAME.log.
start_idemkeyd() {
  local name=$1
  shift
  IDEMKEYD_DATA=$WORK/$name
  local port_file=$WORK/$name.port
  $(server_pin) "$BUILD_DIR/$IDEMKEYD_BIN" --listen=127.0.0.1:0 \
    --port_file="$port_file" --data_dir="$IDEMKEYD_DATA" "$@" \
    >"$WORK/$name.log" 2>&1 &
  IDEMKEYD_PID=$!
  SERVER_PIDS+=("$IDEMKEYD_PID")
  local i
  for i in $(seq 600); do
    [ -s "$port_file" ] && break
    kill -0 "$IDEMKEYD_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [ ! -s "$port_file" ]; then
    echo "idemkeyd ($name) did not start; its log:" >&2
    cat "$WORK/$name.log" >&2
    exit 1
  fi
  IDEMKEYD_ADDR=127.0.0.1:$(cat "$port_file")
}

# start_redis NAME [FLAG...]: redis-server on a free port of 127.0.0.1, with
# its files in $WORK/NAME; sets REDIS_PID and REDIS_ADDR.
start_redis() {
  local name=$1
  shift
  local port
  port=$(free_port)
  mkdir -p "$WORK/$name"
  $(server_pin) redis-server --bind 127.0.0.1 --port "$port" \
    --dir "$WORK/$name" --daemonize no "$@" >"$WORK/$name.log" 2>&1 &
  REDIS_PID=$!
  SERVER_PIDS+=("$REDIS_PID")
  local i
  for i in $(seq 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    kill -0 "$REDIS_PID" 2>/dev/null || break
    sleep 0.1
  done
  if ! redis-cli -p "$port" ping >/dev/null 2>&1; then
    echo "redis-server ($name) did not start; its log:" >&2
    cat "$WORK/$name.log" >&2
    exit 1
  fi
  REDIS_ADDR=127.0.0.1:$port
}

# stop_server PID: SIGTERM, then SIGKILL if it is still there after 60 s
# (idemkeyd drains calls and flushes its memtables first).
stop_server() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 600); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local kept=()
  for i in "${SERVER_PIDS[@]}"; do [ "$i" = "$pid" ] || kept+=("$i"); done
  SERVER_PIDS=("${kept[@]}")
}

# fsync_ms DIR: mean time of a 4 KiB write with O_DSYNC appended to a new
# file in DIR (the pattern of a write-ahead log), over 500 writes, in ms.
fsync_ms() {
  local probe=$1/fsync-probe
  LC_ALL=C dd if=/dev/zero of="$probe" bs=4k count=500 oflag=dsync 2>&1 |
    awk -F', ' '/copied/ { split($(NF - 1), t, " "); printf "%.3f", t[1] * 1000 / 500 }'
  rm -f "$probe"
}

# machine_header DIR: date, commit, CPU, memory, and the disk under DIR with
# its fsync latency.
machine_header() {
  local dir=$1 commit cpu dirty=""
  commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
  [ -z "$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null)" ] ||
    dirty=" + uncommitted changes"
  cpu=$(sed -n '/^model name/{s/^[^:]*: *//;p;q}' /proc/cpuinfo)
  [ -n "$cpu" ] || cpu=$(lscpu | sed -n '/^Model name/{s/^[^:]*: *//;p;q}')
  echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit$dirty"
  echo "machine: $(nproc) cores ($cpu), $(awk '/^MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo) GiB memory, kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "disk:    $(df -P -T "$dir" | awk 'NR == 2 { print $1 " " $2 }') under $dir; fsync $(fsync_ms "$dir") ms (4 KiB O_DSYNC appends)"
}
