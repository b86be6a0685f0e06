#!/usr/bin/python3
"""tenant_partitions.py — a partition per tenant, or (tenant_id, key) keys?

    tenant_partitions.py [--tenants 200] [--writers 16] [--victim-rows 50000]

Two databases with --tenants tenants each:
  key        schema.cc as it is: one records table keyed (tenant_id, key);
             DropTenant deletes the tenant row, its records go through the
             foreign key's ON DELETE CASCADE, in one transaction;
  partition  the records table LIST-partitioned by tenant_id, each tenant's
             partition made in CreateTenant's transaction; DropTenant drops
             it (three ways: DROP TABLE; DETACH, DROP; DETACH CONCURRENTLY,
             DROP), then deletes the tenant row.
Three victim tenants hold --victim-rows records each, the others 5000 each.
While --writers writers run idemkeyd's Update on the other tenants, it
creates three tenants and drops the three victims, timing each and the
writers' longest op overlapping it (the blocking it caused).
Starts and removes its own PostgreSQL server.
"""

import argparse
import time

import pglab
from pglab import q

OTHER_ROWS = 5000
VICTIMS = 3


def by_tenant(sql):
    if sql.startswith("CREATE TABLE idemkey_records"):
        return sql + " PARTITION BY LIST (tenant_id)"
    return sql


CREATE_PARTITION = ("CREATE TABLE idemkey_records_t{id} PARTITION OF idemkey_records "
                    "FOR VALUES IN ({id})")
BEGIN_CREATE = pglab.CREATE_TENANT_SQL.split("; SELECT 1 FROM")[0] + " RETURNING id"
DROP_WAYS = {
    "DROP TABLE": ["BEGIN; DROP TABLE idemkey_records_t{id}; "
                   "DELETE FROM idemkey_tenants WHERE id = {id}; COMMIT"],
    "DETACH, DROP": ["BEGIN; ALTER TABLE idemkey_records DETACH PARTITION idemkey_records_t{id}; "
                     "DROP TABLE idemkey_records_t{id}; "
                     "DELETE FROM idemkey_tenants WHERE id = {id}; COMMIT"],
    "DETACH CONCURRENTLY, DROP": [
        "ALTER TABLE idemkey_records DETACH PARTITION idemkey_records_t{id} CONCURRENTLY",
        "BEGIN; DROP TABLE idemkey_records_t{id}; "
        "DELETE FROM idemkey_tenants WHERE id = {id}; COMMIT"],
}


def create_tenant(c, design, name):
    args = {"name": name, "now": pglab.now_ms()}
    if design == "key":
        q(c, pglab.CREATE_TENANT_SQL, args)
        return
    tid = q(c, BEGIN_CREATE, args)[0][0]
    q(c, CREATE_PARTITION.format(id=tid) + "; COMMIT")


def drop_tenant(c, design, name, tid, way):
    if design == "key":
        q(c, pglab.DROP_TENANT_SQL, {"name": name})
        return
    for sql in DROP_WAYS[way]:
        q(c, sql.format(id=tid))


def run(dsn, design, args):
    print("{}:".format(design))
    db = pglab.create_database(dsn, design)
    c = pglab.connect(db)
    pglab.create_schema(c, by_tenant if design == "partition" else lambda sql: sql)
    names = ["tenant-{:04d}".format(i) for i in range(args.tenants)]
    lat = []
    for name in names:
        t = time.monotonic()
        create_tenant(c, design, name)
        lat.append(time.monotonic() - t)
    lat.sort()
    print("  {} CreateTenant, no load: p50 {:.1f} ms, max {:.1f} ms".format(
        len(lat), pglab.percentile(lat, 50) * 1e3, lat[-1] * 1e3))
    ids = dict(q(c, "SELECT name, id FROM idemkey_tenants"))
    victims = names[:VICTIMS]
    others = {n: ids[n] for n in names[VICTIMS:]}
    v0, o0 = ids[victims[0]], min(others.values())
    vrows = VICTIMS * args.victim_rows
    tenant = ("CASE WHEN i <= {vr} THEN {v0} + (i - 1) / {each} "
              "ELSE {o0} + (i - {vr} - 1) % {n} END").format(
                  vr=vrows, v0=v0, each=args.victim_rows, o0=o0, n=len(others))
    rows = vrows + OTHER_ROWS * len(others)
    filled, built = pglab.bulk_fill(c, rows, tenant, "{} + (u * {})::bigint".format(
        pglab.now_ms(), pglab.DAY_MS), say=lambda _: None)
    q(c, "VACUUM (ANALYZE) idemkey_records")
    print("  {:,} rows in {:.0f} s + {:.0f} s of index builds; {}".format(
        rows, filled, built, pglab.show_sizes(c, "size")))
    keys = pglab.sample_keys(c, 2000)
    pglab.show_lookups("{:,} lookups by (tenant, key)".format(len(keys)),
                       pglab.time_lookups(c, keys), plan_lines=14)
    print("  relation locks the read takes (fast-path, in the shared table): {}, {}".format(
        *pglab.read_locks(c, keys[0])))
    writers = pglab.Writers(db, args.writers, others)
    with writers:
        time.sleep(2)
        t0 = time.monotonic()
        time.sleep(args.seconds)
        print("  " + pglab.show_stats("{} writers on the other tenants, baseline".format(
            args.writers), writers.stats(t0, time.monotonic())))
        for i in range(3):
            name = "new-{}".format(i)
            pglab.timed_under(writers, "CreateTenant " + name,
                              lambda: create_tenant(c, design, name))
        for victim, way in zip(victims, DROP_WAYS):
            what = "DropTenant {} ({:,} rows){}".format(
                victim, args.victim_rows, "" if design == "key" else ", " + way)
            pglab.timed_under(writers, what,
                              lambda: drop_tenant(c, design, victim, ids[victim], way))
    c.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--victim-rows", type=int, default=50000)
    parser.add_argument("--seconds", type=float, default=10, help="baseline length")
    args = parser.parse_args()
    with pglab.server() as dsn:
        c = pglab.connect(dsn)
        print("tenant_partitions.py: {} tenants; {}".format(args.tenants, pglab.machine()))
        print("server: " + pglab.describe(c))
        c.close()
        for design in ("key", "partition"):
            run(dsn, design, args)


if __name__ == "__main__":
    main()
