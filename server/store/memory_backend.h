// memory_backend.h — a Backend that keeps records in process memory.
//
// For tests and for app developers who want the real KeyStore rules without a
// running idemkeyd. Nothing survives the object; fencing tokens start at 1.
// One mutex guards everything: correct, not fast. Never waits for I/O, so
// CallOptions change nothing here.
//
// Thread-safe.
//
//   MemoryBackend backend(/*max_tenants=*/100);
//   KeyStore store(&backend, KeyStoreOptions{});

#ifndef IDEMKEY_SERVER_STORE_MEMORY_BACKEND_H_
#define IDEMKEY_SERVER_STORE_MEMORY_BACKEND_H_

#include <atomic>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "idemkey/sync/mutex.h"
#include "server/store/backend.h"
#include "server/store/clock.h"

namespace idemkey::store {

class MemoryBackend final : public Backend {
 public:
  // `clock` stamps tenant creation; not owned.
  explicit MemoryBackend(size_t max_tenants = 1000,
                         const Clock* clock = SystemClock::Get());

  absl::Status Update(absl::string_view tenant, absl::string_view key,
                      const CallOptions& options, UpdateFn fn) override;
  absl::StatusOr<std::optional<Record>> Get(
      absl::string_view tenant, absl::string_view key,
      const CallOptions& options) override;
  absl::Status Scan(absl::string_view tenant, absl::string_view prefix,
                    absl::string_view start, ScanFn fn) override;
  absl::StatusOr<uint64_t> NextFencingToken(
      const CallOptions& options) override;
  absl::StatusOr<TenantInfo> CreateTenant(absl::string_view name,
                                          const CallOptions& options) override;
  absl::Status DropTenant(absl::string_view name,
                          const CallOptions& options) override;
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
  sync::Mutex mu_;
  std::map<std::string, Tenant, std::less<>> tenants_ ABSL_GUARDED_BY(mu_);
};

}  // namespace idemkey::store

#endif  // IDEMKEY_SERVER_STORE_MEMORY_BACKEND_H_
