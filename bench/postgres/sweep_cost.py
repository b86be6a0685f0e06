#!/usr/bin/python3
"""sweep_cost.py — what idemkeyd's expiry sweeper costs on a big table.

    sweep_cost.py [--rows 10000000] [--writers 16] [--sweep as-built|unordered]

One table as schema.cc makes it, --rows records over 4 tenants, 10% of them
expired, spread at random through the table in two halves: A expired 2-3 h
ago, B within the last hour. Then:
  1. writers alone (the baseline), and 10k lookups;
  2. sweep A alone: the exact DELETE of DeleteExpired, prepared, in batches
     of 5000 until a batch deletes fewer, each batch its own transaction;
  3. sweep B while the writers run;
  4. one more sweep with nothing left to delete (what every sweep_interval
     costs when idle);
  5. sizes after, after a plain VACUUM, and after as many new rows as were
     swept (is the space reused?).
--sweep unordered runs the DELETE idemkeyd had before 2026-12-02, without
ORDER BY expires_ms in its subquery: its prepared statement's generic plan
turns into a sequential scan (see README.md); the ORDER BY keeps it on the
expiry index.
Starts and removes its own PostgreSQL server.
"""

import argparse
import time

import pglab
from pglab import q, q1


SWEEPS = {
    "as-built": pglab.SWEEP_SQL,
    "unordered": pglab.variant(pglab.SWEEP_SQL, "ORDER BY expires_ms LIMIT",
                               "LIMIT"),
}


def sweep(conn, cutoff, sql):
    """DeleteExpired's loop; returns (rows, seconds, batch seconds)."""
    q(conn, "DEALLOCATE ALL")
    q(conn, "PREPARE sweep(bigint) AS " + sql)
    rows, batches = 0, []
    start = time.monotonic()
    with conn.cursor() as cur:
        while True:
            t = time.monotonic()
            cur.execute("EXECUTE sweep(%s)", (cutoff,))
            batches.append(time.monotonic() - t)
            rows += cur.rowcount
            if cur.rowcount < pglab.SWEEP_BATCH:
                return rows, time.monotonic() - start, batches


def plan_now(conn, cutoff):
    """The plan the session's prepared sweep uses now (run, then rolled back)."""
    q(conn, "BEGIN")
    plan = q(conn, "EXPLAIN (ANALYZE, BUFFERS) EXECUTE sweep(%s)", (cutoff,))
    q(conn, "ROLLBACK")
    return "\n".join("    | " + r[0] for r in plan)


def report_sweep(what, rows, seconds, batches, wal):
    b = sorted(batches)
    print("  {}: {:,} rows in {:.1f} s = {:,.0f} rows/s; {} batches, each p50 {:.0f} ms, "
          "max {:.0f} ms (first {:.0f} ms, last {:.0f} ms); {}, {:,.0f} bytes per row".format(
              what, rows, seconds, rows / seconds, len(b), pglab.percentile(b, 50) * 1e3,
              b[-1] * 1e3, batches[0] * 1e3, batches[-1] * 1e3, wal, wal.bytes / max(rows, 1)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10000000)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20, help="baseline length")
    parser.add_argument("--sweep", choices=SWEEPS, default="as-built")
    args = parser.parse_args()
    with pglab.server() as dsn:
        c = pglab.connect(dsn)
        print("sweep_cost.py: {:,} rows, sweep {}; {}".format(args.rows, args.sweep,
                                                             pglab.machine()))
        print("  " + SWEEPS[args.sweep])
        print("server: " + pglab.describe(c))
        pglab.create_schema(c)
        tenants = pglab.add_tenants(c, ["tenant-{}".format(i) for i in range(1, 5)])
        now = pglab.now_ms()
        cutoff_a, cutoff_b = now - 2 * pglab.HOUR_MS, now
        expires = ("CASE WHEN u < 0.05 THEN {n} - 3 * {h} + (u / 0.05 * {h})::bigint "
                   "WHEN u < 0.1 THEN {n} - {h} + ((u - 0.05) / 0.05 * {h})::bigint "
                   "ELSE {n} + ((u - 0.1) / 0.9 * {d})::bigint END").format(
                       n=now, h=pglab.HOUR_MS, d=pglab.DAY_MS)
        print("filling:")
        filled, built = pglab.bulk_fill(c, args.rows, "{} + i % 4".format(min(tenants.values())),
                                        expires)
        t = time.monotonic()
        q(c, "VACUUM (ANALYZE) idemkey_records")
        print("  VACUUM (ANALYZE) after the fill: {:.0f} s".format(time.monotonic() - t))
        expired_a = q1(c, "SELECT count(*) FROM idemkey_records WHERE expires_ms <= %s",
                       (cutoff_a,))
        expired_b = q1(c, "SELECT count(*) FROM idemkey_records WHERE expires_ms <= %s",
                       (cutoff_b,)) - expired_a
        print("  {:,} rows in {:.0f} s + {:.0f} s of index builds; expired: A {:,}, B {:,}".format(
            args.rows, filled, built, expired_a, expired_b))
        print("  " + pglab.show_sizes(c, "before"))
        for name, size in pglab.index_sizes(c):
            print("    index {}: {}".format(name, pglab.mb(size)))

        print("1. baseline:")
        keys = pglab.sample_keys(c, 10000)
        pglab.show_lookups("{:,} lookups by (tenant, key), one table".format(len(keys)),
                           pglab.time_lookups(c, keys))
        writers = pglab.Writers(dsn, args.writers, tenants)
        q(c, "CHECKPOINT")
        with writers:
            time.sleep(2)
            wal = pglab.Wal(c)
            t0 = time.monotonic()
            time.sleep(args.seconds)
            t1 = time.monotonic()
            wal.done()
        base = writers.stats(t0, t1)
        wal_per_op = wal.bytes / max(base["ops"], 1)
        print("  " + pglab.show_stats("{} writers, no sweep".format(args.writers), base))
        print("  their {}: {:,.0f} bytes per op".format(wal, wal_per_op))

        print("2. sweep A alone (cutoff 2 h ago):")
        q(c, "CHECKPOINT")
        wal = pglab.Wal(c)
        rows, seconds, batches = sweep(c, cutoff_a, SWEEPS[args.sweep])
        report_sweep("swept", rows, seconds, batches, wal.done())
        print("  the prepared sweep's plan at the end:\n" + plan_now(c, cutoff_a))

        print("3. sweep B (cutoff now) with {} writers:".format(args.writers))
        q(c, "CHECKPOINT")
        with writers:
            time.sleep(2)
            wal = pglab.Wal(c)
            t0 = time.monotonic()
            rows, seconds, batches = sweep(c, cutoff_b, SWEEPS[args.sweep])
            t1 = time.monotonic()
            wal.done()
        during = writers.stats(t0, t1)
        report_sweep("swept", rows, seconds, batches, wal)
        print("  of that WAL, the sweep's own (less the writers' {:,.0f} bytes per op): "
              "about {}".format(wal_per_op, pglab.mb(wal.bytes - during["ops"] * wal_per_op)))
        print("  " + pglab.show_stats("writers during the sweep", during))
        print("  " + pglab.show_stats("writers without it (1.)", base))

        print("4. a sweep with nothing to delete:")
        rows, seconds, batches = sweep(c, pglab.now_ms(), SWEEPS[args.sweep])
        print("  {} rows in {:.3f} s".format(rows, seconds))
        print("  its plan:\n" + plan_now(c, pglab.now_ms()))

        print("5. space:")
        print("  " + pglab.show_sizes(c, "after the sweeps"))
        wal = pglab.Wal(c)
        t = time.monotonic()
        q(c, "VACUUM idemkey_records")
        print("  plain VACUUM: {:.0f} s, {}".format(time.monotonic() - t, wal.done()))
        print("  " + pglab.show_sizes(c, "after VACUUM"))
        swept = expired_a + expired_b
        t = time.monotonic()
        pglab.fill(c, args.rows + 1, swept, "{} + i % 4".format(min(tenants.values())),
                   "{} + (u * {})::bigint".format(now, pglab.DAY_MS), say=lambda _: None)
        print("  {:,} new rows (indexes in place): {:.0f} s".format(swept, time.monotonic() - t))
        print("  " + pglab.show_sizes(c, "after them"))
        print("  autovacuum meanwhile: " + str(q(
            c, "SELECT autovacuum_count, autoanalyze_count FROM pg_stat_user_tables "
               "WHERE relname = 'idemkey_records'")[0]))
        c.close()


if __name__ == "__main__":
    main()
