#include "server/store/rocksdb/fencing_tokens.h"

#include <algorithm>
#include <string>

#include "server/store/rocksdb/status.h"
#include "server/util/coding.h"

namespace idemkey::store {
namespace {

constexpr char kWatermarkKey[] = "fencing_token_watermark";

}  // namespace

absl::StatusOr<std::unique_ptr<FencingTokens>> FencingTokens::Load(
    rocksdb::DB* db, rocksdb::ColumnFamilyHandle* system_cf, const Clock* clock,
    uint64_t block) {
  std::unique_ptr<FencingTokens> tokens(
      new FencingTokens(db, system_cf, block));
  std::string stored;
  rocksdb::Status s =
      db->Get(rocksdb::ReadOptions(), system_cf, kWatermarkKey, &stored);
  uint64_t watermark = 0;
  if (s.ok() && stored.size() == 8) {
    watermark = util::GetFixed64(stored.data());
  } else if (!s.ok() && !s.IsNotFound()) {
    return FromRocks(s, "reading the fencing token watermark");
  }
  sync::MutexLock lock(&tokens->mu_);
  tokens->watermark_ = watermark;
  tokens->last_ = std::max<uint64_t>(
      watermark, static_cast<uint64_t>(clock->NowMillis()) * 1000);
  return tokens;
}

absl::StatusOr<uint64_t> FencingTokens::Next(const CallOptions& options) {
  sync::MutexLock lock(&mu_);
  if (last_ + 1 >= watermark_) {
    if (!options.may_wait_for_io) return WouldBlockError();  // a synced write
    // Stored before any token below it is handed out, so a restart never
    // hands one out again, whatever --sync says.
    const uint64_t watermark = last_ + 1 + block_;
    rocksdb::WriteOptions durable;
    durable.sync = true;
    rocksdb::Status s = db_->Put(durable, system_cf_, kWatermarkKey,
                                 util::EncodeFixed64(watermark));
    if (!s.ok()) return FromRocks(s, "persisting the fencing token watermark");
    watermark_ = watermark;
  }
  return ++last_;
}

uint64_t FencingTokens::watermark() const {
  sync::MutexLock lock(&mu_);
  return watermark_;
}

}  // namespace idemkey::store
