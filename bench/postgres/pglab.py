"""pglab.py — what the PostgreSQL storage measurements here share.

  server()          a throwaway PostgreSQL 15 (tests/support/postgres_server.py)
                    in a fresh temporary directory, stopped and removed after
  schema_steps()    the DDL of server/store/postgres/schema.cc, read from it
  variant()         one edit of that DDL, checked to apply
  bulk_fill()       rows of realistic size from generate_series, fast: the
                    table's indexes and constraints are dropped during the
                    fill and built again after, with their own definitions
  Writers           N threads doing idemkeyd's Update transaction (advisory
                    lock, read, nextval, upsert, COMMIT) on fresh keys, each
                    op timed, until stopped
  time_lookups()    idemkeyd's read of one record, prepared, timed

Statements marked "as idemkeyd" are copied from postgres_backend.cc; keep
them in step with it.
"""

import contextlib
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import threading
import time

import psycopg2

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
import postgres_server  # noqa: E402

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS
TTL_MS = DAY_MS

RECORD_COLUMNS = ("tenant_id, key, state, fingerprint, fencing_token, attempt_id, "
                  "lease_expires_ms, created_ms, expires_ms, ttl_ms, completed_ms, "
                  "response")

# As idemkeyd: PostgresBackend::Update's read (kRecordColumns) and AddUpsert.
READ_SQL = ("SELECT t.id, r.key, r.state, r.fingerprint, r.fencing_token, "
            "r.attempt_id, r.lease_expires_ms, r.created_ms, r.expires_ms, "
            "r.ttl_ms, r.completed_ms, r.response FROM idemkey_tenants t "
            "LEFT JOIN idemkey_records r ON r.tenant_id = t.id AND r.key = $2 "
            "WHERE t.name = $1")
UPSERT_SQL = (
    "INSERT INTO idemkey_records (tenant_id, key, state, fingerprint, "
    "fencing_token, attempt_id, lease_expires_ms, created_ms, expires_ms, "
    "ttl_ms, completed_ms, response) VALUES ($1, $2, $3::bigint, $4, $5, "
    "$6, $7, $8, $9, $10, $11, $12) "
    "ON CONFLICT (tenant_id, key) DO UPDATE SET state = EXCLUDED.state, "
    "fingerprint = EXCLUDED.fingerprint, "
    "fencing_token = EXCLUDED.fencing_token, "
    "attempt_id = EXCLUDED.attempt_id, "
    "lease_expires_ms = EXCLUDED.lease_expires_ms, "
    "created_ms = EXCLUDED.created_ms, expires_ms = EXCLUDED.expires_ms, "
    "ttl_ms = EXCLUDED.ttl_ms, completed_ms = EXCLUDED.completed_ms, "
    "response = EXCLUDED.response")
UPSERT_TYPES = ("bigint, bytea, bigint, bytea, bigint, bytea, bigint, bigint, "
                "bigint, bigint, bigint, bytea")
# As idemkeyd: PostgresBackend::DeleteExpired, all tenants, kSweepBatch 5000.
SWEEP_BATCH = 5000
SWEEP_SQL = ("DELETE FROM idemkey_records WHERE ctid IN (SELECT ctid FROM "
             "idemkey_records WHERE expires_ms <= $1 "
             "ORDER BY expires_ms LIMIT 5000)")
# As idemkeyd: CreateTenant's and DropTenant's transactions (max_tenants 1000).
CREATE_TENANT_SQL = (
    "BEGIN; LOCK TABLE idemkey_tenants IN SHARE ROW EXCLUSIVE MODE; "
    "INSERT INTO idemkey_tenants (name, created_ms) SELECT %(name)s, %(now)s "
    "WHERE (SELECT count(*) FROM idemkey_tenants) < 1000 "
    "ON CONFLICT (name) DO NOTHING; "
    "SELECT 1 FROM idemkey_tenants WHERE name = %(name)s; COMMIT")
DROP_TENANT_SQL = ("BEGIN; SET LOCAL statement_timeout = 0; "
                   "DELETE FROM idemkey_tenants WHERE name = %(name)s; COMMIT")


def now_ms():
    return int(time.time() * 1000)


# --- the server --------------------------------------------------------------

@contextlib.contextmanager
def server():
    """Yields the conninfo of a fresh server; stops it and removes its files
    however the block ends (SIGTERM and SIGINT included)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    top = tempfile.mkdtemp(prefix="idemkey-pglab.")
    os.chmod(top, 0o755)  # the postgres user must reach DIR when we are root
    data = os.path.join(top, "data")
    try:
        dsn = postgres_server.start(data)
        yield dsn
    finally:
        postgres_server.stop(data)
        shutil.rmtree(top, ignore_errors=True)


def connect(dsn, dbname=None):
    if dbname:
        dsn = re.sub(r"dbname=\S+", "dbname=" + dbname, dsn)
    c = psycopg2.connect(dsn)
    c.autocommit = True
    return c


def create_database(dsn, name):
    """A new database on the server; returns its conninfo."""
    c = connect(dsn)
    q(c, "CREATE DATABASE " + name)
    c.close()
    return re.sub(r"dbname=\S+", "dbname=" + name, dsn)


def q(conn, sql, args=None):
    """Runs sql; returns its rows (or None when it returns none)."""
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else None


def q1(conn, sql, args=None):
    return q(conn, sql, args)[0][0]


def describe(conn):
    """One line: the server's version and the settings that weigh here."""
    names = ["server_version", "shared_buffers", "fsync", "synchronous_commit",
             "full_page_writes", "wal_compression", "max_wal_size",
             "checkpoint_timeout", "autovacuum"]
    values = q(conn, "SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s)",
               (names,))
    shown = {n: s + ("" if u in (None, "") else " " + u) for n, s, u in values}
    return ", ".join("{}={}".format(n, shown[n]) for n in names)


def machine():
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return "{} cores, load average {}".format(os.cpu_count(), load)


# --- the schema -------------------------------------------------------------

def schema_steps():
    """schema.cc's Steps(): a list of steps, each a list of SQL statements,
    read from the C++ source (adjacent string literals concatenated)."""
    with open(os.path.join(REPO, "server/store/postgres/schema.cc")) as f:
        text = f.read()
    body = text[text.index("Steps() {"):text.index("return *steps;")]
    body = re.sub(r"//[^\n]*", "", body)
    steps = []
    for step in re.findall(r"\{([^{}]*)\}", body):
        statements = [""]
        for token in re.findall(r'"(?:[^"\\]|\\.)*"|,', step):
            if token == ",":
                statements.append("")
            else:
                statements[-1] += token[1:-1].replace('\\"', '"')
        steps.append([s for s in statements if s])
    return steps


def schema(edit=lambda sql: sql):
    """Every statement of schema.cc, through edit (None drops one)."""
    out = []
    for step in schema_steps():
        out.extend(s for s in map(edit, step) if s is not None)
    return out


def variant(sql, old, new):
    """sql with old replaced by new; old must be there."""
    if old not in sql:
        raise ValueError("{!r} is not in {!r}".format(old, sql))
    return sql.replace(old, new)


def create_schema(conn, edit=lambda sql: sql):
    """As Migrate: the version table (as MigrateLocked makes it), then every
    step of schema.cc."""
    q(conn, "CREATE TABLE IF NOT EXISTS idemkey_schema ("
            "  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),"
            "  version integer NOT NULL)")
    for sql in schema(edit):
        q(conn, sql)
    q(conn, "INSERT INTO idemkey_schema (version) VALUES (%s)", (len(schema_steps()),))


def add_tenants(conn, names):
    """Tenant rows, as CreateTenant would; returns {name: id}."""
    q(conn, "INSERT INTO idemkey_tenants (name, created_ms) "
            "SELECT unnest(%s::text[]), %s", (names, now_ms()))
    return dict(q(conn, "SELECT name, id FROM idemkey_tenants WHERE name = ANY(%s)",
                  (names,)))


# --- filling ----------------------------------------------------------------

# One row per i: a 40-byte key that sorts randomly (as UUID-like keys do),
# its 32-byte fingerprint, a 16-byte attempt id; 9 in 10 rows completed with
# a 304-byte response, the others in progress (no response). `u` is a
# uniform random number per row, for the expiry expression.
FILL_SQL = """
INSERT INTO {table} ({columns})
SELECT tenant, k, CASE WHEN done THEN 2 ELSE 1 END, sha256(k), i,
       convert_to(left(md5('a' || i), 16), 'UTF8'),
       CASE WHEN done THEN 0 ELSE e - {ttl} + 30000 END, e - {ttl}, e, {ttl},
       CASE WHEN done THEN e - {ttl} + 40 ELSE 0 END,
       CASE WHEN done THEN decode(repeat(md5(i::text), 19), 'hex') END
FROM (SELECT i, ({tenant}) AS tenant, ({expires}) AS e, i %% 10 <> 9 AS done,
             convert_to(left(md5(i::text), 24) || '-' || lpad(i::text, 15, '0'),
                        'UTF8') AS k
      FROM (SELECT i, random() AS u FROM generate_series(%s, %s) i) g) s
"""


def fill(conn, first, count, tenant, expires, table="idemkey_records",
         chunk=1000000, say=print):
    """Inserts rows first .. first+count-1; tenant and expires are SQL
    expressions in i and u. Returns the seconds it took."""
    sql = FILL_SQL.format(table=table, columns=RECORD_COLUMNS, ttl=TTL_MS,
                          tenant=tenant.replace("%", "%%"),
                          expires=expires.replace("%", "%%"))
    start = time.monotonic()
    for lo in range(first, first + count, chunk):
        hi = min(lo + chunk, first + count) - 1
        q(conn, sql, (lo, hi))
        say("  filled {:,} of {:,} rows, {:.0f} s".format(
            hi - first + 1, count, time.monotonic() - start))
    return time.monotonic() - start


def bulk_fill(conn, count, tenant, expires, table="idemkey_records", say=print):
    """fill() with table's primary key, foreign keys and other indexes
    dropped first and made again after from their own definitions (so the
    result has the DDL's indexes, but freshly built, hence denser than
    indexes grown by random inserts). Returns (fill s, index build s)."""
    constraints = q(conn, "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                          "WHERE conrelid = %s::regclass AND contype IN ('p', 'f', 'u') "
                          "ORDER BY contype DESC", (table,))  # p, u before f
    indexes = q(conn, "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) "
                      "FROM pg_index i WHERE indrelid = %s::regclass AND NOT EXISTS "
                      "(SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
                (table,))
    for name, _ in constraints:
        q(conn, "ALTER TABLE {} DROP CONSTRAINT {}".format(table, name))
    for name, _ in indexes:
        q(conn, "DROP INDEX " + name)
    filled = fill(conn, 1, count, tenant, expires, table=table, say=say)
    start = time.monotonic()
    q(conn, "SET maintenance_work_mem = '1GB'")
    for name, definition in constraints:
        q(conn, "ALTER TABLE {} ADD CONSTRAINT {} {}".format(table, name, definition))
    for _, definition in indexes:
        q(conn, definition.replace(" ON ONLY ", " ON "))  # a partitioned index
    q(conn, "RESET maintenance_work_mem")
    built = time.monotonic() - start
    say("  indexes and constraints built again in {:.0f} s".format(built))
    return filled, built


# --- sizes and WAL ------------------------------------------------------------

# The tables holding table's rows: itself, or its partitions (whose
# partition tree does not count a plain table).
LEAVES = ("(SELECT relid FROM pg_partition_tree({0}::regclass) WHERE isleaf "
          "UNION SELECT {0}::regclass WHERE NOT EXISTS "
          "(SELECT FROM pg_partition_tree({0}::regclass)))")


def sizes(conn, table="idemkey_records"):
    """(heap bytes, index bytes) summed over table's partitions, if any.
    Heap counts TOAST, the free space map and the visibility map."""
    return q(conn, "SELECT coalesce(sum(pg_table_size(relid)), 0)::bigint, "
                   "coalesce(sum(pg_indexes_size(relid)), 0)::bigint "
                   "FROM " + LEAVES.format("%(t)s") + " l", {"t": table})[0]


def index_sizes(conn, table="idemkey_records"):
    return q(conn, "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) "
                   "FROM pg_index WHERE indrelid = %s::regclass ORDER BY 1", (table,))


def mb(n):
    return "{:,.0f} MB".format(n / 1e6)


def show_sizes(conn, what, table="idemkey_records"):
    heap, index = sizes(conn, table)
    return "{}: table {}, indexes {}, total {}".format(what, mb(heap), mb(index),
                                                       mb(heap + index))


class Wal:
    """WAL written between construction and done(): bytes by LSN; records
    and full-page images from pg_stat_wal (server-wide, flushed lazily)."""

    def __init__(self, conn):
        self.conn = conn
        self.start = self._now()

    def _now(self):
        return q(self.conn, "SELECT pg_current_wal_lsn(), wal_records, wal_fpi "
                            "FROM pg_stat_wal")[0]

    def done(self):
        # Sessions flush their counters when idle, at most once a second:
        # this one at once; the others (writers) within the second.
        q(self.conn, "SELECT pg_stat_force_next_flush()")
        time.sleep(1.1)
        end = self._now()
        self.bytes = int(q1(self.conn, "SELECT pg_wal_lsn_diff(%s, %s)",
                            (end[0], self.start[0])))
        self.records = end[1] - self.start[1]
        self.fpi = end[2] - self.start[2]
        return self

    def __str__(self):
        return "WAL {} ({:,} records, {:,} full-page images)".format(
            mb(self.bytes), self.records, self.fpi)


# --- load ---------------------------------------------------------------------

def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(p / 100 * len(sorted_values)))]


class Writers:
    """n threads, each on its own connection, each running idemkeyd's Update
    transaction for a Reserve of a fresh key of a random tenant of `tenants`
    ({name: id}), in two round trips as idemkeyd pipelines it:
      BEGIN; pg_advisory_xact_lock; the read; nextval
      the upsert; COMMIT
    Every op's start and end are kept for stats()."""

    def __init__(self, dsn, n, tenants, upsert_sql=UPSERT_SQL):
        self.dsn, self.n, self.upsert_sql = dsn, n, upsert_sql
        self.tenants = list(tenants.items())
        self.ops = []  # (start, end, ok) of each op, from every thread
        self.errors = []
        self._stop = threading.Event()
        self._threads = []
        self._lock = threading.Lock()

    def __enter__(self):
        self._stop.clear()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(self.n)]
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join()
        if self.errors:
            c = connect(self.dsn)
            names = dict(q(c, "SELECT oid::text, relname FROM pg_class"))
            c.close()
            first = re.sub(r"relation (\d+)", lambda m: names.get(m.group(1), m.group(0)),
                           self.errors[0])
            print("  {} writers' ops failed; the first: {}".format(
                len(self.errors), " / ".join(first.splitlines())))

    def _run(self, index):
        c = connect(self.dsn)
        cur = c.cursor()
        cur.execute("PREPARE rd(text, bytea) AS " + READ_SQL)
        cur.execute("PREPARE up({}) AS {}".format(UPSERT_TYPES, self.upsert_sql))
        rng = random.Random(index)
        n = 0
        while not self._stop.is_set():
            name, tid = rng.choice(self.tenants)
            key = "{}-w{:02d}-{:09d}".format(rng.randbytes(12).hex(), index, n).encode()
            n += 1
            t = now_ms()
            start = time.monotonic()
            try:
                cur.execute("BEGIN; SELECT pg_advisory_xact_lock(%s); "
                            "EXECUTE rd(%s, %s); SELECT nextval('idemkey_fencing_tokens')",
                            (rng.getrandbits(63), name, psycopg2.Binary(key)))
                token = cur.fetchone()[0]
                cur.execute("EXECUTE up(%s, %s, 1, %s, %s, %s, %s, %s, %s, %s, 0, NULL); "
                            "SET LOCAL statement_timeout = 0; COMMIT",
                            (tid, psycopg2.Binary(key), psycopg2.Binary(rng.randbytes(32)),
                             token, psycopg2.Binary(rng.randbytes(16)), t + 30000, t,
                             t + TTL_MS, TTL_MS))
            except psycopg2.Error as e:
                with self._lock:
                    self.errors.append(str(e).strip())
                    self.ops.append((start, time.monotonic(), False))
                q(c, "ROLLBACK")
                continue
            with self._lock:
                self.ops.append((start, time.monotonic(), True))
        c.close()

    def stats(self, t0, t1):
        """Over [t0, t1] (time.monotonic()): ops that succeeded and ended in
        it per second, p50/p99 of their latency, the longest op (failed or
        not) that overlapped the window (in ms), ops that failed in it."""
        with self._lock:
            ops = list(self.ops)
        ended = sorted(e - s for s, e, ok in ops if ok and t0 <= e <= t1)
        overlapping = [e - s for s, e, _ in ops if e >= t0 and s <= t1]
        return {"ops": len(ended), "rate": len(ended) / max(t1 - t0, 1e-9),
                "p50": percentile(ended, 50) * 1e3, "p99": percentile(ended, 99) * 1e3,
                "max": max(overlapping, default=float("nan")) * 1e3,
                "failed": sum(1 for s, e, ok in ops if not ok and e >= t0 and s <= t1)}


def show_stats(what, s):
    return ("{}: {:,.0f} ops/s ({:,} ops), p50 {:.1f} ms, p99 {:.1f} ms, "
            "max {:.1f} ms{}".format(what, s["rate"], s["ops"], s["p50"], s["p99"], s["max"],
                                     ", {} failed".format(s["failed"]) if s["failed"] else ""))


def timed_under(writers, what, action, settle=2.0):
    """Runs action() while writers run; prints its time and the writers'
    stats over its duration (their longest op overlapping it is the
    blocking it caused). Returns (seconds, stats)."""
    time.sleep(settle)
    t0 = time.monotonic()
    action()
    t1 = time.monotonic()
    time.sleep(settle)  # ops blocked by it end after it
    s = writers.stats(t0, t1)
    print("  {}: {:.3f} s; {}".format(what, t1 - t0, show_stats("writers during it", s)))
    return t1 - t0, s


# --- lookups ------------------------------------------------------------------

def sample_keys(conn, n, table="idemkey_records"):
    """About n (tenant name, key) pairs of existing rows, from random pages."""
    rows = q1(conn, "SELECT sum(greatest(reltuples, 0)) FROM pg_class WHERE oid IN " +
              LEAVES.format("%(t)s"), {"t": table})
    pct = min(100.0, 100.0 * 3 * n / max(1, rows))
    rows = q(conn, "SELECT t.name, r.key FROM {} r TABLESAMPLE SYSTEM (%s) JOIN "
                   "idemkey_tenants t ON t.id = r.tenant_id LIMIT %s".format(table),
             (pct, n))
    random.Random(1).shuffle(rows)
    return [(name, bytes(key)) for name, key in rows]


def time_lookups(conn, keys, explain=True):
    """idemkeyd's read of each key, prepared once (as idemkeyd does); returns
    (mean, p50, p99) in ms and, if explain, EXPLAIN ANALYZE of one more."""
    q(conn, "DEALLOCATE ALL")
    q(conn, "PREPARE rd(text, bytea) AS " + READ_SQL)
    lat = []
    with conn.cursor() as cur:
        for name, key in keys:
            start = time.monotonic()
            cur.execute("EXECUTE rd(%s, %s)", (name, psycopg2.Binary(key)))
            if cur.fetchone()[1] is None:
                raise RuntimeError("key {!r} not found".format(key))
            lat.append(time.monotonic() - start)
    plan = None
    if explain:
        plan = "\n".join(r[0] for r in q(conn, "EXPLAIN (ANALYZE, BUFFERS) EXECUTE rd(%s, %s)",
                                         (keys[0][0], psycopg2.Binary(keys[0][1]))))
    lat.sort()
    return sum(lat) / len(lat) * 1e3, percentile(lat, 50) * 1e3, percentile(lat, 99) * 1e3, plan


def read_locks(conn, key):
    """(fast-path, shared-table) locks the read of key holds in its
    transaction, on the connection time_lookups prepared it on."""
    q(conn, "BEGIN")
    q(conn, "EXECUTE rd(%s, %s)", (key[0], psycopg2.Binary(key[1])))
    locks = q(conn, "SELECT count(*) FILTER (WHERE fastpath), count(*) FILTER (WHERE NOT "
                    "fastpath) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = "
                    "'relation'")[0]
    q(conn, "ROLLBACK")
    return locks


def show_lookups(what, result, plan_lines=None):
    mean, p50, p99, plan = result
    print("  {}: mean {:.3f} ms, p50 {:.3f} ms, p99 {:.3f} ms per lookup".format(
        what, mean, p50, p99))
    if plan:
        lines = plan.splitlines()
        if plan_lines and len(lines) > plan_lines:
            lines = lines[:plan_lines - 3] + ["    ... ({} lines)".format(len(lines))] + lines[-3:]
        print("\n".join("    | " + line for line in lines))
