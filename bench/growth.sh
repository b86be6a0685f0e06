#!/usr/bin/env bash
# growth.sh — how idemkeyd's rate, latency, memory and disk change as it
# fills up, and whether compaction gives back the space of expired records.
#
#   bash bench/growth.sh                          # 10 M records, ~1 hour
#   bash bench/growth.sh --records=200000 --step=50000 --out_dir=/tmp/growth
#
# On a fresh idemkeyd (temporary data directory, free port of 127.0.0.1):
#  1. measures Reserve + Complete pairs for --seconds on the empty store,
#     then writes --step records at a time (fill: pairs as fast as they go,
#     --tenants tenants, 256-byte responses) and measures again, until
#     --records. --short_percent of each step's records get a ttl of
#     --short_ttl seconds, the others idemkeyd's default (24 h). After each
#     measurement it notes the server's RSS (VmRSS) and disk use (du of the
#     data directory).
#  2. waits until the short-ttl records have expired, notes the disk use,
#     triggers a compaction (idemctl compact: the one marked command below),
#     and notes it again, with the number of records compaction dropped.
# Writes growth.csv, growth.txt (the machine and the same table) and
# growth.png (gnuplot) into --out_dir (default bench/results).
#
# The records counted are those written (fill and measurements). With the
# default --short_ttl (60 s, idemkeyd's minimum) the short-ttl records of
# early steps expire while later steps run, and background compactions may
# drop some of them already: the disk curve is then that of a store with
# short-lived records. Set --short_ttl above the length of the fill to keep
# them all until the end; below 60 s, idemkeyd is started with a lower
# --min_ttl.
#
# Flags (or the environment variable in capitals): --records (10000000),
# --step (500000), --tenants (200), --seconds per measurement (5),
# --in_flight of fill and measurements (64), --short_ttl (60),
# --short_percent (50), --sync (true), --out_dir; and lib.sh's BUILD_DIR,
# NO_BUILD, DATA_ROOT (put it on the disk to measure: 10 M records take
# several GiB), KEEP_WORK.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init growth

RECORDS=${RECORDS:-10000000}
STEP=${STEP:-500000}
TENANTS=${TENANTS:-200}
SECONDS_PER_STEP=${SECONDS_PER_STEP:-5}
IN_FLIGHT=${IN_FLIGHT:-64}
SHORT_TTL=${SHORT_TTL:-60}
SHORT_PERCENT=${SHORT_PERCENT:-50}
SYNC=${SYNC:-true}
OUT_DIR=${OUT_DIR:-$REPO/bench/results}
for arg in "$@"; do
  case $arg in
    --records=*) RECORDS=${arg#*=} ;;
    --step=*) STEP=${arg#*=} ;;
    --tenants=*) TENANTS=${arg#*=} ;;
    --seconds=*) SECONDS_PER_STEP=${arg#*=} ;;
    --in_flight=*) IN_FLIGHT=${arg#*=} ;;
    --short_ttl=*) SHORT_TTL=${arg#*=} ;;
    --short_percent=*) SHORT_PERCENT=${arg#*=} ;;
    --sync=*) SYNC=${arg#*=} ;;
    --out_dir=*) OUT_DIR=${arg#*=} ;;
    *)
      echo "unknown argument $arg; see the top of $0" >&2
      exit 2
      ;;
  esac
done
CSV=$OUT_DIR/growth.csv
TXT=$OUT_DIR/growth.txt
PNG=$OUT_DIR/growth.png

ensure_built idemkeyd idemkey-bench idemctl
mkdir -p "$OUT_DIR"
server_flags=(--sync="$SYNC")
((SHORT_TTL >= 60)) || server_flags+=(--min_ttl="${SHORT_TTL}s")
start_idemkeyd data "${server_flags[@]}"

# bench ARGS...: one idemkey-bench run; leaves its CSV line in $last. Failed
# operations (exit status 2) are counted in the errors column; any other
# failure stops the script.
bench() {
  local status=0
  "$BUILD_DIR/$BENCH_BIN" --address="$IDEMKEYD_ADDR" --tenants="$TENANTS" \
    --response_bytes=256 --in_flight="$IN_FLIGHT" --warmup_seconds=0 \
    --csv="$WORK/runs.csv" "$@" >"$WORK/bench.out" 2>&1 || status=$?
  if ((status != 0)); then
    cat "$WORK/bench.out" >&2
    ((status == 2)) || exit 1
  fi
  last=$(tail -1 "$WORK/runs.csv")
}
# field N of $last (columns of idemkey-bench's CSV: 9 ops, 10 ops/s,
# 11 p50 us, 13 p99 us, 15 errors)
field() { cut -d, -f"$1" <<<"$last"; }
written() { echo $(($(field 9) - $(field 15))); }

# pretty: CSV lines on stdin as aligned columns, "-" for empty fields.
pretty() {
  awk -F, '{
    for (i = 1; i <= NF; ++i) if ($i == "") $i = "-"
    printf "%9s %-9s %11s %8s %8s %9s %9s %6s %9s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9
  }'
}
rss_mib() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$IDEMKEYD_PID/status"; }
disk_mib() { du -sk "$IDEMKEYD_DATA" | awk '{ printf "%.1f", $1 / 1024 }'; }

start=$(date +%s)
records=0
errors=0
columns="records,phase,pairs_per_s,p50_ms,p99_ms,rss_mib,disk_mib,errors,elapsed_s"
echo "$columns" >"$CSV"
{
  echo "idemkeyd growth (bench/growth.sh): --sync=$SYNC, $TENANTS tenants," \
    "256-byte responses, $IN_FLIGHT in flight, $SHORT_PERCENT% of the" \
    "records with a ${SHORT_TTL}s ttl"
  machine_header "$WORK"
  echo
  echo "$columns" | pretty
} | tee "$TXT"

# row PHASE [PAIRS_PER_S P50_MS P99_MS ERRORS]
row() {
  local line
  line="$records,$1,${2:-},${3:-},${4:-},$(rss_mib),$(disk_mib),${5:-},$(($(date +%s) - start))"
  echo "$line" >>"$CSV"
  pretty <<<"$line" | tee -a "$TXT"
}

# measure: pairs for --seconds, then a row at the records written before it.
measure() {
  bench --scenarios=pairs --seconds="$SECONDS_PER_STEP"
  errors=$((errors + $(field 15)))
  row fill "$(field 10)" "$(awk '{ printf "%.2f", $1 / 1000 }' <<<"$(field 11)")" \
    "$(awk '{ printf "%.2f", $1 / 1000 }' <<<"$(field 13)")" "$(field 15)"
  records=$((records + $(written)))
}

# fill N TTL_FLAG: N pairs, as fast as they go.
fill() {
  [ "$1" -gt 0 ] || return 0
  bench --scenarios=fill --fill_records="$1" "$2"
  errors=$((errors + $(field 15)))
  records=$((records + $(written)))
}

measure
last_short=0
while ((records < RECORDS)); do
  n=$((RECORDS - records < STEP ? RECORDS - records : STEP))
  short=$((n * SHORT_PERCENT / 100))
  fill "$short" --ttl_seconds="$SHORT_TTL"
  ((short == 0)) || last_short=$(date +%s)
  fill $((n - short)) --ttl_seconds=0
  measure
done

compacted=""
if ((last_short > 0)); then
  remaining=$((last_short + SHORT_TTL + 5 - $(date +%s)))
  if ((remaining > 0)); then
    echo "(waiting ${remaining}s for the short-ttl records to expire)" >&2
    sleep "$remaining"
  fi
  row expired

  # ---------------------------------------------------------------------------
  # THE COMPACTION TRIGGER (AdminService.Compact through idemctl). Change this
  # one command if the verb changes.
  if "$BUILD_DIR/$IDEMCTL_BIN" --addr="$IDEMKEYD_ADDR" --timeout=3600s compact |
    tee -a "$TXT"; then
    # ---------------------------------------------------------------------------
    # RocksDB deletes the replaced table files just after the compaction:
    # wait until du stops changing (at most a minute).
    previous=""
    for _ in $(seq 30); do
      current=$(disk_mib)
      [ "$current" = "$previous" ] && break
      previous=$current
      sleep 2
    done
    row compacted
    dropped=$("$BUILD_DIR/$IDEMCTL_BIN" --addr="$IDEMKEYD_ADDR" -o json stats |
      sed -n 's/.*"expired_records_dropped": *"\{0,1\}\([0-9]*\).*/\1/p')
    compacted="expired records dropped by compaction filters since start: ${dropped:-0}"
  else
    compacted="the compaction trigger failed (has idemctl a compact verb yet?): no 'compacted' row"
  fi
  echo "$compacted" | tee -a "$TXT"
fi
((errors == 0)) || echo "WARNING: $errors operations failed" | tee -a "$TXT"

if command -v gnuplot >/dev/null; then
  gnuplot <<EOF
set datafile separator ","
set terminal pngcairo size 1000,1000 font ",10"
set output "$PNG"
set multiplot layout 2,1 title "idemkeyd growth: --sync=$SYNC, $TENANTS tenants, 256-byte responses, $IN_FLIGHT in flight; $(nproc) cores, $(df -P -T "$WORK" | awk 'NR == 2 { print $1 " " $2 }')"
set xlabel "records written (millions)"
set xrange [0:$(awk -v r="$records" 'BEGIN { print r * 1.05 / 1e6 }')]
set grid
set key below
set ylabel "pairs/s"
set y2label "p99 (ms)"
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
plot "$CSV" skip 1 using (\$1/1e6):(strcol(2) eq "fill" ? \$3 : NaN) with linespoints title "pairs/s" axes x1y1, \
     "" skip 1 using (\$1/1e6):(strcol(2) eq "fill" ? \$5 : NaN) with linespoints title "p99 of a pair (ms)" axes x1y2
unset y2label
unset y2tics
set ytics mirror
set ylabel "MiB"
plot "$CSV" skip 1 using (\$1/1e6):(strcol(2) eq "fill" ? \$7 : NaN) with linespoints title "disk (du of the data directory)", \
     "" skip 1 using (\$1/1e6):(strcol(2) eq "fill" ? \$6 : NaN) with linespoints title "RSS of idemkeyd", \
     "" skip 1 using (\$1/1e6):(strcol(2) eq "expired" ? \$7 : NaN) with points pointtype 7 pointsize 2 title "disk, short-ttl records expired", \
     "" skip 1 using (\$1/1e6):(strcol(2) eq "compacted" ? \$7 : NaN) with points pointtype 9 pointsize 2 title "disk after compaction"
unset multiplot
EOF
  echo "(plot: $PNG)" >&2
else
  echo "gnuplot is missing (bash scripts/dev.sh installs it): no plot" >&2
fi
echo "(written to $CSV and $TXT)" >&2
