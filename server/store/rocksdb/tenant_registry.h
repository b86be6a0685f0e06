// tenant_registry.h — which tenants exist, and since when.
//
// Each tenant of RocksDbBackend is a column family "tenant/<name>"; the
// registry keeps "tenant/<name>" -> created_ms (8 bytes) in the system
// column family, written with sync. Creating a tenant makes the column
// family, then registers it; dropping drops it, then unregisters it. A crash
// between the two leaves them out of step, so at open Reconcile takes the
// column families as the truth: it registers those it does not know (created
// "now") and forgets entries whose column family is gone.
//
//   TenantRegistry registry(db, system_cf);
//   absl::StatusOr<TenantRegistry::CreatedMs> created =
//       registry.Reconcile({"acme", "globex"}, clock->NowMillis());
//   registry.Register("initech", now_ms);
//
// Thread-compatible: RocksDbBackend calls it at open and under its tenant
// admin lock.

#ifndef IDEMKEY_SERVER_STORE_ROCKSDB_TENANT_REGISTRY_H_
#define IDEMKEY_SERVER_STORE_ROCKSDB_TENANT_REGISTRY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "rocksdb/db.h"

namespace idemkey::store {

class TenantRegistry {
 public:
  // Tenant name -> creation time (Unix ms).
  using CreatedMs = std::map<std::string, int64_t, std::less<>>;

  // The column family of tenant `name`.
  static std::string ColumnFamilyName(absl::string_view tenant);
  // The tenant whose column family this is, or nullopt for another one.
  static std::optional<std::string> TenantOf(absl::string_view column_family);

  // Neither is owned; both must outlive the registry.
  TenantRegistry(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* system_cf)
      : db_(db), system_cf_(system_cf) {}

  // Every registered tenant.
  absl::StatusOr<CreatedMs> ReadAll() const;
  // Synced writes.
  absl::Status Register(absl::string_view tenant, int64_t created_ms);
  absl::Status Unregister(absl::string_view tenant);

  // Brings the registry in step with the tenants whose column families
  // exist, and returns their creation times (`now_ms` for those it had to
  // register).
  absl::StatusOr<CreatedMs> Reconcile(const std::vector<std::string>& present,
                                      int64_t now_ms);

 private:
  rocksdb::DB* const db_;
  rocksdb::ColumnFamilyHandle* const system_cf_;
};

}  // namespace idemkey::store

#endif  // IDEMKEY_SERVER_STORE_ROCKSDB_TENANT_REGISTRY_H_
