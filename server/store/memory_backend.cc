#include "server/store/memory_backend.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace idemkey::store {

MemoryBackend::MemoryBackend(size_t max_tenants, const Clock* clock)
    : max_tenants_(max_tenants), clock_(clock) {}

absl::Status MemoryBackend::Update(absl::string_view tenant,
                                   absl::string_view key,
                                   const CallOptions& /*options*/,
                                   UpdateFn fn) {
  sync::MutexLock lock(&mu_);
  auto t = tenants_.find(tenant);
  if (t == tenants_.end()) return UnknownTenantError(tenant);
  auto& records = t->second.records;
  auto it = records.find(key);
  std::optional<Record> record;
  if (it != records.end()) record = it->second;
  absl::StatusOr<WriteAction> action = fn(record);
  if (!action.ok()) return action.status();
  switch (*action) {
    case WriteAction::kNone:
      break;
    case WriteAction::kPut:
      record->key = std::string(key);
      records.insert_or_assign(std::string(key), std::move(*record));
      break;
    case WriteAction::kDelete:
      if (it != records.end()) records.erase(it);
      break;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<Record>> MemoryBackend::Get(
    absl::string_view tenant, absl::string_view key,
    const CallOptions& /*options*/) {
  sync::MutexLock lock(&mu_);
  auto t = tenants_.find(tenant);
  if (t == tenants_.end()) return UnknownTenantError(tenant);
  auto it = t->second.records.find(key);
  if (it == t->second.records.end()) return std::optional<Record>();
  return std::optional<Record>(it->second);
}

absl::Status MemoryBackend::Scan(absl::string_view tenant,
                                 absl::string_view prefix,
                                 absl::string_view start, ScanFn fn) {
  sync::MutexLock lock(&mu_);
  auto t = tenants_.find(tenant);
  if (t == tenants_.end()) return UnknownTenantError(tenant);
  const auto& records = t->second.records;
  for (auto it = records.lower_bound(start);
       it != records.end() && absl::StartsWith(it->first, prefix); ++it) {
    if (!fn(Record(it->second))) break;
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> MemoryBackend::NextFencingToken(
    const CallOptions& /*options*/) {
  return ++last_token_;
}

absl::StatusOr<TenantInfo> MemoryBackend::CreateTenant(
    absl::string_view name, const CallOptions& /*options*/) {
  sync::MutexLock lock(&mu_);
  if (tenants_.count(name) > 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("tenant \"", name, "\" already exists"));
  }
  if (tenants_.size() >= max_tenants_)
    return TenantCapError(name, max_tenants_);
  TenantInfo info{std::string(name), clock_->NowMillis()};
  tenants_[info.name].created_ms = info.created_ms;
  return info;
}

absl::Status MemoryBackend::DropTenant(absl::string_view name,
                                       const CallOptions& /*options*/) {
  sync::MutexLock lock(&mu_);
  auto t = tenants_.find(name);
  if (t == tenants_.end()) return UnknownTenantError(name);
  tenants_.erase(t);
  return absl::OkStatus();
}

std::vector<TenantInfo> MemoryBackend::ListTenants() {
  sync::MutexLock lock(&mu_);
  std::vector<TenantInfo> out;
  for (const auto& [name, tenant] : tenants_) {
    out.push_back({name, tenant.created_ms});
  }
  return out;
}

absl::StatusOr<BackendStats> MemoryBackend::Stats() {
  sync::MutexLock lock(&mu_);
  BackendStats stats;
  stats.max_tenants = max_tenants_;
  for (const auto& [name, tenant] : tenants_) {
    stats.tenants.push_back({name, tenant.records.size(), 0, 0});
  }
  return stats;
}

absl::StatusOr<CompactionResult> MemoryBackend::Compact(absl::string_view) {
  return absl::FailedPreconditionError(
      "the in-memory backend keeps no files to compact; expired records are "
      "already invisible");
}

absl::StatusOr<uint64_t> MemoryBackend::Checkpoint(const std::string&) {
  return absl::FailedPreconditionError(
      "the in-memory backend keeps nothing on disk to copy");
}

}  // namespace idemkey::store
