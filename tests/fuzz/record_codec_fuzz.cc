// libFuzzer target: the on-disk record codec on arbitrary bytes.
//
// DecodeRecordHeader and DecodeRecord never crash; a value DecodeRecord
// accepts has a header DecodeRecordHeader accepts, with the same state and
// expiry; and re-encoding is stable: Encode(Decode(x)) decodes to the same
// record and encodes to the same bytes again.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "server/store/rocksdb/record_codec.h"

namespace {

void Fail(const char* what) {
  std::fprintf(stderr, "record_codec_fuzz: %s\n", what);
  std::abort();
}

bool SameRecord(const idemkey::store::Record& a,
                const idemkey::store::Record& b) {
  return a.key == b.key && a.state == b.state &&
         a.fingerprint == b.fingerprint && a.fencing_token == b.fencing_token &&
         a.attempt_id == b.attempt_id &&
         a.lease_expires_ms == b.lease_expires_ms &&
         a.created_ms == b.created_ms && a.expires_ms == b.expires_ms &&
         a.ttl_ms == b.ttl_ms && a.completed_ms == b.completed_ms &&
         a.response.SerializeAsString() == b.response.SerializeAsString();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace idemkey::store;
  const absl::string_view value(reinterpret_cast<const char*>(data), size);
  const std::optional<RecordHeader> header = DecodeRecordHeader(value);
  if (header) {
    if (size < kRecordHeaderSize) Fail("header decoded from a short value");
    if (header->format_version != kRecordFormatVersion) Fail("bad version");
    if (header->state != RecordState::kInProgress &&
        header->state != RecordState::kCompleted) {
      Fail("header with an unknown state");
    }
  }
  absl::StatusOr<Record> record = DecodeRecord("k", value);
  if (!record.ok()) {
    if (record.status().code() != absl::StatusCode::kDataLoss) {
      Fail("decode error other than DATA_LOSS");
    }
    return 0;
  }
  if (!header) Fail("record decoded but its header did not");
  if (record->state != header->state ||
      record->expires_ms != header->expires_ms) {
    Fail("record and header disagree");
  }
  if (record->key != "k") Fail("key not filled in");

  const std::string once = EncodeRecord(*record);
  absl::StatusOr<Record> again = DecodeRecord("k", once);
  if (!again.ok()) Fail("re-encoded record does not decode");
  const std::optional<RecordHeader> h2 = DecodeRecordHeader(once);
  if (!h2 || h2->state != record->state ||
      h2->expires_ms != record->expires_ms) {
    Fail("re-encoded header differs");
  }
  // An in-progress record drops any stored response when encoded; otherwise
  // the decoded record is unchanged.
  Record expected = *record;
  if (expected.state != RecordState::kCompleted) expected.response.Clear();
  if (!SameRecord(*again, expected)) Fail("round trip changed the record");
  if (EncodeRecord(*again) != once) Fail("encoding is not stable");
  return 0;
}
