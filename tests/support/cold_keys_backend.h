// cold_keys_backend.h — a Backend for unit tests whose keys starting with
// "cold" are "on disk": a call that may not wait for I/O and touches one
// answers WouldBlockError, having changed nothing, as RocksDbBackend does
// for a record outside its caches. Everything else is a MemoryBackend.
//
//   ColdKeysBackend backend;
//   KeyStore store(&backend, {});
//   store.Lookup("acme", "cold-1", {.may_wait_for_io = false});  // WouldBlock
//
// MeetColdUpdates(n) makes it a test of concurrency: each update of a cold
// key, where it may wait, waits until n of them are waiting together (or
// 10 s pass, which met() then tells): callers running them one after the
// other never meet.

#ifndef IDEMKEY_TESTS_SUPPORT_COLD_KEYS_BACKEND_H_
#define IDEMKEY_TESTS_SUPPORT_COLD_KEYS_BACKEND_H_

#include <atomic>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "idemkey/sync/mutex.h"
#include "server/store/backend.h"
#include "server/store/memory_backend.h"

namespace idemkey::testing {

class ColdKeysBackend final : public store::Backend {
 public:
  absl::Status Update(absl::string_view tenant, absl::string_view key,
                      const store::CallOptions& options, UpdateFn fn) override {
    if (Refuses(key, options)) return store::WouldBlockError();
    if (absl::StartsWith(key, "cold")) Meet();
    ++updates_run_;
    return memory_.Update(tenant, key, options, fn);
  }
  absl::StatusOr<std::optional<store::Record>> Get(
      absl::string_view tenant, absl::string_view key,
      const store::CallOptions& options) override {
    if (Refuses(key, options)) return store::WouldBlockError();
    return memory_.Get(tenant, key, options);
  }
  absl::Status Scan(absl::string_view tenant, absl::string_view prefix,
                    absl::string_view start, ScanFn fn) override {
    return memory_.Scan(tenant, prefix, start, fn);
  }
  absl::StatusOr<uint64_t> NextFencingToken(
      const store::CallOptions& options) override {
    return memory_.NextFencingToken(options);
  }
  absl::StatusOr<store::TenantInfo> CreateTenant(
      absl::string_view name, const store::CallOptions& options) override {
    return memory_.CreateTenant(name, options);
  }
  absl::Status DropTenant(absl::string_view name,
                          const store::CallOptions& options) override {
    return memory_.DropTenant(name, options);
  }
  std::vector<store::TenantInfo> ListTenants() override {
    return memory_.ListTenants();
  }
  absl::StatusOr<store::BackendStats> Stats() override {
    return memory_.Stats();
  }
  absl::StatusOr<store::CompactionResult> Compact(
      absl::string_view tenant) override {
    return memory_.Compact(tenant);
  }
  absl::StatusOr<uint64_t> Checkpoint(const std::string& dir) override {
    return memory_.Checkpoint(dir);
  }

  // From now on, cold updates wait for `n` of them to wait at once.
  void MeetColdUpdates(int n) {
    sync::MutexLock lock(&mu_);
    meet_ = n;
  }
  // Every cold update since MeetColdUpdates met the others in time.
  bool met() {
    sync::MutexLock lock(&mu_);
    return !missed_;
  }

  // Updates that reached the records (refused ones do not count).
  int updates_run() const { return updates_run_; }
  // Calls refused for I/O so far.
  int refusals() const { return refusals_; }

 private:
  bool Refuses(absl::string_view key, const store::CallOptions& options) {
    if (options.may_wait_for_io || !absl::StartsWith(key, "cold")) {
      return false;
    }
    ++refusals_;
    return true;
  }

  void Meet() {
    sync::MutexLock lock(&mu_);
    if (meet_ == 0) return;
    ++waiting_;
    all_here_.SignalAll();
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (waiting_ < meet_) {
      const absl::Duration left = give_up - absl::Now();
      if (left <= absl::ZeroDuration() || !all_here_.WaitFor(&mu_, left)) {
        missed_ = missed_ || waiting_ < meet_;
        return;
      }
    }
  }

  store::MemoryBackend memory_;
  // sync::Mutex, not absl::Mutex: the TSan build must see these locks.
  sync::Mutex mu_;
  sync::CondVar all_here_;
  int meet_ ABSL_GUARDED_BY(mu_) = 0;
  int waiting_ ABSL_GUARDED_BY(mu_) = 0;  // cold updates that came to Meet
  bool missed_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<int> updates_run_{0};
  std::atomic<int> refusals_{0};
};

}  // namespace idemkey::testing

#endif  // IDEMKEY_TESTS_SUPPORT_COLD_KEYS_BACKEND_H_
