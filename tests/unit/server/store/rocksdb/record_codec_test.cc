#include "server/store/rocksdb/record_codec.h"

#include "gtest/gtest.h"

namespace idemkey::store {
namespace {

Record CompletedRecord() {
  Record r;
  r.key = "k";
  r.state = RecordState::kCompleted;
  r.fingerprint = std::string(32, '\xab');
  r.fencing_token = 1234567890123ULL;
  r.attempt_id = "attempt-1";
  r.created_ms = 1'700'000'000'000;
  r.completed_ms = 1'700'000'000'500;
  r.ttl_ms = 86'400'000;
  r.expires_ms = r.completed_ms + r.ttl_ms;
  r.response.set_status_code(201);
  auto* h = r.response.add_headers();
  h->set_name("Set-Cookie");
  h->set_value("a=1");
  h = r.response.add_headers();
  h->set_name("Set-Cookie");
  h->set_value(std::string("\0\xff", 2));
  r.response.set_body(std::string("body\0with\0nuls", 14));
  return r;
}

TEST(RecordCodecTest, CompletedRecordRoundTrips) {
  const Record in = CompletedRecord();
  absl::StatusOr<Record> out = DecodeRecord("k", EncodeRecord(in));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->key, "k");
  EXPECT_EQ(out->state, RecordState::kCompleted);
  EXPECT_EQ(out->fingerprint, in.fingerprint);
  EXPECT_EQ(out->fencing_token, in.fencing_token);
  EXPECT_EQ(out->attempt_id, in.attempt_id);
  EXPECT_EQ(out->created_ms, in.created_ms);
  EXPECT_EQ(out->completed_ms, in.completed_ms);
  EXPECT_EQ(out->ttl_ms, in.ttl_ms);
  EXPECT_EQ(out->expires_ms, in.expires_ms);
  EXPECT_EQ(out->response.SerializeAsString(), in.response.SerializeAsString());
}

TEST(RecordCodecTest, InProgressRecordDropsAnyResponse) {
  Record in = CompletedRecord();
  in.state = RecordState::kInProgress;
  in.lease_expires_ms = 1'700'000'030'000;
  absl::StatusOr<Record> out = DecodeRecord("k", EncodeRecord(in));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->state, RecordState::kInProgress);
  EXPECT_EQ(out->lease_expires_ms, in.lease_expires_ms);
  EXPECT_EQ(out->response.ByteSizeLong(), 0u);
}

TEST(RecordCodecTest, HeaderIsReadableWithoutTheBody) {
  const Record in = CompletedRecord();
  const std::string value = EncodeRecord(in);
  std::optional<RecordHeader> h =
      DecodeRecordHeader(absl::string_view(value).substr(0, kRecordHeaderSize));
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->format_version, kRecordFormatVersion);
  EXPECT_EQ(h->state, RecordState::kCompleted);
  EXPECT_EQ(h->expires_ms, in.expires_ms);
}

TEST(RecordCodecTest, RejectsShortUnknownAndCorruptValues) {
  std::string value = EncodeRecord(CompletedRecord());
  EXPECT_FALSE(DecodeRecordHeader(value.substr(0, kRecordHeaderSize - 1)));

  std::string other_version = value;
  other_version[0] = 2;
  EXPECT_FALSE(DecodeRecordHeader(other_version));
  EXPECT_EQ(DecodeRecord("k", other_version).status().code(),
            absl::StatusCode::kDataLoss);

  std::string bad_state = value;
  bad_state[1] = 9;
  EXPECT_FALSE(DecodeRecordHeader(bad_state));

  std::string truncated_body = value.substr(0, value.size() - 3);
  absl::StatusOr<Record> r = DecodeRecord("k", truncated_body);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("key \"k\""), absl::string_view::npos);
}

}  // namespace
}  // namespace idemkey::store
