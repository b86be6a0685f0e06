// status.h — RocksDB's statuses as the store's absl::Status codes.
//
//   rocksdb::Status s = db->Put(write, cf, key, value);
//   if (!s.ok()) return FromRocks(s, "writing a record");
//   // a full disk: RESOURCE_EXHAUSTED "writing a record: the data
//   //   directory's disk is full; free space there (...)"
//
// The codes say what a caller can do: UNAVAILABLE is worth a retry,
// RESOURCE_EXHAUSTED (full disk) is not until someone frees space, DATA_LOSS
// is corruption.

#ifndef IDEMKEY_SERVER_STORE_ROCKSDB_STATUS_H_
#define IDEMKEY_SERVER_STORE_ROCKSDB_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "rocksdb/slice.h"
#include "rocksdb/status.h"

namespace idemkey::store {

// `what` says what was being done ("reading a record").
absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what);

// For calls made with CallOptions::may_wait_for_io false (read_tier
// kBlockCacheTier, no_slowdown): Incomplete means the call would have had to
// wait for the disk, and becomes WouldBlockError().
absl::Status FromRecordIo(const rocksdb::Status& s, absl::string_view what);

// An empty view may have a null data pointer, which RocksDB passes to
// memcmp: such views become the empty Slice.
inline rocksdb::Slice ToSlice(absl::string_view s) {
  return s.empty() ? rocksdb::Slice() : rocksdb::Slice(s.data(), s.size());
}
inline absl::string_view ToView(const rocksdb::Slice& s) {
  return absl::string_view(s.data(), s.size());
}

}  // namespace idemkey::store

#endif  // IDEMKEY_SERVER_STORE_ROCKSDB_STATUS_H_
