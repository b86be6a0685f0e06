#include "server/store/rocksdb_backend.h"

#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>
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
#include "server/store/blocking.h"
#include "server/store/record_codec.h"
#include "server/util/coding.h"

namespace idemkey::store {
namespace {

constexpr char kSystemCf[] = "idemkey.system";
constexpr char kTenantCfPrefix[] = "tenant/";
constexpr char kRegistryPrefix[] = "tenant/";
constexpr char kTokenWatermarkKey[] = "fencing_token_watermark";
// Tokens handed out per watermark write: one synced write per this many
// ownership changes.
constexpr uint64_t kTokenBlock = 1 << 16;

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  const std::string msg = absl::StrCat(what, ": ", s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(msg);
  // A full disk is an I/O error too, but not a transient one: no retry helps
  // until someone frees space.
  if (s.IsNoSpace()) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, ": the data directory's disk is full; free space ",
                     "there (", s.ToString(), ")"));
  }
  if (s.IsIOError() || s.IsBusy() || s.IsTimedOut() || s.IsTryAgain()) {
    return absl::UnavailableError(msg);
  }
  return absl::InternalError(msg);
}

// RocksDB's warnings and errors go to idemkeyd's log (stderr), not to a LOG
// file in the data directory: Debian builds librocksdb with assertions on,
// and its file logger aborts the process when it writes after a failed
// write. On a full disk the first refused write would otherwise take
// idemkeyd down (RocksDB logs the error, to the same full disk).
class StderrLogger final : public rocksdb::Logger {
 public:
  StderrLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    char text[1024];
    const int n = std::vsnprintf(text, sizeof text, format, ap);
    const std::string line = absl::StrCat(
        "rocksdb: ",
        absl::string_view(text, std::clamp<size_t>(n, 0, sizeof text - 1)),
        "\n");
    // One write per line keeps concurrent messages whole.
    if (write(STDERR_FILENO, line.data(), line.size()) < 0) {
      // Nowhere left to report it.
    }
  }
};

// A number in a map property ("rocksdb.cfstats"), or 0.
uint64_t MapValue(const std::map<std::string, std::string>& map,
                  const std::string& key) {
  auto it = map.find(key);
  if (it == map.end()) return 0;
  return static_cast<uint64_t>(std::strtod(it->second.c_str(), nullptr));
}

// Record reads: on a thread that must not block, only what is in memory.
rocksdb::ReadOptions RecordReadOptions() {
  rocksdb::ReadOptions read;
  if (!MayBlock()) read.read_tier = rocksdb::kBlockCacheTier;
  return read;
}

// Record writes are never synced here: WhenDurable shares one sync among
// them. On a thread that must not block, a write that would stall fails.
rocksdb::WriteOptions RecordWriteOptions() {
  rocksdb::WriteOptions write;
  write.no_slowdown = !MayBlock();
  return write;
}

// With Record{Read,Write}Options, Incomplete means the call would have had to
// wait for the disk.
absl::Status FromRecordIo(const rocksdb::Status& s, absl::string_view what) {
  if (s.IsIncomplete()) return WouldBlockError();
  return FromRocks(s, what);
}

// An empty view may have a null data pointer, which RocksDB passes to memcmp.
rocksdb::Slice ToSlice(absl::string_view s) {
  return s.empty() ? rocksdb::Slice() : rocksdb::Slice(s.data(), s.size());
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
  db_options.info_log = std::make_shared<StderrLogger>();
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
    } else if (absl::StartsWith(name, kTenantCfPrefix)) {
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
  if (absl::Status reconciled = ReconcileRegistry(handles); !reconciled.ok()) {
    return reconciled;
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

absl::Status RocksDbBackend::ReconcileRegistry(
    const std::vector<rocksdb::ColumnFamilyHandle*>& handles) {
  std::vector<rocksdb::ColumnFamilyHandle*> tenant_handles;
  for (rocksdb::ColumnFamilyHandle* h : handles) {
    if (h->GetName() == rocksdb::kDefaultColumnFamilyName) {
      default_cf_ = h;
    } else if (h->GetName() == kSystemCf) {
      system_cf_ = h;
    } else {
      tenant_handles.push_back(h);
    }
  }

  // The registry says when each tenant was created. A crash between creating
  // a column family and registering it (or dropping it and unregistering it)
  // leaves them out of step: the column families are the truth.
  std::map<std::string, int64_t, std::less<>> registered;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), system_cf_));
  for (it->Seek(kRegistryPrefix);
       it->Valid() && it->key().starts_with(kRegistryPrefix); it->Next()) {
    const rocksdb::Slice name(it->key().data() + strlen(kRegistryPrefix),
                              it->key().size() - strlen(kRegistryPrefix));
    registered[name.ToString()] =
        it->value().size() == 8
            ? static_cast<int64_t>(util::GetFixed64(it->value().data()))
            : 0;
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading tenants");

  rocksdb::WriteOptions durable;
  durable.sync = true;
  std::set<std::string> present;
  for (rocksdb::ColumnFamilyHandle* h : tenant_handles) {
    std::string name = h->GetName().substr(strlen(kTenantCfPrefix));
    auto reg = registered.find(name);
    int64_t created = options_.clock->NowMillis();
    if (reg != registered.end()) {
      created = reg->second;
    } else {
      rocksdb::Status s =
          db_->Put(durable, system_cf_, kRegistryPrefix + name,
                   util::EncodeFixed64(static_cast<uint64_t>(created)));
      if (!s.ok()) return FromRocks(s, "registering tenant");
    }
    present.insert(name);
    tenants_.emplace(name, std::make_shared<Tenant>(db_.get(), h, created));
  }
  for (const auto& [name, created] : registered) {
    if (present.count(name) == 0) {
      rocksdb::Status s =
          db_->Delete(durable, system_cf_, kRegistryPrefix + name);
      if (!s.ok()) return FromRocks(s, "unregistering tenant");
    }
  }

  std::string watermark;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), system_cf_,
                               kTokenWatermarkKey, &watermark);
  if (s.ok() && watermark.size() == 8) {
    token_watermark_ = util::GetFixed64(watermark.data());
  } else if (!s.IsNotFound()) {
    return FromRocks(s, "reading the fencing token watermark");
  }
  // Never below the wall clock in microseconds: a store restored from a
  // backup has an old watermark, and the tokens handed out after that backup
  // must not be handed out again. Tokens are issued far slower than one per
  // microsecond, so the clock runs ahead of any earlier token.
  next_token_ = std::max<uint64_t>(
      token_watermark_,
      static_cast<uint64_t>(options_.clock->NowMillis()) * 1000);
  return absl::OkStatus();
}

RocksDbBackend::~RocksDbBackend() {
  if (db_ == nullptr) return;
  syncer_.reset();
  tenants_.clear();
  if (system_cf_) db_->DestroyColumnFamilyHandle(system_cf_);
  if (default_cf_) db_->DestroyColumnFamilyHandle(default_cf_);
  db_->Close().PermitUncheckedError();
}

absl::Status RocksDbBackend::Close() {
  syncer_.reset();  // answers whoever still waits
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
  std::lock_guard<std::mutex> lock(tenants_mu_);
  auto it = tenants_.find(name);
  return it == tenants_.end() ? nullptr : it->second;
}

std::mutex& RocksDbBackend::StripeFor(absl::string_view tenant,
                                      absl::string_view key) {
  const size_t h = absl::Hash<absl::string_view>()(tenant) * 31 +
                   absl::Hash<absl::string_view>()(key);
  return stripes_[h % stripes_.size()];
}

absl::Status RocksDbBackend::Update(absl::string_view tenant,
                                    absl::string_view key, UpdateFn fn) {
  std::shared_ptr<Tenant> t = FindTenant(tenant);
  if (t == nullptr) return UnknownTenantError(tenant);

  std::lock_guard<std::mutex> lock(StripeFor(tenant, key));
  rocksdb::PinnableSlice raw;
  rocksdb::Status s =
      db_->Get(RecordReadOptions(), t->handle, ToSlice(key), &raw);
  std::optional<Record> record;
  if (s.ok()) {
    absl::StatusOr<Record> decoded =
        DecodeRecord(key, absl::string_view(raw.data(), raw.size()));
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
      s = db_->Put(RecordWriteOptions(), t->handle, ToSlice(key),
                   EncodeRecord(*record));
      break;
    case WriteAction::kDelete:
      if (!existed) return absl::OkStatus();
      s = db_->Delete(RecordWriteOptions(), t->handle, ToSlice(key));
      break;
  }
  return s.ok() ? absl::OkStatus() : FromRecordIo(s, "writing a record");
}

absl::StatusOr<std::optional<Record>> RocksDbBackend::Get(
    absl::string_view tenant, absl::string_view key) {
  std::shared_ptr<Tenant> t = FindTenant(tenant);
  if (t == nullptr) return UnknownTenantError(tenant);
  rocksdb::PinnableSlice raw;
  rocksdb::Status s =
      db_->Get(RecordReadOptions(), t->handle, ToSlice(key), &raw);
  if (s.IsNotFound()) return std::optional<Record>();
  if (!s.ok()) return FromRecordIo(s, "reading a record");
  absl::StatusOr<Record> decoded =
      DecodeRecord(key, absl::string_view(raw.data(), raw.size()));
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
        DecodeRecord(absl::string_view(it->key().data(), it->key().size()),
                     absl::string_view(it->value().data(), it->value().size()));
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

absl::StatusOr<uint64_t> RocksDbBackend::NextFencingToken() {
  std::lock_guard<std::mutex> lock(token_mu_);
  if (next_token_ + 1 > token_watermark_) {
    if (!MayBlock()) return WouldBlockError();  // the write below is synced
    // Persist a higher watermark before handing out tokens below it, so a
    // restart never hands out a token again, whatever --sync says.
    const uint64_t watermark = next_token_ + kTokenBlock;
    rocksdb::WriteOptions durable;
    durable.sync = true;
    rocksdb::Status s = db_->Put(durable, system_cf_, kTokenWatermarkKey,
                                 util::EncodeFixed64(watermark));
    if (!s.ok()) return FromRocks(s, "persisting the fencing token watermark");
    token_watermark_ = watermark;
  }
  return ++next_token_;
}

absl::StatusOr<TenantInfo> RocksDbBackend::CreateTenant(
    absl::string_view name) {
  if (!MayBlock()) return WouldBlockError();  // writes files, syncs
  std::lock_guard<std::mutex> admin(tenant_admin_mu_);
  {
    std::lock_guard<std::mutex> lock(tenants_mu_);
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
      TenantCfOptions(), absl::StrCat(kTenantCfPrefix, name), &handle);
  if (!s.ok())
    return FromRocks(s, absl::StrCat("creating tenant \"", name, "\""));
  TenantInfo info{std::string(name), options_.clock->NowMillis()};
  auto tenant = std::make_shared<Tenant>(db_.get(), handle, info.created_ms);
  rocksdb::WriteOptions durable;
  durable.sync = true;
  s = db_->Put(durable, system_cf_, absl::StrCat(kRegistryPrefix, name),
               util::EncodeFixed64(static_cast<uint64_t>(tenant->created_ms)));
  {
    // Served even if registering failed: the column family exists, and the
    // next start registers it.
    std::lock_guard<std::mutex> lock(tenants_mu_);
    tenants_.emplace(std::string(name), std::move(tenant));
  }
  if (!s.ok()) {
    return FromRocks(s, absl::StrCat("registering tenant \"", name, "\""));
  }
  return info;
}

absl::Status RocksDbBackend::DropTenant(absl::string_view name) {
  if (!MayBlock()) return WouldBlockError();
  std::lock_guard<std::mutex> admin(tenant_admin_mu_);
  std::shared_ptr<Tenant> tenant;
  {
    std::lock_guard<std::mutex> lock(tenants_mu_);
    auto it = tenants_.find(name);
    if (it == tenants_.end()) return UnknownTenantError(name);
    tenant = std::move(it->second);
    tenants_.erase(it);
  }
  // Calls still holding `tenant` finish against the dropped column family;
  // its handle goes with the last of them.
  rocksdb::Status s = db_->DropColumnFamily(tenant->handle);
  if (!s.ok())
    return FromRocks(s, absl::StrCat("dropping tenant \"", name, "\""));
  rocksdb::WriteOptions durable;
  durable.sync = true;
  s = db_->Delete(durable, system_cf_, absl::StrCat(kRegistryPrefix, name));
  return s.ok() ? absl::OkStatus()
                : FromRocks(
                      s, absl::StrCat("unregistering tenant \"", name, "\""));
}

std::vector<TenantInfo> RocksDbBackend::ListTenants() {
  std::lock_guard<std::mutex> lock(tenants_mu_);
  std::vector<TenantInfo> out;
  out.reserve(tenants_.size());
  for (const auto& [name, tenant] : tenants_) {
    out.push_back({name, tenant->created_ms});
  }
  return out;
}

absl::StatusOr<BackendStats> RocksDbBackend::Stats() {
  std::vector<std::pair<std::string, std::shared_ptr<Tenant>>> tenants;
  {
    std::lock_guard<std::mutex> lock(tenants_mu_);
    tenants.assign(tenants_.begin(), tenants_.end());
  }
  BackendStats stats;
  stats.max_tenants = options_.max_tenants;
  for (const auto& [name, tenant] : tenants) {
    TenantStats ts;
    ts.name = name;
    uint64_t v = 0;
    if (db_->GetIntProperty(tenant->handle, "rocksdb.estimate-num-keys", &v)) {
      ts.estimated_records = v;
    }
    if (db_->GetIntProperty(tenant->handle, "rocksdb.total-sst-files-size",
                            &v)) {
      ts.disk_bytes = v;
    }
    if (db_->GetIntProperty(tenant->handle, "rocksdb.cur-size-all-mem-tables",
                            &v)) {
      ts.memtable_bytes = v;
    }
    if (db_->GetIntProperty(tenant->handle, "rocksdb.compaction-pending", &v) &&
        v > 0) {
      stats.compaction_pending = true;
    }
    if (db_->GetIntProperty(tenant->handle,
                            "rocksdb.estimate-pending-compaction-bytes", &v)) {
      stats.pending_compaction_bytes += v;
    }
    std::map<std::string, std::string> cf_stats;
    if (db_->GetMapProperty(tenant->handle, "rocksdb.cfstats", &cf_stats)) {
      stats.write_slowdowns += MapValue(cf_stats, "io_stalls.total_slowdown");
      stats.write_stops += MapValue(cf_stats, "io_stalls.total_stop");
    }
    stats.tenants.push_back(std::move(ts));
  }
  rocksdb::VectorLogPtr wal_files;
  if (db_->GetSortedWalFiles(wal_files).ok()) {
    for (const auto& f : wal_files) stats.wal_bytes += f->SizeFileBytes();
  }
  stats.block_cache_usage_bytes = block_cache_->GetUsage();
  stats.block_cache_capacity_bytes = block_cache_->GetCapacity();
  stats.expired_records_dropped = filter_factory_->dropped();
  if (statistics_ != nullptr) {
    stats.block_cache_hits =
        statistics_->getTickerCount(rocksdb::BLOCK_CACHE_HIT);
    stats.block_cache_misses =
        statistics_->getTickerCount(rocksdb::BLOCK_CACHE_MISS);
    stats.write_stall_micros =
        statistics_->getTickerCount(rocksdb::STALL_MICROS);
  }
  uint64_t v = 0;
  if (db_->GetIntProperty("rocksdb.is-write-stopped", &v)) {
    stats.write_stopped = v != 0;
  }
  if (db_->GetIntProperty("rocksdb.actual-delayed-write-rate", &v)) {
    stats.delayed_write_rate = v;
  }
  return stats;
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
    std::lock_guard<std::mutex> lock(tenants_mu_);
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
