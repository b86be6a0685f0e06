// key_store.h — the idempotency state machine of SPEC.md "Record life".
//
// KeyStore validates every input against Limits, decides each transition
// (ABSENT -> IN_PROGRESS -> COMPLETED -> expired) with the time of its Clock,
// and persists through a Backend, which makes each transition atomic per key.
// It knows nothing of gRPC or RocksDB: idemkeyd serves it over gRPC, and any
// backend (RocksDbBackend, MemoryBackend) runs the same rules.
//
//   MemoryBackend backend;
//   KeyStore store(&backend, KeyStoreOptions{});
//   auto r = store.Reserve({.tenant = "acme", .key = "k1",
//                           .fingerprint = sha256, .attempt_id = "a1"});
//   if (r.ok() && r->outcome == ReserveOutcome::kOwner) {
//     ... run the request ...
//     store.Complete("acme", "k1", r->fencing_token, std::move(response));
//   }
//
// Thread-safe. Error codes: INVALID_ARGUMENT (bad input), NOT_FOUND (unknown
// tenant or no live record), ABORTED (the token no longer holds the lease),
// FAILED_PRECONDITION (wrong state), RESOURCE_EXHAUSTED (a limit).

#ifndef IDEMKEY_SERVER_STORE_KEY_STORE_H_
#define IDEMKEY_SERVER_STORE_KEY_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/store/backend.h"
#include "server/store/clock.h"
#include "server/store/limits.h"
#include "server/store/record.h"

namespace idemkey::store {

struct KeyStoreOptions {
  Limits limits;
  // Reserve creates an unknown tenant instead of answering NOT_FOUND.
  bool auto_create_tenants = true;
  // Not owned; must outlive the KeyStore.
  const Clock* clock = SystemClock::Get();
};

struct ReserveArgs {
  absl::string_view tenant;
  absl::string_view key;
  absl::string_view fingerprint;
  absl::string_view attempt_id;
  int64_t lease_ms = 0;  // 0: Limits::default_lease_ms
  int64_t ttl_ms = 0;    // 0: Limits::default_ttl_ms
};

enum class ReserveOutcome { kOwner, kInProgress, kCompleted, kMismatch };

struct ReserveResult {
  ReserveOutcome outcome = ReserveOutcome::kMismatch;
  uint64_t fencing_token = 0;            // kOwner
  int64_t lease_expires_ms = 0;          // kOwner, kInProgress
  int64_t expires_ms = 0;                // all but kMismatch
  idemkey::v1::StoredResponse response;  // kCompleted
};

struct ListQuery {
  absl::string_view tenant;
  absl::string_view key_prefix;
  std::optional<RecordState> state;  // nullopt: every state
  int32_t page_size = 0;             // 0: 100; at most 1000
  absl::string_view page_token;      // from the previous RecordPage
  bool include_responses = false;
};

struct RecordPage {
  std::vector<Record> records;
  std::string next_page_token;  // empty on the last page
};

class KeyStore {
 public:
  // `backend` is not owned and must outlive the KeyStore.
  KeyStore(Backend* backend, KeyStoreOptions options);

  KeyStore(const KeyStore&) = delete;
  KeyStore& operator=(const KeyStore&) = delete;

  const Limits& limits() const { return options_.limits; }

  absl::StatusOr<ReserveResult> Reserve(const ReserveArgs& args);
  // Returns when the completed record expires. Completing again with the
  // token that completed it is OK (a retry whose reply was lost); the first
  // stored response stays.
  absl::StatusOr<int64_t> Complete(absl::string_view tenant,
                                   absl::string_view key,
                                   uint64_t fencing_token,
                                   idemkey::v1::StoredResponse response);
  absl::Status Release(absl::string_view tenant, absl::string_view key,
                       uint64_t fencing_token);
  // Returns the new lease expiry. `lease_ms` 0: the default lease.
  absl::StatusOr<int64_t> Heartbeat(absl::string_view tenant,
                                    absl::string_view key,
                                    uint64_t fencing_token, int64_t lease_ms);
  absl::StatusOr<Record> Lookup(absl::string_view tenant,
                                absl::string_view key);

  // Admin.
  absl::StatusOr<RecordPage> ListRecords(const ListQuery& query);
  absl::Status DeleteRecord(absl::string_view tenant, absl::string_view key);
  absl::StatusOr<TenantInfo> CreateTenant(absl::string_view name);
  absl::Status DropTenant(absl::string_view name);
  std::vector<TenantInfo> ListTenants();
  absl::StatusOr<BackendStats> Stats();
  // Backend::Compact: drops expired records from `tenant`'s files now (every
  // tenant when empty).
  absl::StatusOr<CompactionResult> Compact(absl::string_view tenant);
  // Backend::Checkpoint: a consistent copy of the whole store in `dir`.
  absl::StatusOr<uint64_t> Checkpoint(const std::string& dir);

  // Backend::WhenDurable: `done` runs once what the calls before it wrote or
  // read is durable. Answer a client from `done`, never before.
  void WhenDurable(absl::AnyInvocable<void(absl::Status) &&> done) {
    backend_->WhenDurable(std::move(done));
  }

 private:
  absl::Status ValidateTenantAndKey(absl::string_view tenant,
                                    absl::string_view key) const;
  // Update that first creates the tenant when auto-create is on.
  absl::Status UpdateCreatingTenant(absl::string_view tenant,
                                    absl::string_view key,
                                    Backend::UpdateFn fn);

  Backend* const backend_;
  const KeyStoreOptions options_;
};

}  // namespace idemkey::store

#endif  // IDEMKEY_SERVER_STORE_KEY_STORE_H_
