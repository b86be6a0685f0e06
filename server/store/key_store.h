// key_store.h — the idempotency state machine (docs/semantics.md, "Record
// life") over a storage engine.
//
// KeyStore validates every input against rules::Limits, runs the transition
// of each call (transitions.h: ABSENT -> IN_PROGRESS -> COMPLETED -> expired)
// with the time of its Clock, and persists its decision through a Backend,
// which makes each transition atomic per key. It knows nothing of gRPC or of
// any engine: idemkeyd serves it over gRPC, and every backend (RocksDbBackend,
// MemoryBackend) runs the same rules.
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
// Every call takes CallOptions (call_options.h): with may_wait_for_io false
// it answers WouldBlockError() instead of waiting, having changed nothing.
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
#include "idemkey/rules/limits.h"
#include "server/store/backend.h"
#include "server/store/call_options.h"
#include "server/store/clock.h"
#include "server/store/record.h"
#include "server/store/transitions.h"

namespace idemkey::store {

struct KeyStoreOptions {
  rules::Limits limits;
  // Reserve creates an unknown tenant instead of answering NOT_FOUND.
  bool auto_create_tenants = true;
  // Not owned; must outlive the KeyStore.
  const Clock* clock = SystemClock::Get();
};

// Views into the caller's strings, which must outlive the Reserve call (and
// only the call).
struct ReserveArgs {
  absl::string_view tenant;
  absl::string_view key;
  absl::string_view fingerprint;
  absl::string_view attempt_id;
  int64_t lease_ms = 0;  // 0: Limits::default_lease_ms
  int64_t ttl_ms = 0;    // 0: Limits::default_ttl_ms
  // With KeyStoreOptions::auto_create_tenants, whether this call may create
  // an unknown tenant (the service allows it only for some callers).
  bool may_create_tenant = true;
};

// Views, like ReserveArgs: valid for the ListRecords call only.
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

  const rules::Limits& limits() const { return options_.limits; }

  absl::StatusOr<ReserveResult> Reserve(
      const ReserveArgs& args, const CallOptions& options = CallOptions());
  // Returns when the completed record expires. Completing again with the
  // token that completed it is OK (a retry whose reply was lost); the first
  // stored response stays.
  absl::StatusOr<int64_t> Complete(absl::string_view tenant,
                                   absl::string_view key,
                                   uint64_t fencing_token,
                                   idemkey::v1::StoredResponse response,
                                   const CallOptions& options = CallOptions());
  absl::Status Release(absl::string_view tenant, absl::string_view key,
                       uint64_t fencing_token,
                       const CallOptions& options = CallOptions());
  // Returns the new lease expiry. `lease_ms` 0: the default lease.
  absl::StatusOr<int64_t> Heartbeat(absl::string_view tenant,
                                    absl::string_view key,
                                    uint64_t fencing_token, int64_t lease_ms,
                                    const CallOptions& options = CallOptions());
  absl::StatusOr<Record> Lookup(absl::string_view tenant, absl::string_view key,
                                const CallOptions& options = CallOptions());

  // Admin. These may wait for I/O.
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
  // A read's answer for an unknown tenant, worded for the configuration.
  absl::Status ForReader(absl::Status s) const;
  // Runs `decide` (a transition of transitions.h, given the stored record)
  // inside Backend::Update and persists what it decided; on success `*answer`
  // is its answer. With `create_tenant`, an unknown tenant is created first
  // when auto-create is on.
  template <typename Answer, typename Decide>
  absl::Status Apply(absl::string_view tenant, absl::string_view key,
                     const CallOptions& options, bool create_tenant,
                     Decide decide, Answer* answer);

  Backend* const backend_;
  const KeyStoreOptions options_;
};

}  // namespace idemkey::store

#endif  // IDEMKEY_SERVER_STORE_KEY_STORE_H_
