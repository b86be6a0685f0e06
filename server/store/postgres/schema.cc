#include "server/store/postgres/schema.h"

#include <vector>

#include "absl/strings/str_cat.h"

namespace idemkey::store::postgres {
namespace {

// Step N takes the schema from version N-1 to N. Append only: a step that
// has run anywhere is never edited.
const std::vector<std::vector<const char*>>& Steps() {
  static const auto* steps = new std::vector<std::vector<const char*>>{
      // 1: tenants, records, tokens.
      {
          "CREATE TABLE idemkey_tenants ("
          "  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
          "  name text COLLATE \"C\" NOT NULL UNIQUE,"
          "  created_ms bigint NOT NULL)",
          // Keys are bytea: they sort bytewise (the Scan order RocksDB
          // has) whatever the database's collation.
          "CREATE TABLE idemkey_records ("
          "  tenant_id bigint NOT NULL"
          "    REFERENCES idemkey_tenants (id) ON DELETE CASCADE,"
          "  key bytea NOT NULL,"
          "  state smallint NOT NULL,"
          "  fingerprint bytea NOT NULL,"
          "  fencing_token bigint NOT NULL,"
          "  attempt_id bytea NOT NULL,"
          "  lease_expires_ms bigint NOT NULL,"
          "  created_ms bigint NOT NULL,"
          "  expires_ms bigint NOT NULL,"
          "  ttl_ms bigint NOT NULL,"
          "  completed_ms bigint NOT NULL,"
          "  response bytea,"
          "  PRIMARY KEY (tenant_id, key))",
          "CREATE INDEX idemkey_records_expiry ON idemkey_records "
          "(expires_ms)",
          "CREATE SEQUENCE idemkey_fencing_tokens AS bigint",
      },
      // 2: tenants spread over several clusters (placed_backend.h): where
      // each tenant lives (read only in the first cluster), and how this
      // database turns its sequence's n into tokens, (n + base) * stride +
      // offset, so that no two clusters hand out one token.
      {
          "CREATE TABLE idemkey_placement ("
          "  tenant text COLLATE \"C\" PRIMARY KEY,"
          "  cluster text NOT NULL,"
          "  placed_ms bigint NOT NULL)",
          "ALTER TABLE idemkey_schema"
          "  ADD COLUMN token_stride bigint NOT NULL DEFAULT 1,"
          "  ADD COLUMN token_offset bigint NOT NULL DEFAULT 0,"
          "  ADD COLUMN token_base bigint NOT NULL DEFAULT 0",
      },
  };
  return *steps;
}

// Any constant shared by every idemkeyd; only the migration takes it.
// (Record locks are FNV-1a hashes: a clash would only serialize the two.)
constexpr int64_t kMigrationLock = 0x6964656d6b657931;  // "idemkey1"

absl::StatusOr<int> CurrentVersion(Connection& c) {
  Pipeline p;
  p.Add("SELECT version::bigint FROM idemkey_schema");
  absl::StatusOr<std::vector<Result>> r = c.Run(p);
  if (!r.ok()) return r.status();
  if ((*r)[0].rows() != 1) {
    return absl::FailedPreconditionError(
        "idemkey_schema holds no version: the database was changed by hand");
  }
  return static_cast<int>((*r)[0].Int64(0, 0));
}

absl::Status MigrateLocked(Connection& c) {
  // Created only where it is absent: PostgreSQL checks CREATE on the schema
  // even for a CREATE TABLE IF NOT EXISTS of a table that exists, and a
  // run-time role (deploy/README.md) need not hold it once an owner role
  // made the tables.
  Pipeline find;
  find.Add("SELECT to_regclass('idemkey_schema') IS NULL");
  absl::StatusOr<std::vector<Result>> found = c.Run(find);
  if (!found.ok()) return found.status();
  if ((*found)[0].Bytes(0, 0) == absl::string_view("\1", 1)) {
    Pipeline create;
    create.Add("BEGIN");
    create.Add(
        "CREATE TABLE idemkey_schema ("
        "  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),"
        "  version integer NOT NULL)");
    create.Add("INSERT INTO idemkey_schema (version) VALUES (0)");
    create.Add("COMMIT");
    if (absl::StatusOr<std::vector<Result>> r = c.Run(create); !r.ok()) {
      return r.status();
    }
  }
  absl::StatusOr<int> version = CurrentVersion(c);
  if (!version.ok()) return version.status();
  if (*version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the database's idemkey schema is version ", *version,
        ", newer than this idemkeyd knows (", kSchemaVersion,
        "): run a newer idemkeyd, or point --postgres_dsn at another "
        "database"));
  }
  for (int next = *version + 1; next <= kSchemaVersion; ++next) {
    Pipeline step;
    step.Add("BEGIN");
    for (const char* sql : Steps()[next - 1]) step.Add(sql);
    step.Add("UPDATE idemkey_schema SET version = $1::bigint").Int64(next);
    step.Add("COMMIT");
    if (absl::StatusOr<std::vector<Result>> r = c.Run(step); !r.ok()) {
      return absl::Status(
          r.status().code(),
          absl::StrCat("migrating the idemkey schema to version ", next, ": ",
                       r.status().message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Migrate(Connection& c) {
  if (Steps().size() != kSchemaVersion) {
    return absl::InternalError("schema.cc: Steps() and kSchemaVersion differ");
  }
  Pipeline lock;
  // Another replica may hold the lock while it migrates: wait, however long.
  lock.Add("SET lock_timeout = 0");
  lock.Add("SELECT pg_advisory_lock($1)").Int64(kMigrationLock);
  if (absl::StatusOr<std::vector<Result>> r = c.Run(lock); !r.ok()) {
    return r.status();
  }
  absl::Status migrated = MigrateLocked(c);
  Pipeline unlock;
  unlock.Add("SELECT pg_advisory_unlock($1)").Int64(kMigrationLock);
  absl::StatusOr<std::vector<Result>> r = c.Run(unlock);
  if (migrated.ok() && !r.ok()) return r.status();
  return migrated;
}

}  // namespace idemkey::store::postgres
