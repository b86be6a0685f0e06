#!/usr/bin/python3
"""time_partitions.py — expiry by time partitions instead of the sweeper.

    time_partitions.py [--rows 10000000] [--writers 16] [--scale-rows 1000000]

The records table of schema.cc range-partitioned by expires_ms, one
partition an hour over 30 hours, --rows records with expiry uniform over
them: the 3 oldest partitions (10%) hold only expired records. PostgreSQL
wants the partition key in every unique constraint, so the primary key
becomes (tenant_id, key, expires_ms), and the upsert's ON CONFLICT with it;
the expiry index goes (nothing scans for expired rows). Then:
  1. dropping each expired partition while writers run, three ways (DROP
     TABLE; DETACH then DROP; DETACH CONCURRENTLY then DROP);
  2. what the primary key now allows: a second row for one key;
  3. 10k lookups by (tenant, key) on the big table, and on --scale-rows
     records in 1 (unpartitioned), 30, 168 and 720 partitions, each with
     10 s of the writers too.
Starts and removes its own PostgreSQL server.
"""

import argparse
import time

import pglab
from pglab import q, q1

PK = "PRIMARY KEY (tenant_id, key))"
PARTITIONED_PK = "PRIMARY KEY (tenant_id, key, expires_ms)) PARTITION BY RANGE (expires_ms)"
UPSERT = pglab.variant(pglab.UPSERT_SQL, "ON CONFLICT (tenant_id, key)",
                       "ON CONFLICT (tenant_id, key, expires_ms)")


def partitioned(sql):
    if sql.startswith("CREATE INDEX idemkey_records_expiry"):
        return None
    if sql.startswith("CREATE TABLE idemkey_records"):
        return pglab.variant(sql, PK, PARTITIONED_PK)
    return sql


def make_table(dsn, db, partitions, first_ms, rows):
    """A database with the records table in `partitions` hourly partitions
    from first_ms (0: unpartitioned), filled with rows whose expiry is
    uniform over them. Returns its conninfo, a connection and {tenant: id}."""
    db_dsn = pglab.create_database(dsn, db)
    c = pglab.connect(db_dsn)
    pglab.create_schema(c, partitioned if partitions else lambda sql: sql)
    t = time.monotonic()
    for p in range(partitions):
        lo = first_ms + p * pglab.HOUR_MS
        q(c, "CREATE TABLE idemkey_records_p{:03d} PARTITION OF idemkey_records "
             "FOR VALUES FROM ({}) TO ({})".format(p, lo, lo + pglab.HOUR_MS))
    made = time.monotonic() - t
    tenants = pglab.add_tenants(c, ["tenant-{}".format(i) for i in range(1, 5)])
    span = max(partitions, 30) * pglab.HOUR_MS
    filled, built = pglab.bulk_fill(c, rows, "{} + i % 4".format(min(tenants.values())),
                                    "{} + (u * {})::bigint".format(first_ms, span - 1),
                                    say=lambda _: None)
    q(c, "VACUUM (ANALYZE) idemkey_records")
    print("  {}: {} partitions made in {:.2f} s; {:,} rows in {:.0f} s + {:.0f} s of "
          "index builds; {}".format(db, partitions, made, rows, filled, built,
                                    pglab.show_sizes(c, "size")))
    return db_dsn, c, tenants


def drop_partitions(c, dsn, tenants, writers_n):
    """1: the three expired partitions, dropped three ways under writers."""
    ways = [
        ("DROP TABLE", ["DROP TABLE idemkey_records_p000"]),
        ("DETACH, DROP", ["ALTER TABLE idemkey_records DETACH PARTITION idemkey_records_p001",
                          "DROP TABLE idemkey_records_p001"]),
        ("DETACH CONCURRENTLY, DROP",
         ["ALTER TABLE idemkey_records DETACH PARTITION idemkey_records_p002 CONCURRENTLY",
          "DROP TABLE idemkey_records_p002"]),
    ]
    writers = pglab.Writers(dsn, writers_n, tenants, upsert_sql=UPSERT)
    with writers:
        time.sleep(2)
        t0 = time.monotonic()
        time.sleep(10)
        print("  " + pglab.show_stats("{} writers, nothing dropped".format(writers_n),
                                      writers.stats(t0, time.monotonic())))
        for way, statements in ways:
            rows = q1(c, "SELECT count(*) FROM " + statements[-1].split()[-1])
            wal = pglab.Wal(c)
            pglab.timed_under(writers, "{} of {:,} rows".format(way, rows),
                              lambda: [q(c, s) for s in statements])
            print("    " + str(wal.done()))
    print("  " + pglab.show_sizes(c, "after the drops (space back to the file system)"))


def second_row(c, tenants, first_ms):
    """2: the upsert that Complete makes, with its new expiry, beside the
    reserved row instead of over it."""
    q(c, "PREPARE up({}) AS {}".format(pglab.UPSERT_TYPES, UPSERT))
    tid = min(tenants.values())
    for expires in (first_ms + 5 * pglab.HOUR_MS - 10, first_ms + 5 * pglab.HOUR_MS + 10):
        q(c, "EXECUTE up(%s, 'dup-key', 2, 'fp', 1, 'a', 0, 0, %s, 0, 0, NULL)",
          (tid, expires))
    rows = q(c, "SELECT tableoid::regclass, expires_ms FROM idemkey_records "
                "WHERE tenant_id = %s AND key = 'dup-key'", (tid,))
    print("  one key upserted twice, expiry moved by 20 ms across an hour: {} rows: {}".format(
        len(rows), rows))
    q(c, "DELETE FROM idemkey_records WHERE tenant_id = %s AND key = 'dup-key'", (tid,))
    q(c, "EXECUTE up(%s, 'dup-key', 2, 'fp', 1, 'a', 0, 0, %s, 0, 0, NULL)",
      (tid, first_ms + 5 * pglab.HOUR_MS - 10))
    q(c, "UPDATE idemkey_records SET expires_ms = expires_ms + 20 "
         "WHERE tenant_id = %s AND key = 'dup-key'", (tid,))
    rows = q(c, "SELECT tableoid::regclass, expires_ms FROM idemkey_records "
                "WHERE tenant_id = %s AND key = 'dup-key'", (tid,))
    print("  an UPDATE instead moves it (a DELETE and an INSERT): {}".format(rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10000000)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--scale-rows", type=int, default=1000000)
    args = parser.parse_args()
    with pglab.server() as dsn:
        c = pglab.connect(dsn)
        print("time_partitions.py: {:,} rows; {}".format(args.rows, pglab.machine()))
        print("server: " + pglab.describe(c))
        c.close()
        hour = pglab.now_ms() // pglab.HOUR_MS * pglab.HOUR_MS
        first = hour - 3 * pglab.HOUR_MS  # partitions 0-2 are past
        print("the big table:")
        big, c, tenants = make_table(dsn, "big", 30, first, args.rows)
        print("1. dropping the expired partitions:")
        drop_partitions(c, big, tenants, args.writers)
        print("2. the primary key (tenant_id, key, expires_ms):")
        second_row(c, tenants, first)
        print("3. lookups by (tenant, key):")
        keys = pglab.sample_keys(c, 10000)
        pglab.show_lookups("{:,} lookups, {:,} rows in 27 partitions".format(len(keys), args.rows),
                           pglab.time_lookups(c, keys), plan_lines=16)
        print("  relation locks the read takes (fast-path, in the shared table): {}, {}".format(
            *pglab.read_locks(c, keys[0])))
        c.close()
        for n in (0, 30, 168, 720):
            db, c, tenants = make_table(dsn, "p{}".format(n), n, first, args.scale_rows)
            pglab.show_lookups("10k lookups, {:,} rows, {} partitions".format(args.scale_rows, n),
                               pglab.time_lookups(c, pglab.sample_keys(c, 10000),
                                                  explain=n in (0, 720)),
                               plan_lines=12)
            c.close()
            with pglab.Writers(db, args.writers, tenants,
                               upsert_sql=UPSERT if n else pglab.UPSERT_SQL) as writers:
                time.sleep(2)
                t0 = time.monotonic()
                time.sleep(10)
                print("  " + pglab.show_stats("{} writers".format(args.writers),
                                              writers.stats(t0, time.monotonic())))


if __name__ == "__main__":
    main()
