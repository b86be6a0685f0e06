// schema.h — idemkeyd's tables in PostgreSQL, created and migrated at start.
//
// The schema has a version, kept in idemkey_schema. Migrate() brings the
// database to kSchemaVersion, one numbered step at a time, each in its own
// transaction, under a session advisory lock: several replicas starting at
// once migrate it exactly once, the others wait and find it done. A database
// newer than this binary is refused (FAILED_PRECONDITION): an older
// idemkeyd must not write records it does not understand.
//
// Tables (version 1):
//   idemkey_tenants  (id, name UNIQUE, created_ms)
//   idemkey_records  (tenant_id -> idemkey_tenants ON DELETE CASCADE, key,
//                     the Record's fields, response; PRIMARY KEY (tenant_id,
//                     key)), indexed on expires_ms for the expiry sweep
//   idemkey_fencing_tokens, a sequence
//
//   // on a connection of its own: it leaves lock_timeout at 0
//   if (absl::Status s = Migrate(connection); !s.ok()) return s;

#ifndef IDEMKEY_SERVER_STORE_POSTGRES_SCHEMA_H_
#define IDEMKEY_SERVER_STORE_POSTGRES_SCHEMA_H_

#include "absl/status/status.h"
#include "server/store/postgres/connection.h"

namespace idemkey::store::postgres {

inline constexpr int kSchemaVersion = 2;

absl::Status Migrate(Connection& connection);

}  // namespace idemkey::store::postgres

#endif  // IDEMKEY_SERVER_STORE_POSTGRES_SCHEMA_H_
