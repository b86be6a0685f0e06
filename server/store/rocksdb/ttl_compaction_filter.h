// ttl_compaction_filter.h — drops expired records when RocksDB rewrites files.
//
// Reads see an expired record as absent at once (KeyStore checks expiry on
// every read); this filter reclaims its space later, at flush and at every
// compaction, deciding from the record's fixed header alone
// (record_codec.h). Values it cannot parse are kept, never dropped.
//
//   auto factory = std::make_shared<TtlCompactionFilterFactory>(clock);
//   cf_options.compaction_filter_factory = factory;
//   ... factory->dropped() counts records removed so far.

#ifndef IDEMKEY_SERVER_STORE_ROCKSDB_TTL_COMPACTION_FILTER_H_
#define IDEMKEY_SERVER_STORE_ROCKSDB_TTL_COMPACTION_FILTER_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include "rocksdb/compaction_filter.h"
#include "server/store/clock.h"

namespace idemkey::store {

class TtlCompactionFilterFactory final
    : public rocksdb::CompactionFilterFactory {
 public:
  // `clock` is not owned and must outlive every DB using the factory.
  explicit TtlCompactionFilterFactory(const Clock* clock) : clock_(clock) {}

  std::unique_ptr<rocksdb::CompactionFilter> CreateCompactionFilter(
      const rocksdb::CompactionFilter::Context& context) override;
  // Flushes filter too, so records that expire while still in a memtable
  // never reach disk.
  bool ShouldFilterTableFileCreation(
      rocksdb::TableFileCreationReason reason) const override;
  const char* Name() const override {
    return "idemkey.TtlCompactionFilterFactory";
  }

  // Records dropped since the factory was made.
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  const Clock* const clock_;
  std::atomic<uint64_t> dropped_{0};
};

}  // namespace idemkey::store

#endif  // IDEMKEY_SERVER_STORE_ROCKSDB_TTL_COMPACTION_FILTER_H_
