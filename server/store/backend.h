// backend.h — what the state machine needs from a storage engine.
//
// KeyStore (key_store.h) owns the semantics; a Backend owns bytes on disk (or
// in memory, or on a database server) and nothing else: it persists what the
// transitions (transitions.h) decided. It knows tenants, keys and Records,
// and gives four guarantees:
//   1. Update is atomic per (tenant, key): no other Update of the same key runs
//      between its read and its write.
//   2. Once Update or Get has returned, the callback of a WhenDurable called
//      afterwards runs only when the write, and every write the call saw, is
//      as durable as the backend promises (RocksDbBackend with sync on: on
//      disk, surviving a machine crash). Answers go out from that callback,
//      so no client learns of a write a crash could still undo.
//   3. NextFencingToken never returns the same value twice, across restarts
//      and crashes, and its values grow.
//   4. With CallOptions::may_wait_for_io false, a call that would wait for
//      I/O returns WouldBlockError() instead, having changed nothing.
// Expiry is not the backend's business: it returns expired records like any
// other and the KeyStore treats them as absent. A missing tenant is always
// UnknownTenantError (IsUnknownTenant), never a plain NOT_FOUND.
//
// Thread-safe: every method may be called from any number of threads at
// once. Views passed in (string_view) are only read during the call.
//
//   backend->Update("acme", "k1", CallOptions(),
//                   [&](std::optional<Record>& r)
//                       -> absl::StatusOr<WriteAction> {
//                     if (r) return WriteAction::kNone;
//                     r.emplace();  // fill it in
//                     return WriteAction::kPut;
//                   });

#ifndef IDEMKEY_SERVER_STORE_BACKEND_H_
#define IDEMKEY_SERVER_STORE_BACKEND_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/store/call_options.h"
#include "server/store/record.h"

namespace idemkey::store {

enum class WriteAction {
  kNone,    // leave the record as it was
  kPut,     // store the (changed) record
  kDelete,  // forget the record
};

struct TenantInfo {
  std::string name;
  int64_t created_ms = 0;
};

struct TenantStats {
  std::string name;
  uint64_t estimated_records = 0;
  uint64_t disk_bytes = 0;
  uint64_t memtable_bytes = 0;
};

struct CompactionResult {
  uint32_t tenants = 0;  // compacted
  uint64_t disk_bytes_before = 0;
  uint64_t disk_bytes_after = 0;
  uint64_t expired_records_dropped = 0;  // by this compaction
};

struct BackendStats {
  std::vector<TenantStats> tenants;  // in name order
  uint64_t max_tenants = 0;
  uint64_t wal_bytes = 0;
  uint64_t block_cache_usage_bytes = 0;
  uint64_t block_cache_capacity_bytes = 0;
  bool compaction_pending = false;
  uint64_t pending_compaction_bytes = 0;
  uint64_t expired_records_dropped = 0;
  // Engine figures for metrics; 0 when the backend has none. Counters are
  // cumulative since the backend opened.
  uint64_t block_cache_hits = 0;
  uint64_t block_cache_misses = 0;
  uint64_t write_stall_micros = 0;  // time writers spent delayed or stopped
  uint64_t write_slowdowns = 0;     // times writes were set to be delayed
  uint64_t write_stops = 0;         // times writes were stopped
  bool write_stopped = false;       // writes are stopped right now
  uint64_t delayed_write_rate = 0;  // bytes/s while delayed, else 0
};

class Backend {
 public:
  // Called with the stored record (nullopt when absent); may change or replace
  // it and says what to write. An error status aborts the Update unwritten.
  // Runs while the key is locked: it must not call Update itself, but may
  // call NextFencingToken (KeyStore issues a key's new token under the key's
  // lock, so that the key's tokens grow). It may run more than once per
  // Update only if the backend retries internally; it must not keep state
  // across runs. It may run on another thread than the Update's caller
  // (PostgresBackend runs a group's functions on one of their callers).
  using UpdateFn =
      absl::FunctionRef<absl::StatusOr<WriteAction>(std::optional<Record>&)>;
  // Called for each record of a Scan in key order; return false to stop.
  using ScanFn = absl::FunctionRef<bool(Record&&)>;

  virtual ~Backend() = default;

  // Atomic read-modify-write of one record. NOT_FOUND when the tenant does
  // not exist; otherwise the status of `fn` or of the write.
  virtual absl::Status Update(absl::string_view tenant, absl::string_view key,
                              const CallOptions& options, UpdateFn fn) = 0;

  // The stored record, or nullopt. NOT_FOUND when the tenant does not exist.
  virtual absl::StatusOr<std::optional<Record>> Get(
      absl::string_view tenant, absl::string_view key,
      const CallOptions& options) = 0;

  // Visits records whose key starts with `prefix`, from the first key >=
  // `start` on. NOT_FOUND when the tenant does not exist. May wait for I/O.
  virtual absl::Status Scan(absl::string_view tenant, absl::string_view prefix,
                            absl::string_view start, ScanFn fn) = 0;

  // Runs `done` once everything written or read before this call is durable
  // (guarantee 2), with OK, or with the error that kept it from being so:
  // on the calling thread when it already is, else on a backend thread, so
  // `done` must be quick. This default is for backends whose writes are
  // durable when Update returns.
  virtual void WhenDurable(absl::AnyInvocable<void(absl::Status) &&> done) {
    std::move(done)(absl::OkStatus());
  }

  // A fencing token never returned before (guarantee 3).
  virtual absl::StatusOr<uint64_t> NextFencingToken(
      const CallOptions& options) = 0;

  // ALREADY_EXISTS when it exists; RESOURCE_EXHAUSTED past the tenant cap.
  // The name must already be valid (ValidateTenantName).
  virtual absl::StatusOr<TenantInfo> CreateTenant(
      absl::string_view name, const CallOptions& options) = 0;
  // Deletes the tenant and all its records. UnknownTenantError when absent.
  // Other tenants' calls go on meanwhile.
  virtual absl::Status DropTenant(absl::string_view name,
                                  const CallOptions& options) = 0;
  // Every tenant, in name order.
  virtual std::vector<TenantInfo> ListTenants() = 0;

  virtual absl::StatusOr<BackendStats> Stats() = 0;

  // Rewrites the table files of `tenant`, or of every tenant when empty,
  // now: expired records are dropped and their space given back. NOT_FOUND
  // for an unknown tenant; FAILED_PRECONDITION when the backend keeps no
  // files. Slow and I/O-heavy; other calls go on meanwhile.
  virtual absl::StatusOr<CompactionResult> Compact(
      absl::string_view tenant) = 0;

  // Finishes what the backend still has to write (RocksDB: flushes memtables
  // and syncs the WAL). Call once, after the last other call; the backend is
  // unusable afterwards. This default is for backends with nothing to finish.
  virtual absl::Status Close() { return absl::OkStatus(); }

  // A consistent copy of every tenant in the new directory `dir` (parents
  // are created), from which the backend can be opened again; returns its
  // size in bytes.
  // ALREADY_EXISTS when `dir` exists; FAILED_PRECONDITION when the backend
  // keeps nothing to copy.
  virtual absl::StatusOr<uint64_t> Checkpoint(const std::string& dir) = 0;
};

// The errors every backend gives for an unknown tenant and at its tenant cap,
// so that callers see one wording whatever the engine. UnknownTenantError is
// NOT_FOUND marked so that IsUnknownTenant tells it from "no such record".
absl::Status UnknownTenantError(absl::string_view tenant);
bool IsUnknownTenant(const absl::Status& status);
absl::Status TenantCapError(absl::string_view tenant, size_t max_tenants);
bool IsTenantCap(const absl::Status& status);

}  // namespace idemkey::store

#endif  // IDEMKEY_SERVER_STORE_BACKEND_H_
