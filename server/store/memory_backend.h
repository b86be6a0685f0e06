// memory_backend.h — a Backend that keeps records in process memory.
//
// For tests and for app developers who want the real KeyStore rules without a
// running idemkeyd. Nothing survives the object; fencing tokens start at 1.
// One mutex guards everything: correct, not fast.
//
//   MemoryBackend backend(/*max_tenants=*/100);
//   KeyStore store(&backend, KeyStoreOptions{});

#ifndef IDEMKEY_SERVER_STORE_MEMORY_BACKEND_H_
#define IDEMKEY_SERVER_STORE_MEMORY_BACKEND_H_

#include <atomic>
#include <map>
#include <mutex>
#include <string>

#include "server/store/backend.h"
#include "server/store/clock.h"

namespace idemkey::store {

class MemoryBackend final : public Backend {
 public:
  // `clock` stamps tenant creation; not owned.
  explicit MemoryBackend(size_t max_tenants = 1000,
                         const Clock* clock = SystemClock::Get());

  absl::Status Update(absl::string_view tenant, absl::string_view key,
                      UpdateFn fn) override;
  absl::StatusOr<std::optional<Record>> Get(absl::string_view tenant,
                                            absl::string_view key) override;
  absl::Status Scan(absl::string_view tenant, absl::string_view prefix,
                    absl::string_view start, ScanFn fn) override;
  absl::StatusOr<uint64_t> NextFencingToken() override;
  absl::StatusOr<TenantInfo> CreateTenant(absl::string_view name) override;
  absl::Status DropTenant(absl::string_view name) override;
  std::vector<TenantInfo> ListTenants() override;
  absl::StatusOr<BackendStats> Stats() override;
  absl::StatusOr<CompactionResult> Compact(absl::string_view tenant) override;
  absl::StatusOr<uint64_t> Checkpoint(const std::string& dir) override;

 private:
  struct Tenant {
    int64_t created_ms = 0;
    std::map<std::string, Record, std::less<>> records;
  };

  const size_t max_tenants_;
  const Clock* const clock_;
  std::atomic<uint64_t> last_token_{0};
  std::mutex mu_;
  std::map<std::string, Tenant, std::less<>> tenants_;  // guarded by mu_
};

}  // namespace idemkey::store

#endif  // IDEMKEY_SERVER_STORE_MEMORY_BACKEND_H_
