// rocksdb_backend.h — the Backend of idemkeyd: records in an embedded RocksDB.
//
// Layout: one column family per tenant ("tenant/<name>"), holding key ->
// encoded Record (record_codec.h); and the column family "idemkey.system"
// holding the tenant registry (tenant_registry.h) and the fencing token
// watermark (fencing_tokens.h). Every tenant column family shares one block
// cache and one write-buffer manager, so memory stays bounded however many
// tenants exist, and runs the TTL compaction filter.
//
// Atomic read-modify-write: Update locks one of `lock_stripes` mutexes chosen
// by hash(tenant, key) around Get + decide + Put. Writers of different keys
// proceed in parallel.
//
// Durability: record writes go to the WAL file unsynced (to the OS, so a
// kill -9 loses nothing); with `sync` on, a WalSyncer thread fsyncs the WAL
// once for every caller waiting in WhenDurable (wal_syncer.h). No lock is
// held across an fsync, and a call with CallOptions::may_wait_for_io false
// never waits for the disk: reads use only the memtables and the block
// cache, writes refuse to stall (WouldBlockError otherwise).
//
// RocksDB's warnings and errors go to stderr, not to a LOG file in the data
// directory (stderr_logger.h: a full disk would otherwise abort the process).
//
// Thread-safe (Backend's contract), from Open until Close.
//
//   RocksDbOptions options;
//   options.path = "./data";
//   absl::StatusOr<std::unique_ptr<RocksDbBackend>> backend =
//       RocksDbBackend::Open(options);
//   ...
//   (*backend)->Close();  // flush memtables, sync the WAL

#ifndef IDEMKEY_SERVER_STORE_ROCKSDB_ROCKSDB_BACKEND_H_
#define IDEMKEY_SERVER_STORE_ROCKSDB_ROCKSDB_BACKEND_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "idemkey/sync/mutex.h"
#include "rocksdb/db.h"
#include "server/store/backend.h"
#include "server/store/clock.h"
#include "server/store/rocksdb/fencing_tokens.h"
#include "server/store/rocksdb/tenant_registry.h"
#include "server/store/rocksdb/ttl_compaction_filter.h"
#include "server/store/rocksdb/wal_syncer.h"

namespace idemkey::store {

struct RocksDbOptions {
  // Data directory; created if missing.
  std::string path;
  // fsync the WAL before acknowledging a write (WhenDurable). Off: a process
  // crash loses nothing, a machine crash may lose the last writes.
  bool sync = true;
  // Shared by all tenants: block cache, which also accounts memtables.
  size_t block_cache_bytes = 512 << 20;
  // Memtables of all tenants together (charged to the block cache). Each
  // tenant's memtable is charged in blocks of write_buffer_bytes /
  // (2 * max_tenants) (at most 1 MiB), so every tenant allowed can write
  // without forcing the others' memtables out.
  size_t write_buffer_bytes = 128 << 20;
  // CreateTenant refuses past this many tenants (see README, "Tenants").
  size_t max_tenants = 1000;
  // Cold files are rewritten (and expired records dropped) at least this
  // often.
  uint64_t periodic_compaction_seconds = 12 * 3600;
  // Mutexes serializing Updates; more stripes, fewer false collisions.
  size_t lock_stripes = 4096;
  // rocksdb::Statistics at tickers-only level, for the block-cache hit/miss
  // and write-stall figures of Stats() (metrics). Costs a few relaxed atomic
  // increments per read and write (README, "Metrics").
  bool statistics = true;
  // Not owned; must outlive the backend.
  const Clock* clock = SystemClock::Get();
};

class RocksDbBackend final : public Backend {
 public:
  // Opens or creates the store. Errors name the path and the likely cause:
  // FAILED_PRECONDITION when another process holds the DB lock,
  // PERMISSION_DENIED / INTERNAL when the directory cannot be used.
  static absl::StatusOr<std::unique_ptr<RocksDbBackend>> Open(
      const RocksDbOptions& options);

  // Closes without flushing if Close() was not called.
  ~RocksDbBackend() override;

  // Flushes memtables, syncs the WAL and closes the DB. Call once, after the
  // last Update; the backend is unusable afterwards.
  absl::Status Close() override;

  absl::Status Update(absl::string_view tenant, absl::string_view key,
                      const CallOptions& options, UpdateFn fn) override;
  absl::StatusOr<std::optional<Record>> Get(
      absl::string_view tenant, absl::string_view key,
      const CallOptions& options) override;
  absl::Status Scan(absl::string_view tenant, absl::string_view prefix,
                    absl::string_view start, ScanFn fn) override;
  void WhenDurable(absl::AnyInvocable<void(absl::Status) &&> done) override;
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

  // For tests: the raw DB and a tenant's column family (nullptr if absent),
  // and the WAL syncs shared by WhenDurable callers (0 with sync off).
  rocksdb::DB* db() { return db_.get(); }
  uint64_t wal_syncs() const { return syncer_ ? syncer_->syncs() : 0; }
  rocksdb::ColumnFamilyHandle* TenantHandleForTesting(absl::string_view name);

 private:
  // A tenant's column family, shared by the calls using it: DropTenant drops
  // the column family at once, and the handle is destroyed when the last
  // call using it lets go.
  struct Tenant;

  explicit RocksDbBackend(const RocksDbOptions& options);
  absl::Status OpenDb();
  // Takes the handles DB::Open returned: the default and system column
  // families, and the tenants as the registry (reconciled) knows them.
  absl::Status AdoptColumnFamilies(
      const std::vector<rocksdb::ColumnFamilyHandle*>& handles);
  rocksdb::ColumnFamilyOptions TenantCfOptions() const;
  sync::Mutex& StripeFor(absl::string_view tenant, absl::string_view key);
  std::shared_ptr<Tenant> FindTenant(absl::string_view name);
  uint64_t TableBytes(const Tenant& tenant);

  const RocksDbOptions options_;
  const std::shared_ptr<TtlCompactionFilterFactory> filter_factory_;
  std::shared_ptr<rocksdb::Cache> block_cache_;
  std::shared_ptr<rocksdb::Statistics> statistics_;  // null when off
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::ColumnFamilyHandle* default_cf_ = nullptr;  // owned
  rocksdb::ColumnFamilyHandle* system_cf_ = nullptr;   // owned
  std::unique_ptr<FencingTokens> tokens_;

  // Serializes CreateTenant and DropTenant, which are slow (each rewrites
  // the OPTIONS file), without blocking record traffic meanwhile. Taken
  // before tenants_mu_, never after.
  sync::Mutex tenant_admin_mu_ ABSL_ACQUIRED_BEFORE(tenants_mu_);
  std::unique_ptr<TenantRegistry> registry_
      ABSL_PT_GUARDED_BY(tenant_admin_mu_);
  // Guards only the map; held for a lookup or an insert, never across I/O.
  sync::Mutex tenants_mu_;
  std::map<std::string, std::shared_ptr<Tenant>, std::less<>> tenants_
      ABSL_GUARDED_BY(tenants_mu_);

  // Update holds the stripe of its key across read, decide and write
  // (Backend guarantee 1). Never two at once.
  std::vector<sync::Mutex> stripes_;

  // With sync on; stopped before the DB closes.
  std::unique_ptr<WalSyncer> syncer_;
};

}  // namespace idemkey::store

#endif  // IDEMKEY_SERVER_STORE_ROCKSDB_ROCKSDB_BACKEND_H_
