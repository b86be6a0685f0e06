// engine_stats.h — RocksDB's figures as BackendStats (idemctl stats,
// /metrics): per-tenant estimates and sizes, WAL and block-cache usage,
// compaction debt, write stalls.
//
//   BackendStats stats = CollectEngineStats(sources, tenants);
//
// Reads properties only: cheap, no I/O. Thread-safe as RocksDB's property
// calls are.

#ifndef IDEMKEY_SERVER_STORE_ROCKSDB_ENGINE_STATS_H_
#define IDEMKEY_SERVER_STORE_ROCKSDB_ENGINE_STATS_H_

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/statistics.h"
#include "server/store/backend.h"
#include "server/store/rocksdb/ttl_compaction_filter.h"

namespace idemkey::store {

// Where the figures come from; none is owned. `statistics` may be null.
struct EngineStatsSources {
  rocksdb::DB* db = nullptr;
  const rocksdb::Cache* block_cache = nullptr;
  const rocksdb::Statistics* statistics = nullptr;
  const TtlCompactionFilterFactory* filter = nullptr;
  size_t max_tenants = 0;
};

// `tenants`: name and column family, in name order.
BackendStats CollectEngineStats(
    const EngineStatsSources& sources,
    const std::vector<std::pair<std::string, rocksdb::ColumnFamilyHandle*>>&
        tenants);

}  // namespace idemkey::store

#endif  // IDEMKEY_SERVER_STORE_ROCKSDB_ENGINE_STATS_H_
