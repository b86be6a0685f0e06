#!/usr/bin/env bash
# compare.sh — idemkeyd against Redis and against its own transport, in one
# run, in one table.
#
#   bash bench/compare.sh                        # after bash scripts/dev.sh test
#   CELL_SECONDS=1 LEVELS="1 64" bash bench/compare.sh /tmp/compare-smoke.txt
#
# Starts, one after the other and each alone on the machine: idemkeyd with
# --sync=true (Ping, Reserve, Lookup, pairs over raw gRPC stubs; then pairs,
# Reserve and Lookup through the client library with batch_calls), idemkeyd
# with --sync=false
# (Ping, pairs), and Redis 7 with --appendonly yes --appendfsync always
# (PING, pairs); the same again pinned (server on CPU 0, load on CPU 1;
# PINNED=0 leaves it out); then the PostgreSQL backend: idemkeyd --backend=postgres
# alone and as 2 replicas, and the direct-SQL peer doing the same pairs from
# libpq (PG=0 leaves these out); each on a fresh temporary data directory
# and a free port of 127.0.0.1, and drives each with idemkey-bench at every
# in-flight level.
# Then prints the machine, the rates and the ratios the issue set as targets
# (bench/README.md explains every row), and writes the same to the output
# file: the argument, else $OUT, else bench/results/compare-<date>.txt. The
# raw results of every cell go next to it, in the same name with .csv.
#
# Environment: LEVELS (in-flight levels, default "1 8 64 256"), CELL_SECONDS
# (measured seconds per scenario and level, default 5; the default run takes
# about 11 minutes), PG (1, the default: the PostgreSQL rows), PINNED (1, the
# default: the pinned rows), CHANNELS (gRPC channels, default 4), RESPONSE_BYTES
# (default 256), and those of lib.sh: BUILD_DIR, NO_BUILD, DATA_ROOT,
# KEEP_WORK.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init compare

LEVELS=${LEVELS:-1 8 64 256}
CELL_SECONDS=${CELL_SECONDS:-5}
CHANNELS=${CHANNELS:-4}
RESPONSE_BYTES=${RESPONSE_BYTES:-256}
OUT=${1:-${OUT:-$REPO/bench/results/compare-$(date +%F).txt}}
CSV=${OUT%.txt}.csv

command -v redis-server >/dev/null || {
  echo "redis-server is missing: bash scripts/dev.sh installs it" >&2
  exit 1
}
ensure_built idemkeyd idemkey-bench
mkdir -p "$(dirname "$OUT")"
rm -f "$CSV"

# bench LABEL ARGS...: one idemkey-bench run at every level, into $CSV; its
# own table goes to stderr, as progress.
bench() {
  local label=$1
  shift
  echo "== $label: $*" >&2
  $(load_pin) "$BUILD_DIR/$BENCH_BIN" --label="$label" --csv="$CSV" \
    --in_flight="${LEVELS// /,}" --seconds="$CELL_SECONDS" \
    --channels="$CHANNELS" --response_bytes="$RESPONSE_BYTES" "$@" >&2 ||
    echo "(idemkey-bench exited with $?: some calls failed, see the table)" >&2
}

header=$(machine_header "$WORK")

start_idemkeyd sync --sync=true
bench sync --server_pid="$IDEMKEYD_PID" --address="$IDEMKEYD_ADDR" --scenarios=ping,reserve,lookup,pairs
# The same server through the client library with batch_calls: one thread
# per operation in flight, concurrent calls coalesced into Batch RPCs.
bench batched --server_pid="$IDEMKEYD_PID" --target=library --batch --address="$IDEMKEYD_ADDR" \
  --scenarios=pairs,reserve,lookup
# And with stream_calls: every call an op of one KeyService/Stream.
bench streamed --server_pid="$IDEMKEYD_PID" --target=library --stream --address="$IDEMKEYD_ADDR" \
  --scenarios=pairs,reserve,lookup
stop_server "$IDEMKEYD_PID"

start_idemkeyd nosync --sync=false
bench nosync --server_pid="$IDEMKEYD_PID" --address="$IDEMKEYD_ADDR" --scenarios=ping,pairs
stop_server "$IDEMKEYD_PID"

start_redis redis --appendonly yes --appendfsync always --save ''
redis_version=$(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')
bench redis --server_pid="$REDIS_PID" --target=redis --redis="$REDIS_ADDR" --scenarios=ping,pairs
stop_server "$REDIS_PID"

# The pinned layout (PINNED=0 leaves it out): the server alone on CPU 0, the
# load generator alone on CPU 1, so that neither takes the other's core and
# each side's cost shows by itself. The same cells as above for idemkeyd
# (raw stubs and the batched library) and Redis.
pinned=""
if [ "${PINNED:-1}" = 1 ] && [ "$(nproc)" -ge 2 ]; then
  pinned=1
  SERVER_CPUS=0 LOAD_CPUS=1
  start_idemkeyd sync_pinned --sync=true
  bench sync_pinned --server_pid="$IDEMKEYD_PID" --address="$IDEMKEYD_ADDR" --scenarios=ping,reserve,pairs
  bench batched_pinned --server_pid="$IDEMKEYD_PID" \
    --target=library --batch --address="$IDEMKEYD_ADDR" \
    --scenarios=pairs,reserve
  stop_server "$IDEMKEYD_PID"
  start_redis redis_pinned --appendonly yes --appendfsync always --save ''
  bench redis_pinned --server_pid="$REDIS_PID" \
    --target=redis --redis="$REDIS_ADDR" --scenarios=ping,pairs
  stop_server "$REDIS_PID"
  SERVER_CPUS="" LOAD_CPUS=""
fi

# The PostgreSQL backend (PG=0 leaves it out): one PostgreSQL 15 of
# tests/support/postgres_server.py (fsync and synchronous_commit on), run as
# the postgres user; idemkeyd --backend=postgres, alone and then as 2
# replicas over it (the raw stubs balance over both), and the direct-SQL
# peer (bench/sql_target.cc) in a database of its own.
pg_version=""
if [ "${PG:-1}" = 1 ]; then
  chmod 755 "$WORK"  # the postgres user reaches its data directory
  pg_server() { /usr/bin/python3 "$REPO/tests/support/postgres_server.py" "$@"; }
  pg_server start --dir "$WORK/pg" --dsn_file "$WORK/pg.dsn" >&2
  trap 'pg_server stop --dir "$WORK/pg" >&2; bench_cleanup' EXIT
  pg_dsn=$(cat "$WORK/pg.dsn")
  psql "$pg_dsn" -q -c 'CREATE DATABASE idemkeyd' -c 'CREATE DATABASE direct'
  pg_version=$(psql "$pg_dsn" -Atc 'SHOW server_version' | cut -d' ' -f1)
  keys_dsn=${pg_dsn/dbname=postgres/dbname=idemkeyd}
  start_idemkeyd pg1 --backend=postgres --postgres_dsn="$keys_dsn"
  first=$IDEMKEYD_PID first_addr=$IDEMKEYD_ADDR
  bench pg1 --server_pid="$first" --address="$first_addr" --scenarios=ping,reserve,pairs
  bench pg1batched --server_pid="$first" \
    --target=library --batch --address="$first_addr" \
    --scenarios=pairs
  start_idemkeyd pg2 --backend=postgres --postgres_dsn="$keys_dsn"
  bench pg2 --address="ipv4:$first_addr,$IDEMKEYD_ADDR" --scenarios=pairs
  stop_server "$IDEMKEYD_PID"
  stop_server "$first"
  bench sql --target=sql --postgres="${pg_dsn/dbname=postgres/dbname=direct}" \
    --scenarios=ping,pairs
fi

{
  echo "idemkey compared with Redis and with an empty RPC (bench/compare.sh)"
  echo "$header"
  echo "run:     $CELL_SECONDS s per cell, $CHANNELS gRPC channels," \
    "$RESPONSE_BYTES-byte responses, 1 tenant; Redis $redis_version" \
    "(appendonly, appendfsync always), one connection per operation in flight"
  [ -z "$pinned" ] || echo "layout:  server and load share the CPUs, except" \
    "the rows marked pinned: server on CPU 0, load generator on CPU 1 (taskset)"
  [ -z "$pg_version" ] || echo "         PostgreSQL $pg_version (fsync," \
    "synchronous_commit on, no standby), idemkeyd --postgres_pool_size=16;" \
    "direct SQL: one connection per operation in flight"
  echo
  awk -F, -v levels="$LEVELS" '
    NR > 1 {
      k = $1 SUBSEP $3 SUBSEP $4  # label, scenario, in flight
      rate[k] = $10; p50[k] = $11; p99[k] = $13; errors += $15
      ccpu[k] = $18; csw[k] = $19; scpu[k] = $20; ssw[k] = $21
    }
    function head(title, target) { printf "%-36s %7s", title, target }
    function row(title, target, cells,   i) {
      head(title, target)
      for (i = 1; i <= n; ++i) printf " %11s", cells[i]
      printf "\n"
    }
    function rates(title, label, scenario,   i, k, c) {
      for (i = 1; i <= n; ++i) {
        k = label SUBSEP scenario SUBSEP L[i]
        c[i] = k in rate ? sprintf("%.0f", rate[k]) : "-"
      }
      row(title, "", c)
    }
    function latency(title, label,   i, k, c) {
      for (i = 1; i <= n; ++i) {
        k = label SUBSEP "pairs" SUBSEP L[i]
        c[i] = k in rate ? sprintf("%.2f/%.1f", p50[k] / 1000, p99[k] / 1000) : "-"
      }
      row(title, "", c)
    }
    # CPU per op: "client+server=total" microseconds, or context switches.
    function cpu(title, label, scenario, switches,   i, k, c) {
      for (i = 1; i <= n; ++i) {
        k = label SUBSEP scenario SUBSEP L[i]
        if (!(k in rate) || scpu[k] == "") { c[i] = "-"; continue }
        c[i] = switches ? sprintf("%.1f+%.1f", csw[k], ssw[k]) \
                        : sprintf("%.0f+%.0f=%.0f", ccpu[k], scpu[k], ccpu[k] + scpu[k])
      }
      row(title, "", c)
    }
    # rate(a) / rate(b) at each level; with a target, marked ok or MISS.
    function ratio(title, target, la, sa, lb, sb,   i, ka, kb, r, c) {
      for (i = 1; i <= n; ++i) {
        ka = la SUBSEP sa SUBSEP L[i]; kb = lb SUBSEP sb SUBSEP L[i]
        if (!(ka in rate) || !(kb in rate) || rate[kb] == 0) { c[i] = "-"; continue }
        r = rate[ka] / rate[kb]
        c[i] = sprintf("%.3f", r)
        if (target != "") c[i] = c[i] (r >= target + 0 ? " ok" : " MISS")
      }
      row(title, target == "" ? "" : ">= " target, c)
    }
    END {
      n = split(levels, L, " ")
      for (i = 1; i <= n; ++i) c[i] = L[i]
      row("operations in flight:", "target", c)
      print "rates (per second)"
      rates("  Ping calls (idemkeyd, sync)", "sync", "ping")
      rates("  Reserve calls (sync)", "sync", "reserve")
      rates("  Lookup calls (sync)", "sync", "lookup")
      rates("  pairs, idemkeyd --sync=true", "sync", "pairs")
      rates("  pairs, idemkeyd --sync=false", "nosync", "pairs")
      rates("  pairs, client library, batched (sync)", "batched", "pairs")
      rates("  Reserve calls, batched (sync)", "batched", "reserve")
      rates("  Lookup calls, batched (sync)", "batched", "lookup")
      rates("  pairs, client library, streamed (sync)", "streamed", "pairs")
      rates("  Reserve calls, streamed (sync)", "streamed", "reserve")
      rates("  Lookup calls, streamed (sync)", "streamed", "lookup")
      rates("  pairs, Redis appendfsync always", "redis", "pairs")
      rates("  Redis PING calls", "redis", "ping")
      rates("  pinned: Ping calls (sync)", "sync_pinned", "ping")
      rates("  pinned: Reserve calls (sync)", "sync_pinned", "reserve")
      rates("  pinned: pairs, idemkeyd --sync=true", "sync_pinned", "pairs")
      rates("  pinned: pairs, library, batched", "batched_pinned", "pairs")
      rates("  pinned: Reserve calls, batched", "batched_pinned", "reserve")
      rates("  pinned: pairs, Redis", "redis_pinned", "pairs")
      rates("  pinned: Redis PING calls", "redis_pinned", "ping")
      rates("  Ping calls (idemkeyd, PostgreSQL)", "pg1", "ping")
      rates("  Reserve calls (PostgreSQL)", "pg1", "reserve")
      rates("  pairs, idemkeyd over PostgreSQL", "pg1", "pairs")
      rates("  pairs, 2 idemkeyd over PostgreSQL", "pg2", "pairs")
      rates("  pairs, library, batched (PostgreSQL)", "pg1batched", "pairs")
      rates("  pairs, direct SQL", "sql", "pairs")
      rates("  SELECT 1 calls (direct SQL)", "sql", "ping")
      print "pair latency p50/p99 (ms)"
      latency("  idemkeyd --sync=true", "sync")
      latency("  idemkeyd --sync=false", "nosync")
      latency("  client library, batched (sync)", "batched")
      latency("  client library, streamed (sync)", "streamed")
      latency("  Redis appendfsync always", "redis")
      latency("  idemkeyd over PostgreSQL", "pg1")
      latency("  direct SQL", "sql")
      # The same rows twice: CPU time, then context switches.
      for (sw = 0; sw <= 1; ++sw) {
        print sw ? "context switches per pair, load generator + server" \
                 : "CPU us per pair, load generator + server (/proc; PostgreSQL: idemkeyd only)"
        cpu("  idemkeyd --sync=true", "sync", "pairs", sw)
        cpu("  client library, batched", "batched", "pairs", sw)
        cpu("  client library, streamed", "streamed", "pairs", sw)
        cpu("  Redis appendfsync always", "redis", "pairs", sw)
        cpu("  pinned: idemkeyd --sync=true", "sync_pinned", "pairs", sw)
        cpu("  pinned: library, batched", "batched_pinned", "pairs", sw)
        cpu("  pinned: Redis", "redis_pinned", "pairs", sw)
        cpu("  idemkeyd over PostgreSQL", "pg1", "pairs", sw)
      }
      print "ratios (ok: meets the target of issues #6, #11, #12; MISS: does not)"
      ratio("  sync pairs / Redis pairs", "1.00", "sync", "pairs", "redis", "pairs")
      ratio("  Reserve / Ping", "0.80", "sync", "reserve", "sync", "ping")
      ratio("  Lookup / Ping", "0.90", "sync", "lookup", "sync", "ping")
      ratio("  batched sync pairs / Redis pairs", "1.00", "batched", "pairs", "redis", "pairs")
      ratio("  batched Reserve / Ping", "0.80", "batched", "reserve", "sync", "ping")
      ratio("  batched Lookup / Ping", "0.90", "batched", "lookup", "sync", "ping")
      ratio("  streamed sync pairs / Redis pairs", "1.00", "streamed", "pairs", "redis", "pairs")
      ratio("  streamed Reserve / Ping", "1.00", "streamed", "reserve", "sync", "ping")
      ratio("  streamed Lookup / Ping", "1.00", "streamed", "lookup", "sync", "ping")
      ratio("  pinned sync pairs / Redis pairs", "1.00", "sync_pinned", "pairs", "redis_pinned", "pairs")
      ratio("  pinned batched pairs / Redis", "1.00", "batched_pinned", "pairs", "redis_pinned", "pairs")
      ratio("  pinned Reserve / Ping", "0.80", "sync_pinned", "reserve", "sync_pinned", "ping")
      ratio("  pinned batched Reserve / Ping", "1.00", "batched_pinned", "reserve", "sync_pinned", "ping")
      ratio("  sync pairs / Ping", "", "sync", "pairs", "sync", "ping")
      ratio("  no-sync pairs / Redis pairs", "", "nosync", "pairs", "redis", "pairs")
      ratio("  no-sync pairs / Ping (no-sync)", "", "nosync", "pairs", "nosync", "ping")
      ratio("  PostgreSQL pairs / direct SQL pairs", "0.80", "pg1", "pairs", "sql", "pairs")
      ratio("  2 replicas: pairs / direct SQL pairs", "0.80", "pg2", "pairs", "sql", "pairs")
      ratio("  batched PostgreSQL pairs / direct SQL", "", "pg1batched", "pairs", "sql", "pairs")
      ratio("  PostgreSQL pairs / Redis pairs", "", "pg1", "pairs", "redis", "pairs")
      if (errors > 0) {
        printf "\nWARNING: %d operations failed; the CSV has them per cell\n", errors
      }
    }' "$CSV"
} | tee "$OUT"
echo "(written to $OUT and $CSV)" >&2
