#include "server/metrics/store_metrics.h"

#include <algorithm>

namespace idemkey::metrics {

void WriteStoreMetrics(const store::BackendStats& stats, TextWriter* out) {
  const size_t listed = std::min(stats.tenants.size(), kMaxTenantSeries);

  out->Single("idemkey_tenants", "gauge", "Tenants that exist.",
              uint64_t{stats.tenants.size()});
  out->Single("idemkey_max_tenants", "gauge",
              "Tenants the server accepts (--max_tenants).", stats.max_tenants);

  out->Family("idemkey_tenant_records", "gauge",
              "Estimated records of a tenant, live and expired-not-yet-"
              "compacted (RocksDB estimate-num-keys). At most 1000 tenants, "
              "the first by name.");
  for (size_t i = 0; i < listed; ++i) {
    out->Sample("idemkey_tenant_records", {{"tenant", stats.tenants[i].name}},
                stats.tenants[i].estimated_records);
  }
  out->Family("idemkey_tenant_disk_bytes", "gauge",
              "Bytes of a tenant's SST files on disk (memtables and WAL not "
              "included). At most 1000 tenants, the first by name.");
  for (size_t i = 0; i < listed; ++i) {
    out->Sample("idemkey_tenant_disk_bytes",
                {{"tenant", stats.tenants[i].name}},
                stats.tenants[i].disk_bytes);
  }

  uint64_t memtables = 0;
  for (const store::TenantStats& t : stats.tenants)
    memtables += t.memtable_bytes;
  out->Single("idemkey_rocksdb_memtable_bytes", "gauge",
              "Bytes in the memtables of all tenants.", memtables);

  out->Single("idemkey_rocksdb_compaction_pending", "gauge",
              "1 if any tenant has a compaction pending, else 0.",
              uint64_t{stats.compaction_pending ? 1u : 0u});
  out->Single("idemkey_rocksdb_pending_compaction_bytes", "gauge",
              "Estimated bytes compaction must rewrite to settle, all "
              "tenants.",
              stats.pending_compaction_bytes);
  out->Single("idemkey_rocksdb_wal_bytes", "gauge",
              "Bytes of live write-ahead log files.", stats.wal_bytes);

  out->Single("idemkey_rocksdb_block_cache_usage_bytes", "gauge",
              "Bytes in the shared block cache, memtables included.",
              stats.block_cache_usage_bytes);
  out->Single("idemkey_rocksdb_block_cache_capacity_bytes", "gauge",
              "Capacity of the shared block cache (--cache_mb).",
              stats.block_cache_capacity_bytes);
  out->Single("idemkey_rocksdb_block_cache_hits_total", "counter",
              "Block reads served by the block cache.", stats.block_cache_hits);
  out->Single("idemkey_rocksdb_block_cache_misses_total", "counter",
              "Block reads that missed the block cache and read a file.",
              stats.block_cache_misses);

  out->Family("idemkey_rocksdb_write_stalls_total", "counter",
              "Times RocksDB started delaying (kind=\"slowdown\") or stopping "
              "(kind=\"stop\") writes because flushes or compactions fell "
              "behind, summed over tenants.");
  out->Sample("idemkey_rocksdb_write_stalls_total", {{"kind", "slowdown"}},
              stats.write_slowdowns);
  out->Sample("idemkey_rocksdb_write_stalls_total", {{"kind", "stop"}},
              stats.write_stops);
  out->Single("idemkey_rocksdb_write_stall_seconds_total", "counter",
              "Time writers spent delayed or stopped by a write stall.",
              static_cast<double>(stats.write_stall_micros) * 1e-6);
  out->Single("idemkey_rocksdb_write_stopped", "gauge",
              "1 while writes are stopped, else 0.",
              uint64_t{stats.write_stopped ? 1u : 0u});
  out->Single("idemkey_rocksdb_delayed_write_rate_bytes", "gauge",
              "Write rate (bytes/s) RocksDB allows while writes are delayed; "
              "0 when they are not.",
              stats.delayed_write_rate);

  out->Single("idemkey_expired_records_dropped_total", "counter",
              "Expired records removed by the TTL compaction filter at flush "
              "or compaction.",
              stats.expired_records_dropped);
}

}  // namespace idemkey::metrics
