#include "server/store/rocksdb/engine_stats.h"

#include <cstdlib>
#include <map>

namespace idemkey::store {
namespace {

// A number in a map property ("rocksdb.cfstats"), or 0.
uint64_t MapValue(const std::map<std::string, std::string>& map,
                  const std::string& key) {
  auto it = map.find(key);
  if (it == map.end()) return 0;
  return static_cast<uint64_t>(std::strtod(it->second.c_str(), nullptr));
}

}  // namespace

BackendStats CollectEngineStats(
    const EngineStatsSources& sources,
    const std::vector<std::pair<std::string, rocksdb::ColumnFamilyHandle*>>&
        tenants) {
  rocksdb::DB* db = sources.db;
  BackendStats stats;
  stats.max_tenants = sources.max_tenants;
  for (const auto& [name, handle] : tenants) {
    TenantStats ts;
    ts.name = name;
    uint64_t v = 0;
    if (db->GetIntProperty(handle, "rocksdb.estimate-num-keys", &v)) {
      ts.estimated_records = v;
    }
    if (db->GetIntProperty(handle, "rocksdb.total-sst-files-size", &v)) {
      ts.disk_bytes = v;
    }
    if (db->GetIntProperty(handle, "rocksdb.cur-size-all-mem-tables", &v)) {
      ts.memtable_bytes = v;
    }
    if (db->GetIntProperty(handle, "rocksdb.compaction-pending", &v) && v > 0) {
      stats.compaction_pending = true;
    }
    if (db->GetIntProperty(handle, "rocksdb.estimate-pending-compaction-bytes",
                           &v)) {
      stats.pending_compaction_bytes += v;
    }
    std::map<std::string, std::string> cf_stats;
    if (db->GetMapProperty(handle, "rocksdb.cfstats", &cf_stats)) {
      stats.write_slowdowns += MapValue(cf_stats, "io_stalls.total_slowdown");
      stats.write_stops += MapValue(cf_stats, "io_stalls.total_stop");
    }
    stats.tenants.push_back(std::move(ts));
  }
  rocksdb::VectorLogPtr wal_files;
  if (db->GetSortedWalFiles(wal_files).ok()) {
    for (const auto& f : wal_files) stats.wal_bytes += f->SizeFileBytes();
  }
  stats.block_cache_usage_bytes = sources.block_cache->GetUsage();
  stats.block_cache_capacity_bytes = sources.block_cache->GetCapacity();
  stats.expired_records_dropped = sources.filter->dropped();
  if (sources.statistics != nullptr) {
    stats.block_cache_hits =
        sources.statistics->getTickerCount(rocksdb::BLOCK_CACHE_HIT);
    stats.block_cache_misses =
        sources.statistics->getTickerCount(rocksdb::BLOCK_CACHE_MISS);
    stats.write_stall_micros =
        sources.statistics->getTickerCount(rocksdb::STALL_MICROS);
  }
  uint64_t v = 0;
  if (db->GetIntProperty("rocksdb.is-write-stopped", &v)) {
    stats.write_stopped = v != 0;
  }
  if (db->GetIntProperty("rocksdb.actual-delayed-write-rate", &v)) {
    stats.delayed_write_rate = v;
  }
  return stats;
}

}  // namespace idemkey::store
