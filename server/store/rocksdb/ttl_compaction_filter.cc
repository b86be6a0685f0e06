#include "server/store/rocksdb/ttl_compaction_filter.h"

#include "server/store/rocksdb/record_codec.h"

namespace idemkey::store {
namespace {

// One filter per flush or compaction job, with the time read when the job
// started: records that expire during the job wait for the next one.
class TtlCompactionFilter final : public rocksdb::CompactionFilter {
 public:
  TtlCompactionFilter(int64_t now_ms, std::atomic<uint64_t>* dropped)
      : now_ms_(now_ms), dropped_(dropped) {}

  Decision FilterV2(int /*level*/, const rocksdb::Slice& /*key*/,
                    ValueType value_type, const rocksdb::Slice& existing_value,
                    std::string* /*new_value*/,
                    std::string* /*skip_until*/) const override {
    if (value_type != ValueType::kValue) return Decision::kKeep;
    std::optional<RecordHeader> header = DecodeRecordHeader(
        absl::string_view(existing_value.data(), existing_value.size()));
    if (!header || header->expires_ms > now_ms_) return Decision::kKeep;
    dropped_->fetch_add(1, std::memory_order_relaxed);
    // RocksDB turns a removal above the bottom level into a tombstone, so
    // older versions of the key cannot resurface.
    return Decision::kRemove;
  }

  const char* Name() const override { return "idemkey.TtlCompactionFilter"; }

 private:
  const int64_t now_ms_;
  std::atomic<uint64_t>* const dropped_;
};

}  // namespace

std::unique_ptr<rocksdb::CompactionFilter>
TtlCompactionFilterFactory::CreateCompactionFilter(
    const rocksdb::CompactionFilter::Context& /*context*/) {
  return std::make_unique<TtlCompactionFilter>(clock_->NowMillis(), &dropped_);
}

bool TtlCompactionFilterFactory::ShouldFilterTableFileCreation(
    rocksdb::TableFileCreationReason reason) const {
  return reason == rocksdb::TableFileCreationReason::kFlush ||
         reason == rocksdb::TableFileCreationReason::kCompaction;
}

}  // namespace idemkey::store
