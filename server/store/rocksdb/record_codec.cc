#include "server/store/rocksdb/record_codec.h"

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "idemkey/storage/v1/record_body.pb.h"
#include "server/util/coding.h"

namespace idemkey::store {

std::string EncodeRecord(const Record& record) {
  storage::v1::RecordBody body;
  body.set_fingerprint(record.fingerprint);
  body.set_fencing_token(record.fencing_token);
  body.set_attempt_id(record.attempt_id);
  body.set_lease_expires_ms(record.lease_expires_ms);
  body.set_created_ms(record.created_ms);
  body.set_ttl_ms(record.ttl_ms);
  body.set_completed_ms(record.completed_ms);
  if (record.state == RecordState::kCompleted) {
    *body.mutable_response() = record.response;
  }

  std::string out(kRecordHeaderSize, '\0');
  out[0] = static_cast<char>(kRecordFormatVersion);
  out[1] = static_cast<char>(record.state);
  util::PutFixed64(&out[2], static_cast<uint64_t>(record.expires_ms));
  body.AppendToString(&out);
  return out;
}

std::optional<RecordHeader> DecodeRecordHeader(absl::string_view value) {
  if (value.size() < kRecordHeaderSize) return std::nullopt;
  const auto version = static_cast<uint8_t>(value[0]);
  const auto state = static_cast<uint8_t>(value[1]);
  if (version != kRecordFormatVersion) return std::nullopt;
  if (state != static_cast<uint8_t>(RecordState::kInProgress) &&
      state != static_cast<uint8_t>(RecordState::kCompleted)) {
    return std::nullopt;
  }
  return RecordHeader{version, static_cast<RecordState>(state),
                      static_cast<int64_t>(util::GetFixed64(value.data() + 2))};
}

absl::StatusOr<Record> DecodeRecord(absl::string_view key,
                                    absl::string_view value) {
  std::optional<RecordHeader> header = DecodeRecordHeader(value);
  storage::v1::RecordBody body;
  if (!header || !body.ParseFromArray(
                     value.data() + kRecordHeaderSize,
                     static_cast<int>(value.size() - kRecordHeaderSize))) {
    return absl::DataLossError(absl::StrCat(
        "stored record for key \"", key,
        "\" is corrupt or of an unknown format (", value.size(), " bytes)"));
  }
  Record r;
  r.key = std::string(key);
  r.state = header->state;
  r.expires_ms = header->expires_ms;
  r.fingerprint = std::move(*body.mutable_fingerprint());
  r.fencing_token = body.fencing_token();
  r.attempt_id = std::move(*body.mutable_attempt_id());
  r.lease_expires_ms = body.lease_expires_ms();
  r.created_ms = body.created_ms();
  r.ttl_ms = body.ttl_ms();
  r.completed_ms = body.completed_ms();
  if (body.has_response()) r.response.Swap(body.mutable_response());
  return r;
}

}  // namespace idemkey::store
