// Each transition of docs/semantics.md, "Record life", against a real idemkeyd.

#include <chrono>
#include <thread>

#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/support/server_test.h"

namespace idemkey::testing {
namespace {

using google::protobuf::util::MessageDifferencer;
using idemkey::v1::OUTCOME_COMPLETED;
using idemkey::v1::OUTCOME_IN_PROGRESS;
using idemkey::v1::OUTCOME_MISMATCH;
using idemkey::v1::OUTCOME_OWNER;

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class LifecycleTest : public ServerTest {
 protected:
  // Short limits so that leases and retention lapse within a test.
  std::vector<std::string> ServerFlags() const override {
    return {"--min_ttl=1s"};
  }

  // Reserves `key` with a one-second lease and returns the token.
  uint64_t ReserveShortLease(const std::string& key,
                             const std::string& attempt) {
    auto req = ReserveReq("acme", key, "body", attempt);
    req.mutable_lease()->set_seconds(1);
    auto r = client().Reserve(req);
    EXPECT_TRUE(r.status.ok()) << r.status.error_message();
    EXPECT_EQ(r.reply.outcome(), OUTCOME_OWNER);
    return r.reply.fencing_token();
  }
};

TEST_F(LifecycleTest, FirstReserveOwnsAndRecordIsInProgress) {
  const int64_t before = NowSeconds();
  auto r = client().Reserve(ReserveReq("acme", "order-1", "body", "a1"));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.reply.outcome(), OUTCOME_OWNER);
  EXPECT_GT(r.reply.fencing_token(), 0u);
  // Default lease 30 s, default retention 24 h.
  EXPECT_NEAR(r.reply.lease_expires_at().seconds(), before + 30, 2);
  EXPECT_NEAR(r.reply.expires_at().seconds(), before + 24 * 3600, 2);

  auto l = client().Lookup("acme", "order-1");
  ASSERT_TRUE(l.status.ok()) << l.status.error_message();
  EXPECT_EQ(l.reply.record().state(), idemkey::v1::STATE_IN_PROGRESS);
  EXPECT_EQ(l.reply.record().fencing_token(), r.reply.fencing_token());
  EXPECT_EQ(l.reply.record().attempt_id(), "a1");
  EXPECT_EQ(l.reply.record().fingerprint(), Fingerprint("body"));
  EXPECT_FALSE(l.reply.record().has_response());
}

TEST_F(LifecycleTest, ConcurrentAttemptSeesInProgressWithLeaseExpiry) {
  auto owner = client().Reserve(ReserveReq("acme", "k", "body", "a1"));
  auto other = client().Reserve(ReserveReq("acme", "k", "body", "a2"));
  ASSERT_TRUE(other.status.ok());
  EXPECT_EQ(other.reply.outcome(), OUTCOME_IN_PROGRESS);
  EXPECT_EQ(other.reply.fencing_token(), 0u);
  EXPECT_EQ(other.reply.lease_expires_at().seconds(),
            owner.reply.lease_expires_at().seconds());
}

TEST_F(LifecycleTest, RetriedReserveOfSameAttemptGetsSameToken) {
  auto first = client().Reserve(ReserveReq("acme", "k", "body", "a1"));
  auto again = client().Reserve(ReserveReq("acme", "k", "body", "a1"));
  ASSERT_TRUE(again.status.ok());
  EXPECT_EQ(again.reply.outcome(), OUTCOME_OWNER);
  EXPECT_EQ(again.reply.fencing_token(), first.reply.fencing_token());
}

TEST_F(LifecycleTest, CompletedResponseIsReplayedByteForByte) {
  auto owner = client().Reserve(ReserveReq("acme", "k", "body", "a1"));
  const auto response = SampleResponse("ch_1");
  const int64_t before = NowSeconds();
  auto c =
      client().Complete("acme", "k", owner.reply.fencing_token(), response);
  ASSERT_TRUE(c.status.ok()) << c.status.error_message();
  EXPECT_NEAR(c.reply.expires_at().seconds(), before + 24 * 3600, 2);

  for (int retry = 0; retry < 20; ++retry) {
    auto replay = client().Reserve(
        ReserveReq("acme", "k", "body", "retry-" + std::to_string(retry)));
    ASSERT_TRUE(replay.status.ok());
    ASSERT_EQ(replay.reply.outcome(), OUTCOME_COMPLETED);
    EXPECT_EQ(replay.reply.response().SerializeAsString(),
              response.SerializeAsString());
  }
  auto l = client().Lookup("acme", "k");
  EXPECT_EQ(l.reply.record().state(), idemkey::v1::STATE_COMPLETED);
  EXPECT_TRUE(
      MessageDifferencer::Equals(l.reply.record().response(), response));
  EXPECT_FALSE(l.reply.record().has_lease_expires_at());
  EXPECT_TRUE(l.reply.record().has_completed_at());
}

TEST_F(LifecycleTest, OtherFingerprintIsMismatchInEveryState) {
  auto owner = client().Reserve(ReserveReq("acme", "k", "body-1", "a1"));
  auto m1 = client().Reserve(ReserveReq("acme", "k", "body-2", "a2"));
  EXPECT_EQ(m1.reply.outcome(), OUTCOME_MISMATCH);
  client().Complete("acme", "k", owner.reply.fencing_token(),
                    SampleResponse("x"));
  auto m2 = client().Reserve(ReserveReq("acme", "k", "body-2", "a3"));
  EXPECT_EQ(m2.reply.outcome(), OUTCOME_MISMATCH);
  EXPECT_FALSE(m2.reply.has_response());
}

TEST_F(LifecycleTest, ReleaseForgetsSoRetryOwnsWithLargerToken) {
  auto owner = client().Reserve(ReserveReq("acme", "k", "body", "a1"));
  auto rel = client().Release("acme", "k", owner.reply.fencing_token());
  ASSERT_TRUE(rel.status.ok()) << rel.status.error_message();
  EXPECT_EQ(client().Lookup("acme", "k").status.error_code(),
            grpc::StatusCode::NOT_FOUND);

  auto retry = client().Reserve(ReserveReq("acme", "k", "body", "a2"));
  EXPECT_EQ(retry.reply.outcome(), OUTCOME_OWNER);
  EXPECT_GT(retry.reply.fencing_token(), owner.reply.fencing_token());
  // The released token cannot complete the new reservation.
  auto stale = client().Complete("acme", "k", owner.reply.fencing_token(),
                                 SampleResponse("x"));
  EXPECT_EQ(stale.status.error_code(), grpc::StatusCode::ABORTED);
}

TEST_F(LifecycleTest, HeartbeatKeepsLeaseBeyondItsFirstExpiry) {
  const uint64_t token = ReserveShortLease("k", "a1");
  auto hb = client().Heartbeat("acme", "k", token, /*lease_seconds=*/30);
  ASSERT_TRUE(hb.status.ok()) << hb.status.error_message();
  EXPECT_GE(hb.reply.lease_expires_at().seconds(), NowSeconds() + 28);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  auto other = client().Reserve(ReserveReq("acme", "k", "body", "a2"));
  EXPECT_EQ(other.reply.outcome(), OUTCOME_IN_PROGRESS);
  EXPECT_TRUE(
      client().Complete("acme", "k", token, SampleResponse("x")).status.ok());
}

TEST_F(LifecycleTest, ExpiredLeaseIsTakenOverAndStaleOwnerRefused) {
  const uint64_t stale = ReserveShortLease("k", "a1");
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  auto takeover = client().Reserve(ReserveReq("acme", "k", "body", "a2"));
  ASSERT_EQ(takeover.reply.outcome(), OUTCOME_OWNER);
  EXPECT_GT(takeover.reply.fencing_token(), stale);

  auto late = client().Complete("acme", "k", stale, SampleResponse("late"));
  EXPECT_EQ(late.status.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_NE(late.status.error_message().find("another attempt took over"),
            std::string::npos)
      << late.status.error_message();
  EXPECT_EQ(client().Heartbeat("acme", "k", stale).status.error_code(),
            grpc::StatusCode::ABORTED);
  EXPECT_EQ(client().Release("acme", "k", stale).status.error_code(),
            grpc::StatusCode::ABORTED);

  ASSERT_TRUE(client()
                  .Complete("acme", "k", takeover.reply.fencing_token(),
                            SampleResponse("winner"))
                  .status.ok());
  auto replay = client().Reserve(ReserveReq("acme", "k", "body", "a3"));
  EXPECT_EQ(replay.reply.response().body(), SampleResponse("winner").body());
}

TEST_F(LifecycleTest, CompleteAfterLeaseLapsedIsRefusedEvenWithoutTakeover) {
  const uint64_t token = ReserveShortLease("k", "a1");
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  auto late = client().Complete("acme", "k", token, SampleResponse("x"));
  EXPECT_EQ(late.status.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_NE(late.status.error_message().find("expired at"), std::string::npos)
      << late.status.error_message();
  // The same attempt may reserve again and keeps its token.
  auto again = client().Reserve(ReserveReq("acme", "k", "body", "a1"));
  EXPECT_EQ(again.reply.outcome(), OUTCOME_OWNER);
  EXPECT_EQ(again.reply.fencing_token(), token);
}

TEST_F(LifecycleTest, RetriedCompleteWithSameTokenIsOkAndKeepsFirstResponse) {
  auto owner = client().Reserve(ReserveReq("acme", "k", "body", "a1"));
  const uint64_t token = owner.reply.fencing_token();
  auto first = client().Complete("acme", "k", token, SampleResponse("first"));
  auto second = client().Complete("acme", "k", token, SampleResponse("second"));
  ASSERT_TRUE(second.status.ok()) << second.status.error_message();
  EXPECT_EQ(second.reply.expires_at().seconds(),
            first.reply.expires_at().seconds());
  EXPECT_EQ(client().Lookup("acme", "k").reply.record().response().body(),
            SampleResponse("first").body());
}

TEST_F(LifecycleTest, CompletedRecordExpiresAfterItsTtl) {
  auto req = ReserveReq("acme", "k", "body", "a1");
  req.mutable_ttl()->set_seconds(1);
  auto owner = client().Reserve(req);
  ASSERT_TRUE(owner.status.ok()) << owner.status.error_message();
  ASSERT_TRUE(client()
                  .Complete("acme", "k", owner.reply.fencing_token(),
                            SampleResponse("x"))
                  .status.ok());
  EXPECT_TRUE(client().Lookup("acme", "k").status.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  EXPECT_EQ(client().Lookup("acme", "k").status.error_code(),
            grpc::StatusCode::NOT_FOUND);
  auto fresh = client().Reserve(ReserveReq("acme", "k", "other-body", "a2"));
  EXPECT_EQ(fresh.reply.outcome(), OUTCOME_OWNER);
}

TEST_F(LifecycleTest, TenantsDoNotSeeEachOthersKeys) {
  auto a = client().Reserve(ReserveReq("tenant-a", "shared-key", "body", "a1"));
  ASSERT_TRUE(client()
                  .Complete("tenant-a", "shared-key", a.reply.fencing_token(),
                            SampleResponse("a"))
                  .status.ok());
  ASSERT_TRUE(client().CreateTenant("tenant-b").status.ok());
  EXPECT_EQ(client().Lookup("tenant-b", "shared-key").status.error_code(),
            grpc::StatusCode::NOT_FOUND);
  auto b = client().Reserve(ReserveReq("tenant-b", "shared-key", "body", "b1"));
  EXPECT_EQ(b.reply.outcome(), OUTCOME_OWNER);
  // Tenant A's token means nothing in tenant B.
  EXPECT_EQ(client()
                .Complete("tenant-b", "shared-key", a.reply.fencing_token(),
                          SampleResponse("b"))
                .status.error_code(),
            grpc::StatusCode::ABORTED);
  idemkey::v1::ListRecordsRequest list;
  list.set_tenant("tenant-b");
  auto listed = client().ListRecords(list);
  ASSERT_EQ(listed.reply.records_size(), 1);
  EXPECT_EQ(listed.reply.records(0).state(), idemkey::v1::STATE_IN_PROGRESS);
}

TEST_F(LifecycleTest, AnswersHealthCheckWithServing) {
  auto health = client().HealthCheck();
  ASSERT_TRUE(health.status.ok()) << health.status.error_message();
  EXPECT_EQ(health.reply, 1);  // SERVING
}

// With auto-create on (the default), a read of a tenant that has no records
// yet says so, rather than advising a flag that is already on.
TEST_F(LifecycleTest, ReadOfAnUnknownTenantExplainsItWithAutoCreateOn) {
  auto l = client().Lookup("never-seen", "k");
  EXPECT_EQ(l.status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(l.status.error_message(),
            "tenant \"never-seen\" does not exist yet: it holds no records, "
            "and its first Reserve creates it");
}

// Each service has its own health status, as load balancers ask for it.
TEST_F(LifecycleTest, AnswersHealthCheckPerServiceName) {
  for (const char* service :
       {"idemkey.v1.KeyService", "idemkey.v1.AdminService"}) {
    auto health = client().HealthCheck(service);
    ASSERT_TRUE(health.status.ok())
        << service << ": " << health.status.error_message();
    EXPECT_EQ(health.reply, 1) << service;  // SERVING
  }
  auto unknown = client().HealthCheck("idemkey.v1.NoSuchService");
  EXPECT_EQ(unknown.status.error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace idemkey::testing
