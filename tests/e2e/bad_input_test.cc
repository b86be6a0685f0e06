// Every limit of SPEC.md: the precise status, a message a person can act on,
// and a store left exactly as it was.

#include <string>

#include "gtest/gtest.h"
#include "tests/support/server_test.h"

namespace idemkey::testing {
namespace {

using grpc::StatusCode;

class BadInputTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    // Something in the store for every check to leave unchanged.
    auto r = client().Reserve(ReserveReq("acme", "existing", "body", "a1"));
    ASSERT_TRUE(client()
                    .Complete("acme", "existing", r.reply.fencing_token(),
                              SampleResponse("x"))
                    .status.ok());
    owner_ =
        client().Reserve(ReserveReq("acme", "pending", "body", "a1")).reply;
    before_ = Snapshot();
  }

  void TearDown() override {
    EXPECT_EQ(Snapshot(), before_) << "a refused call changed the store";
    ServerTest::TearDown();
  }

  // Every tenant and every record with its response, serialized.
  std::string Snapshot() {
    auto tenants = client().ListTenants();
    EXPECT_TRUE(tenants.status.ok());
    std::string out = tenants.reply.SerializeAsString();
    for (const auto& t : tenants.reply.tenants()) {
      idemkey::v1::ListRecordsRequest list;
      list.set_tenant(t.name());
      list.set_page_size(1000);
      list.set_include_responses(true);
      out += client().ListRecords(list).reply.SerializeAsString();
    }
    return out;
  }

  // Asserts a Reserve of (tenant, key) with `mutate` applied fails with
  // `code` and a message containing `text`.
  template <typename Mutate>
  void ExpectReserveRefused(Mutate mutate, StatusCode code,
                            const std::string& text) {
    auto req = ReserveReq("acme", "new-key", "body", "a9");
    mutate(req);
    auto r = client().Reserve(req);
    EXPECT_EQ(r.status.error_code(), code) << r.status.error_message();
    EXPECT_NE(r.status.error_message().find(text), std::string::npos)
        << "message: " << r.status.error_message();
  }

  idemkey::v1::ReserveResponse owner_;
  std::string before_;
};

TEST_F(BadInputTest, KeyEmpty) {
  ExpectReserveRefused(
      [](auto& r) { r.set_key(""); }, StatusCode::INVALID_ARGUMENT,
      "key is 0 bytes; it must be 1-256 bytes of printable ASCII");
}

TEST_F(BadInputTest, KeyOf257Bytes) {
  ExpectReserveRefused([](auto& r) { r.set_key(std::string(257, 'k')); },
                       StatusCode::INVALID_ARGUMENT, "key is 257 bytes");
}

TEST_F(BadInputTest, KeyWithSpace) {
  ExpectReserveRefused([](auto& r) { r.set_key("my key"); },
                       StatusCode::INVALID_ARGUMENT,
                       "key \"my key\" has byte 0x20 at offset 2");
}

TEST_F(BadInputTest, KeyWithNonAscii) {
  ExpectReserveRefused([](auto& r) { r.set_key("caf\xc3\xa9"); },
                       StatusCode::INVALID_ARGUMENT,
                       "has byte 0xc3 at offset 3");
}

TEST_F(BadInputTest, KeyWithControlCharacterInLookup) {
  auto l = client().Lookup("acme", std::string("a\x7f", 2));
  EXPECT_EQ(l.status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(l.status.error_message().find("0x7f"), std::string::npos);
}

TEST_F(BadInputTest, TenantEmpty) {
  ExpectReserveRefused([](auto& r) { r.set_tenant(""); },
                       StatusCode::INVALID_ARGUMENT, "tenant name is 0 bytes");
}

TEST_F(BadInputTest, TenantOf65Characters) {
  ExpectReserveRefused([](auto& r) { r.set_tenant(std::string(65, 't')); },
                       StatusCode::INVALID_ARGUMENT, "tenant name is 65 bytes");
}

TEST_F(BadInputTest, TenantWithUppercase) {
  ExpectReserveRefused([](auto& r) { r.set_tenant("Acme"); },
                       StatusCode::INVALID_ARGUMENT,
                       "tenant name \"Acme\" starts with a bad character");
}

TEST_F(BadInputTest, TenantStartingWithDot) {
  ExpectReserveRefused([](auto& r) { r.set_tenant(".hidden"); },
                       StatusCode::INVALID_ARGUMENT,
                       "starts with a bad character");
}

TEST_F(BadInputTest, TenantWithSlash) {
  ExpectReserveRefused(
      [](auto& r) { r.set_tenant("a/b"); }, StatusCode::INVALID_ARGUMENT,
      "tenant name \"a/b\" has a bad character; a tenant name is "
      "1-64 characters of [a-z0-9._-]");
}

TEST_F(BadInputTest, FingerprintNotSha256) {
  ExpectReserveRefused(
      [](auto& r) { r.set_fingerprint(std::string(31, 'f')); },
      StatusCode::INVALID_ARGUMENT,
      "fingerprint is 31 bytes; it must be the 32-byte SHA-256");
}

TEST_F(BadInputTest, AttemptIdMissing) {
  ExpectReserveRefused([](auto& r) { r.clear_attempt_id(); },
                       StatusCode::INVALID_ARGUMENT, "attempt_id is 0 bytes");
}

TEST_F(BadInputTest, TtlBelowOneMinute) {
  ExpectReserveRefused(
      [](auto& r) { r.mutable_ttl()->set_seconds(59); },
      StatusCode::INVALID_ARGUMENT,
      "ttl of 59s is out of range; it must be between 1m and 720h");
}

TEST_F(BadInputTest, TtlAboveThirtyDays) {
  ExpectReserveRefused(
      [](auto& r) { r.mutable_ttl()->set_seconds(30 * 24 * 3600 + 1); },
      StatusCode::INVALID_ARGUMENT, "ttl of 720h1s is out of range");
}

TEST_F(BadInputTest, NegativeLease) {
  ExpectReserveRefused([](auto& r) { r.mutable_lease()->set_seconds(-5); },
                       StatusCode::INVALID_ARGUMENT,
                       "lease of -5s is out of range");
}

TEST_F(BadInputTest, OversizedResponseIsRefusedAndReleasesTheKey) {
  idemkey::v1::StoredResponse big;
  big.set_status_code(200);
  big.set_body(std::string(4 << 20, 'x'));  // plus its field header: > 4 MiB
  auto c = client().Complete("acme", "pending", owner_.fencing_token(), big);
  EXPECT_EQ(c.status.error_code(), StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(c.status.error_message().find(
                "the limit is 4194304 bytes (status, headers and body); the "
                "reservation was released"),
            std::string::npos)
      << c.status.error_message();
  // Released, never half-written: the key is free for a retry.
  EXPECT_EQ(client().Lookup("acme", "pending").status.error_code(),
            StatusCode::NOT_FOUND);
  auto retry = client().Reserve(ReserveReq("acme", "pending", "body", "a2"));
  EXPECT_EQ(retry.reply.outcome(), idemkey::v1::OUTCOME_OWNER);
  ASSERT_TRUE(client()
                  .Release("acme", "pending", retry.reply.fencing_token())
                  .status.ok());
  // Put back what SetUp had, for the unchanged-store check.
  owner_ = client().Reserve(ReserveReq("acme", "pending", "body", "a1")).reply;
  before_ = Snapshot();
}

TEST_F(BadInputTest, ResponseExactlyAtTheLimitIsStored) {
  idemkey::v1::StoredResponse at_limit;
  at_limit.set_body(std::string((4 << 20) - 5, 'x'));  // 1 tag + 4 length bytes
  ASSERT_EQ(at_limit.ByteSizeLong(), size_t{4 << 20});
  auto c =
      client().Complete("acme", "pending", owner_.fencing_token(), at_limit);
  ASSERT_TRUE(c.status.ok()) << c.status.error_message();
  auto l = client().Lookup("acme", "pending");
  EXPECT_EQ(l.reply.record().response().body().size(), at_limit.body().size());
  before_ = Snapshot();
}

TEST_F(BadInputTest, UnknownRecord) {
  EXPECT_EQ(client().Lookup("acme", "nope").status.error_code(),
            StatusCode::NOT_FOUND);
  auto c = client().Complete("acme", "nope", 1, SampleResponse("x"));
  EXPECT_EQ(c.status.error_code(), StatusCode::NOT_FOUND);
  EXPECT_NE(c.status.error_message().find(
                "no record for key \"nope\" of tenant \"acme\": it was never "
                "reserved, was released or deleted, or has expired"),
            std::string::npos)
      << c.status.error_message();
  EXPECT_EQ(client().Release("acme", "nope", 1).status.error_code(),
            StatusCode::NOT_FOUND);
  EXPECT_EQ(client().Heartbeat("acme", "nope", 1).status.error_code(),
            StatusCode::NOT_FOUND);
  EXPECT_EQ(client().DeleteRecord("acme", "nope").status.error_code(),
            StatusCode::NOT_FOUND);
}

TEST_F(BadInputTest, StaleTokenIsAborted) {
  auto c = client().Complete("acme", "pending", owner_.fencing_token() + 1000,
                             SampleResponse("x"));
  EXPECT_EQ(c.status.error_code(), StatusCode::ABORTED);
  EXPECT_NE(c.status.error_message().find("no longer holds the lease"),
            std::string::npos);
}

TEST_F(BadInputTest, ReleaseOfCompletedRecordIsFailedPrecondition) {
  auto l = client().Lookup("acme", "existing");
  auto r =
      client().Release("acme", "existing", l.reply.record().fencing_token());
  EXPECT_EQ(r.status.error_code(), StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(r.status.error_message().find("is already completed"),
            std::string::npos);
}

TEST_F(BadInputTest, UnknownTenantInLookup) {
  auto l = client().Lookup("nobody", "k");
  EXPECT_EQ(l.status.error_code(), StatusCode::NOT_FOUND);
  EXPECT_NE(l.status.error_message().find("tenant \"nobody\" does not exist"),
            std::string::npos);
}

TEST_F(BadInputTest, BadPageSizeAndToken) {
  idemkey::v1::ListRecordsRequest list;
  list.set_tenant("acme");
  list.set_page_size(1001);
  EXPECT_EQ(client().ListRecords(list).status.error_code(),
            StatusCode::INVALID_ARGUMENT);
  list.set_page_size(10);
  list.set_key_prefix("a");
  list.set_page_token("zzz");
  auto r = client().ListRecords(list);
  EXPECT_EQ(r.status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(r.status.error_message().find("page_token"), std::string::npos);
}

// With auto-create off, tenants exist only once an admin creates them, and
// the cap holds.
class TenantLimitTest : public ServerTest {
 protected:
  std::vector<std::string> ServerFlags() const override {
    return {"--auto_create_tenants=false", "--max_tenants=2"};
  }
};

TEST_F(TenantLimitTest, UnknownTenantIsNotFoundWhenAutoCreateIsOff) {
  auto r = client().Reserve(ReserveReq("acme", "k", "body", "a1"));
  EXPECT_EQ(r.status.error_code(), StatusCode::NOT_FOUND);
  EXPECT_NE(r.status.error_message().find("--auto_create_tenants"),
            std::string::npos)
      << r.status.error_message();
  EXPECT_EQ(client().ListTenants().reply.tenants_size(), 0);
}

TEST_F(TenantLimitTest, TenantCapIsResourceExhausted) {
  ASSERT_TRUE(client().CreateTenant("one").status.ok());
  ASSERT_TRUE(client().CreateTenant("two").status.ok());
  auto third = client().CreateTenant("three");
  EXPECT_EQ(third.status.error_code(), StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(third.status.error_message().find("maximum of 2 tenants"),
            std::string::npos)
      << third.status.error_message();
  EXPECT_EQ(client().CreateTenant("one").status.error_code(),
            StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(client().ListTenants().reply.tenants_size(), 2);
}

}  // namespace
}  // namespace idemkey::testing
