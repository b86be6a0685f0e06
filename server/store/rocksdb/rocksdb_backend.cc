#include "server/store/rocksdb/rocksdb_backend.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "rocksdb/cache.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/statistics.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/checkpoint.h"
#include "rocksdb/write_buffer_manager.h"
#include "server/store/rocksdb/engine_stats.h"
#include "server/store/rocksdb/record_codec.h"
#include "server/store/rocksdb/status.h"
#include "server/store/rocksdb/stderr_logger.h"

namespace idemkey::store {
namespace {

constexpr char kSystemCf[] = "idemkey.system";

// Record reads: when the call may not wait, only what is in memory.
rocksdb::ReadOptions RecordReadOptions(const CallOptions& options) {
  rocksdb::ReadOptions read;
  if (!options.may_wait_for_io) read.read_tier = rocksdb::kBlockCacheTier;
  return read;
}

// Record writes are never synced here: WhenDurable shares one sync among
// them. When the call may not wait, a write that would stall fails.
rocksdb::WriteOptions RecordWriteOptions(const CallOptions& options) {
  rocksdb::WriteOptions write;
  write.no_slowdown = !options.may_wait_for_io;
  return write;
}

// Arena block of each tenant's memtable. Past a small inline block, a
// memtable is charged to the write buffer manager one arena block at a time,
// so a tenant that wrote a few KiB counts a whole block. RocksDB's default
// (1 MiB here) let 200 active tenants use up the 128 MiB budget with little
// data: the manager then flushed memtables on nearly every write, into
// hundreds of tiny table files, and pairs ran at half the rate of one
// tenant (bench/README.md, "Many tenants"). This size lets every tenant
// allowed hold a memtable within half the budget. RocksDB wants a multiple
// of 4 KiB between 4 KiB and 1 MiB; smaller blocks only mean more, still
// rare, allocations.
size_t TenantArenaBlockBytes(const RocksDbOptions& options) {
  constexpr size_t kPage = 4 << 10;
  const size_t share = options.write_buffer_bytes /
                       (2 * std::max<size_t>(options.max_tenants, 1));
  return std::clamp<size_t>(share / kPage * kPage, kPage, 1 << 20);
}

}  // namespace

struct RocksDbBackend::Tenant {
  Tenant(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* handle, int64_t created)
      : db(db), handle(handle), created_ms(created) {}
  ~Tenant() { db->DestroyColumnFamilyHandle(handle); }
  Tenant(const Tenant&) = delete;
  Tenant& operator=(const Tenant&) = delete;

  rocksdb::DB* const db;
  rocksdb::ColumnFamilyHandle* const handle;  // owned
  const int64_t created_ms;
};

RocksDbBackend::RocksDbBackend(const RocksDbOptions& options)
    : options_(options),
      filter_factory_(
          std::make_shared<TtlCompactionFilterFactory>(options.clock)),
      stripes_(options.lock_stripes) {}

absl::StatusOr<std::unique_ptr<RocksDbBackend>> RocksDbBackend::Open(
    const RocksDbOptions& options) {
  std::unique_ptr<RocksDbBackend> backend(new RocksDbBackend(options));
  if (absl::Status s = backend->OpenDb(); !s.ok()) return s;
  return backend;
}

rocksdb::ColumnFamilyOptions RocksDbBackend::TenantCfOptions() const {
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = block_cache_;
  // Most Reserves look up a key that does not exist yet: a Bloom filter
  // answers those without reading data blocks.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  // Index and filter blocks count against the shared cache, so many tenants
  // do not mean unbounded memory.
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;

  rocksdb::ColumnFamilyOptions cf;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  cf.compaction_filter_factory = filter_factory_;
  cf.periodic_compaction_seconds = options_.periodic_compaction_seconds;
  cf.level_compaction_dynamic_level_bytes = true;
  cf.write_buffer_size = 16 << 20;
  cf.arena_block_size = TenantArenaBlockBytes(options_);
  return cf;
}

absl::Status RocksDbBackend::OpenDb() {
  const std::string& path = options_.path;
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) {
    return absl::PermissionDeniedError(absl::StrCat(
        "cannot create data directory \"", path, "\": ", ec.message()));
  }
  if (!std::filesystem::is_directory(path, ec) ||
      access(path.c_str(), W_OK | X_OK) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        "data directory \"", path,
        "\" is not a writable directory; check its owner and mode"));
  }

  block_cache_ = rocksdb::NewLRUCache(options_.block_cache_bytes);
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.write_buffer_manager =
      std::make_shared<rocksdb::WriteBufferManager>(options_.write_buffer_bytes,
                                                    block_cache_);
  // A quiet tenant must not pin old WAL files forever: past this size, the
  // column families holding the oldest WAL get flushed.
  db_options.max_total_wal_size = 4 * options_.write_buffer_bytes;
  auto logger = std::make_shared<StderrLogger>();
  db_options.info_log = logger;
  if (options_.statistics) {
    // Tickers only: no histograms or timers, the cheapest level that counts.
    statistics_ = rocksdb::CreateDBStatistics();
    statistics_->set_stats_level(rocksdb::StatsLevel::kExceptHistogramOrTimers);
    db_options.statistics = statistics_;
  }

  std::vector<std::string> names;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(db_options, path, &names);
  if (!s.ok()) names = {rocksdb::kDefaultColumnFamilyName};  // a new DB
  if (std::find(names.begin(), names.end(), kSystemCf) == names.end()) {
    names.push_back(kSystemCf);
  }

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : names) {
    if (name == rocksdb::kDefaultColumnFamilyName || name == kSystemCf) {
      descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
    } else if (TenantRegistry::TenantOf(name)) {
      descriptors.emplace_back(name, TenantCfOptions());
    } else {
      return absl::FailedPreconditionError(absl::StrCat(
          "data directory \"", path, "\" holds column family \"", name,
          "\", which idemkey does not know; is it an idemkey data directory?"));
    }
  }

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  s = rocksdb::DB::Open(db_options, path, descriptors, &handles, &db);
  // A failure's reason is returned below, in words that say what to do.
  logger->EndHold(/*print_held=*/s.ok());
  if (!s.ok()) {
    if (s.IsIOError() && absl::StrContains(s.ToString(), "LOCK")) {
      return absl::FailedPreconditionError(absl::StrCat(
          "data directory \"", path,
          "\" is in use by another process (its RocksDB LOCK is held); stop "
          "that idemkeyd or choose another --data_dir (",
          s.ToString(), ")"));
    }
    return FromRocks(s, absl::StrCat("cannot open RocksDB in \"", path, "\""));
  }
  db_.reset(db);
  if (absl::Status adopted = AdoptColumnFamilies(handles); !adopted.ok()) {
    return adopted;
  }
  if (options_.sync) {
    syncer_ = std::make_unique<WalSyncer>(WalSyncer::Hooks{
        .latest_sequence = [db] { return db->GetLatestSequenceNumber(); },
        .sync =
            [db] {
              rocksdb::Status synced = db->SyncWAL();
              return synced.ok() ? absl::OkStatus()
                                 : FromRocks(synced, "syncing the WAL");
            },
    });
  }
  return absl::OkStatus();
}

absl::Status RocksDbBackend::AdoptColumnFamilies(
    const std::vector<rocksdb::ColumnFamilyHandle*>& handles) {
  std::map<std::string, rocksdb::ColumnFamilyHandle*> tenant_handles;
  for (rocksdb::ColumnFamilyHandle* h : handles) {
    if (h->GetName() == rocksdb::kDefaultColumnFamilyName) {
      default_cf_ = h;
    } else if (h->GetName() == kSystemCf) {
      system_cf_ = h;
    } else {
      tenant_handles[*TenantRegistry::TenantOf(h->GetName())] = h;
    }
  }
  std::vector<std::string> present;
  for (const auto& [name, handle] : tenant_handles) present.push_back(name);

  sync::MutexLock admin(&tenant_admin_mu_);
  registry_ = std::make_unique<TenantRegistry>(db_.get(), system_cf_);
  absl::StatusOr<TenantRegistry::CreatedMs> created =
      registry_->Reconcile(present, options_.clock->NowMillis());
  if (!created.ok()) return created.status();
  {
    sync::MutexLock lock(&tenants_mu_);
    for (const auto& [name, handle] : tenant_handles) {
      tenants_.emplace(
          name, std::make_shared<Tenant>(db_.get(), handle, created->at(name)));
    }
  }
  absl::StatusOr<std::unique_ptr<FencingTokens>> tokens =
      FencingTokens::Load(db_.get(), system_cf_, options_.clock);
  if (!tokens.ok()) return tokens.status();
  tokens_ = std::move(*tokens);
  return absl::OkStatus();
}

RocksDbBackend::~RocksDbBackend() {
  if (db_ == nullptr) return;
  syncer_.reset();
  {
    sync::MutexLock lock(&tenants_mu_);
    tenants_.clear();
  }
  if (system_cf_) db_->DestroyColumnFamilyHandle(system_cf_);
  if (default_cf_) db_->DestroyColumnFamilyHandle(default_cf_);
  db_->Close().PermitUncheckedError();
}

absl::Status RocksDbBackend::Close() {
  syncer_.reset();  // answers whoever still waits
  sync::MutexLock lock(&tenants_mu_);
  std::vector<rocksdb::ColumnFamilyHandle*> all = {default_cf_, system_cf_};
  for (const auto& [name, tenant] : tenants_) all.push_back(tenant->handle);
  rocksdb::Status flushed = db_->Flush(rocksdb::FlushOptions(), all);
  rocksdb::Status synced = db_->SyncWAL();
  tenants_.clear();
  db_->DestroyColumnFamilyHandle(system_cf_);
  db_->DestroyColumnFamilyHandle(default_cf_);
  system_cf_ = default_cf_ = nullptr;
  rocksdb::Status closed = db_->Close();
  db_.reset();
  if (!flushed.ok()) return FromRocks(flushed, "flushing at close");
  if (!synced.ok()) return FromRocks(synced, "syncing the WAL at close");
  if (!closed.ok()) return FromRocks(closed, "closing RocksDB");
  return absl::OkStatus();
}

std::shared_ptr<RocksDbBackend::Tenant> RocksDbBackend::FindTenant(
    absl::string_view name) {
  sync::MutexLock lock(&tenants_mu_);
  auto it = tenants_.find(name);
  return it == tenants_.end() ? nullptr : it->second;
}

sync::Mutex& RocksDbBackend::StripeFor(absl::string_view tenant,
                                       absl::string_view key) {
  const size_t h = absl::Hash<absl::string_view>()(tenant) * 31 +
                   absl::Hash<absl::string_view>()(key);
  return stripes_[h % stripes_.size()];
}

absl::Status RocksDbBackend::Update(absl::string_view tenant,
                                    absl::string_view key,
                                    const CallOptions& options, UpdateFn fn) {
  std::shared_ptr<Tenant> t = FindTenant(tenant);
  if (t == nullptr) return UnknownTenantError(tenant);

  sync::MutexLock lock(&StripeFor(tenant, key));
  rocksdb::PinnableSlice raw;
  rocksdb::Status s =
      db_->Get(RecordReadOptions(options), t->handle, ToSlice(key), &raw);
  std::optional<Record> record;
  if (s.ok()) {
    absl::StatusOr<Record> decoded = DecodeRecord(key, ToView(raw));
    if (!decoded.ok()) return decoded.status();
    record = std::move(*decoded);
  } else if (!s.IsNotFound()) {
    return FromRecordIo(s, "reading a record");
  }
  const bool existed = record.has_value();

  absl::StatusOr<WriteAction> action = fn(record);
  if (!action.ok()) return action.status();
  switch (*action) {
    case WriteAction::kNone:
      return absl::OkStatus();
    case WriteAction::kPut:
      s = db_->Put(RecordWriteOptions(options), t->handle, ToSlice(key),
                   EncodeRecord(*record));
      break;
    case WriteAction::kDelete:
      if (!existed) return absl::OkStatus();
      s = db_->Delete(RecordWriteOptions(options), t->handle, ToSlice(key));
      break;
  }
  return s.ok() ? absl::OkStatus() : FromRecordIo(s, "writing a record");
}

absl::StatusOr<std::optional<Record>> RocksDbBackend::Get(
    absl::string_view tenant, absl::string_view key,
    const CallOptions& options) {
  std::shared_ptr<Tenant> t = FindTenant(tenant);
  if (t == nullptr) return UnknownTenantError(tenant);
  rocksdb::PinnableSlice raw;
  rocksdb::Status s =
      db_->Get(RecordReadOptions(options), t->handle, ToSlice(key), &raw);
  if (s.IsNotFound()) return std::optional<Record>();
  if (!s.ok()) return FromRecordIo(s, "reading a record");
  absl::StatusOr<Record> decoded = DecodeRecord(key, ToView(raw));
  if (!decoded.ok()) return decoded.status();
  return std::optional<Record>(std::move(*decoded));
}

absl::Status RocksDbBackend::Scan(absl::string_view tenant,
                                  absl::string_view prefix,
                                  absl::string_view start, ScanFn fn) {
  std::shared_ptr<Tenant> t = FindTenant(tenant);
  if (t == nullptr) return UnknownTenantError(tenant);
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), t->handle));
  for (it->Seek(ToSlice(start));
       it->Valid() && it->key().starts_with(ToSlice(prefix)); it->Next()) {
    absl::StatusOr<Record> decoded =
        DecodeRecord(ToView(it->key()), ToView(it->value()));
    if (!decoded.ok()) return decoded.status();
    if (!fn(std::move(*decoded))) return absl::OkStatus();
  }
  return it->status().ok() ? absl::OkStatus()
                           : FromRocks(it->status(), "scanning records");
}

void RocksDbBackend::WhenDurable(
    absl::AnyInvocable<void(absl::Status) &&> done) {
  // Without sync, every write is in the OS's hands when Update returns.
  if (syncer_ == nullptr) return std::move(done)(absl::OkStatus());
  syncer_->WhenSynced(std::move(done));
}

absl::StatusOr<uint64_t> RocksDbBackend::NextFencingToken(
    const CallOptions& options) {
  return tokens_->Next(options);
}

absl::StatusOr<TenantInfo> RocksDbBackend::CreateTenant(
    absl::string_view name, const CallOptions& options) {
  if (!options.may_wait_for_io) return WouldBlockError();  // writes, syncs
  sync::MutexLock admin(&tenant_admin_mu_);
  {
    sync::MutexLock lock(&tenants_mu_);
    if (tenants_.count(name) > 0) {
      return absl::AlreadyExistsError(
          absl::StrCat("tenant \"", name, "\" already exists"));
    }
    if (tenants_.size() >= options_.max_tenants) {
      return TenantCapError(name, options_.max_tenants);
    }
  }
  rocksdb::ColumnFamilyHandle* handle = nullptr;
  rocksdb::Status s = db_->CreateColumnFamily(
      TenantCfOptions(), TenantRegistry::ColumnFamilyName(name), &handle);
  if (!s.ok()) {
    return FromRocks(s, absl::StrCat("creating tenant \"", name, "\""));
  }
  TenantInfo info{std::string(name), options_.clock->NowMillis()};
  absl::Status registered = registry_->Register(name, info.created_ms);
  {
    // Served even if registering failed: the column family exists, and the
    // next start registers it.
    sync::MutexLock lock(&tenants_mu_);
    tenants_.emplace(
        std::string(name),
        std::make_shared<Tenant>(db_.get(), handle, info.created_ms));
  }
  if (!registered.ok()) return registered;
  return info;
}

absl::Status RocksDbBackend::DropTenant(absl::string_view name,
                                        const CallOptions& options) {
  if (!options.may_wait_for_io) return WouldBlockError();
  sync::MutexLock admin(&tenant_admin_mu_);
  std::shared_ptr<Tenant> tenant;
  {
    sync::MutexLock lock(&tenants_mu_);
    auto it = tenants_.find(name);
    if (it == tenants_.end()) return UnknownTenantError(name);
    tenant = std::move(it->second);
    tenants_.erase(it);
  }
  // Calls still holding `tenant` finish against the dropped column family;
  // its handle goes with the last of them.
  rocksdb::Status s = db_->DropColumnFamily(tenant->handle);
  if (!s.ok()) {
    return FromRocks(s, absl::StrCat("dropping tenant \"", name, "\""));
  }
  return registry_->Unregister(name);
}

std::vector<TenantInfo> RocksDbBackend::ListTenants() {
  sync::MutexLock lock(&tenants_mu_);
  std::vector<TenantInfo> out;
  out.reserve(tenants_.size());
  for (const auto& [name, tenant] : tenants_) {
    out.push_back({name, tenant->created_ms});
  }
  return out;
}

absl::StatusOr<BackendStats> RocksDbBackend::Stats() {
  // The handles stay valid while `held` keeps their tenants.
  std::vector<std::shared_ptr<Tenant>> held;
  std::vector<std::pair<std::string, rocksdb::ColumnFamilyHandle*>> tenants;
  {
    sync::MutexLock lock(&tenants_mu_);
    for (const auto& [name, tenant] : tenants_) {
      held.push_back(tenant);
      tenants.emplace_back(name, tenant->handle);
    }
  }
  return CollectEngineStats(
      {
          .db = db_.get(),
          .block_cache = block_cache_.get(),
          .statistics = statistics_.get(),
          .filter = filter_factory_.get(),
          .max_tenants = options_.max_tenants,
      },
      tenants);
}

rocksdb::ColumnFamilyHandle* RocksDbBackend::TenantHandleForTesting(
    absl::string_view name) {
  std::shared_ptr<Tenant> t = FindTenant(name);
  return t ? t->handle : nullptr;
}

uint64_t RocksDbBackend::TableBytes(const Tenant& tenant) {
  uint64_t bytes = 0;
  db_->GetIntProperty(tenant.handle, "rocksdb.total-sst-files-size", &bytes);
  return bytes;
}

absl::StatusOr<CompactionResult> RocksDbBackend::Compact(
    absl::string_view tenant) {
  std::vector<std::shared_ptr<Tenant>> targets;
  if (tenant.empty()) {
    sync::MutexLock lock(&tenants_mu_);
    for (const auto& [name, t] : tenants_) targets.push_back(t);
  } else if (std::shared_ptr<Tenant> t = FindTenant(tenant)) {
    targets.push_back(std::move(t));
  } else {
    return UnknownTenantError(tenant);
  }
  CompactionResult result;
  // Counts background compactions running meanwhile too; close enough for
  // an operator, and never less than what this call dropped.
  const uint64_t dropped_before = filter_factory_->dropped();
  rocksdb::CompactRangeOptions compact;
  // Also rewrite the last level, where the oldest (most likely expired)
  // records are; without kForce a single-level tenant is left as it is.
  compact.bottommost_level_compaction =
      rocksdb::BottommostLevelCompaction::kForce;
  compact.exclusive_manual_compaction = false;
  for (const std::shared_ptr<Tenant>& t : targets) {
    result.disk_bytes_before += TableBytes(*t);
    // Records still in the memtable are in no table file yet; the flush
    // drops the expired ones among them too.
    rocksdb::Status s = db_->Flush(rocksdb::FlushOptions(), t->handle);
    if (s.ok()) s = db_->CompactRange(compact, t->handle, nullptr, nullptr);
    if (!s.ok()) return FromRocks(s, "compacting a tenant");
    result.disk_bytes_after += TableBytes(*t);
    ++result.tenants;
  }
  result.expired_records_dropped = filter_factory_->dropped() - dropped_before;
  return result;
}

absl::StatusOr<uint64_t> RocksDbBackend::Checkpoint(const std::string& dir) {
  std::error_code ec;
  if (dir.empty() || !std::filesystem::path(dir).is_absolute()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "checkpoint directory \"", dir, "\" must be an absolute path"));
  }
  if (std::filesystem::exists(dir, ec)) {
    return absl::AlreadyExistsError(
        absl::StrCat("checkpoint directory \"", dir,
                     "\" already exists; name a new one (it is created)"));
  }
  // RocksDB creates the directory itself, but not its parents.
  std::filesystem::create_directories(std::filesystem::path(dir).parent_path(),
                                      ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create the parent of checkpoint directory \"", dir,
                     "\": ", ec.message()));
  }
  rocksdb::Checkpoint* raw = nullptr;
  rocksdb::Status s = rocksdb::Checkpoint::Create(db_.get(), &raw);
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  // log_size_for_flush 0: memtables are flushed first, so the copy needs no
  // WAL replay and holds every acknowledged write.
  if (s.ok()) s = checkpoint->CreateCheckpoint(dir, /*log_size_for_flush=*/0);
  if (!s.ok()) {
    return FromRocks(s, absl::StrCat("writing checkpoint \"", dir, "\""));
  }
  uint64_t bytes = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec)) bytes += entry.file_size(ec);
  }
  return bytes;
}

}  // namespace idemkey::store
