// record_codec.h — the on-disk encoding of a Record.
//
// Layout of a value (little-endian):
//   [0]      format version (kRecordFormatVersion)
//   [1]      RecordState
//   [2..9]   expires_ms, int64
//   [10..]   idemkey.storage.v1.RecordBody (protobuf)
// The fixed header lets the TTL compaction filter decide whether a value has
// expired by reading ten bytes, without parsing the body.
//
//   std::string value = EncodeRecord(record);
//   absl::StatusOr<Record> back = DecodeRecord(key, value);
//   std::optional<RecordHeader> h = DecodeRecordHeader(value);

#ifndef IDEMKEY_SERVER_STORE_ROCKSDB_RECORD_CODEC_H_
#define IDEMKEY_SERVER_STORE_ROCKSDB_RECORD_CODEC_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/store/record.h"

namespace idemkey::store {

inline constexpr uint8_t kRecordFormatVersion = 1;
inline constexpr size_t kRecordHeaderSize = 10;

struct RecordHeader {
  uint8_t format_version;
  RecordState state;
  int64_t expires_ms;
};

std::string EncodeRecord(const Record& record);

// Returns DATA_LOSS when `value` is not a record this version understands.
absl::StatusOr<Record> DecodeRecord(absl::string_view key,
                                    absl::string_view value);

// Reads only the fixed header; nullopt when it is short, of an unknown format
// version or state.
std::optional<RecordHeader> DecodeRecordHeader(absl::string_view value);

}  // namespace idemkey::store

#endif  // IDEMKEY_SERVER_STORE_ROCKSDB_RECORD_CODEC_H_
