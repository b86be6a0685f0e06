// fencing_tokens.h — RocksDbBackend's fencing tokens: unique, growing, and
// never handed out twice, across restarts, crashes and restored backups.
//
// Invariant: every token handed out is below the watermark stored (synced)
// in the system column family. Tokens are handed out from memory; when the
// next one would reach the watermark, a watermark `block` higher is synced
// first. After a restart counting resumes at max(watermark, the wall clock
// in microseconds): the first part covers a crash (tokens between the last
// one handed out and the watermark are skipped, never reused), the second a
// store restored from a backup, whose watermark is older than tokens handed
// out after the backup was taken (tokens are issued far slower than one per
// microsecond, so the clock runs ahead of every earlier token).
//
//   absl::StatusOr<std::unique_ptr<FencingTokens>> tokens =
//       FencingTokens::Load(db, system_cf, clock);
//   absl::StatusOr<uint64_t> t = (*tokens)->Next(CallOptions());
//
// Thread-safe.

#ifndef IDEMKEY_SERVER_STORE_ROCKSDB_FENCING_TOKENS_H_
#define IDEMKEY_SERVER_STORE_ROCKSDB_FENCING_TOKENS_H_

#include <cstdint>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "idemkey/sync/mutex.h"
#include "rocksdb/db.h"
#include "server/store/call_options.h"
#include "server/store/clock.h"

namespace idemkey::store {

class FencingTokens {
 public:
  // Tokens handed out per synced watermark write.
  static constexpr uint64_t kDefaultBlock = 1 << 16;

  // Reads the watermark from `system_cf` of `db`. Neither is owned; both
  // must outlive the object.
  static absl::StatusOr<std::unique_ptr<FencingTokens>> Load(
      rocksdb::DB* db, rocksdb::ColumnFamilyHandle* system_cf,
      const Clock* clock, uint64_t block = kDefaultBlock);

  // A token larger than every one handed out before. With may_wait_for_io
  // false, WouldBlockError when the watermark must be synced first.
  absl::StatusOr<uint64_t> Next(const CallOptions& options);

  // The stored watermark; for tests.
  uint64_t watermark() const;

 private:
  FencingTokens(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* system_cf,
                uint64_t block)
      : db_(db), system_cf_(system_cf), block_(block) {}

  rocksdb::DB* const db_;
  rocksdb::ColumnFamilyHandle* const system_cf_;
  const uint64_t block_;
  mutable sync::Mutex mu_;
  uint64_t last_ ABSL_GUARDED_BY(mu_) = 0;       // the last token handed out
  uint64_t watermark_ ABSL_GUARDED_BY(mu_) = 0;  // stored; last_ < it
};

}  // namespace idemkey::store

#endif  // IDEMKEY_SERVER_STORE_ROCKSDB_FENCING_TOKENS_H_
