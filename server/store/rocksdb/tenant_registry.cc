#include "server/store/rocksdb/tenant_registry.h"

#include <memory>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "server/store/rocksdb/status.h"
#include "server/util/coding.h"

namespace idemkey::store {
namespace {

// Both the column family names and the registry keys.
constexpr absl::string_view kTenantPrefix = "tenant/";

rocksdb::WriteOptions Durable() {
  rocksdb::WriteOptions durable;
  durable.sync = true;
  return durable;
}

}  // namespace

std::string TenantRegistry::ColumnFamilyName(absl::string_view tenant) {
  return absl::StrCat(kTenantPrefix, tenant);
}

std::optional<std::string> TenantRegistry::TenantOf(
    absl::string_view column_family) {
  if (!absl::ConsumePrefix(&column_family, kTenantPrefix)) return std::nullopt;
  return std::string(column_family);
}

absl::StatusOr<TenantRegistry::CreatedMs> TenantRegistry::ReadAll() const {
  CreatedMs registered;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), system_cf_));
  const rocksdb::Slice prefix = ToSlice(kTenantPrefix);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
       it->Next()) {
    absl::string_view name = ToView(it->key());
    name.remove_prefix(kTenantPrefix.size());
    registered[std::string(name)] =
        it->value().size() == 8
            ? static_cast<int64_t>(util::GetFixed64(it->value().data()))
            : 0;
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading tenants");
  return registered;
}

absl::Status TenantRegistry::Register(absl::string_view tenant,
                                      int64_t created_ms) {
  rocksdb::Status s =
      db_->Put(Durable(), system_cf_, ColumnFamilyName(tenant),
               util::EncodeFixed64(static_cast<uint64_t>(created_ms)));
  return s.ok() ? absl::OkStatus()
                : FromRocks(
                      s, absl::StrCat("registering tenant \"", tenant, "\""));
}

absl::Status TenantRegistry::Unregister(absl::string_view tenant) {
  rocksdb::Status s =
      db_->Delete(Durable(), system_cf_, ColumnFamilyName(tenant));
  return s.ok() ? absl::OkStatus()
                : FromRocks(
                      s, absl::StrCat("unregistering tenant \"", tenant, "\""));
}

absl::StatusOr<TenantRegistry::CreatedMs> TenantRegistry::Reconcile(
    const std::vector<std::string>& present, int64_t now_ms) {
  absl::StatusOr<CreatedMs> registered = ReadAll();
  if (!registered.ok()) return registered.status();
  CreatedMs out;
  for (const std::string& name : present) {
    auto reg = registered->find(name);
    if (reg != registered->end()) {
      out[name] = reg->second;
      continue;
    }
    if (absl::Status s = Register(name, now_ms); !s.ok()) return s;
    out[name] = now_ms;
  }
  for (const auto& [name, created] : *registered) {
    if (out.count(name) > 0) continue;
    if (absl::Status s = Unregister(name); !s.ok()) return s;
  }
  return out;
}

}  // namespace idemkey::store
