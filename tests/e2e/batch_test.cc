// KeyService.Batch against the real idemkeyd: every op gets exactly the
// answer its own call gets, in order; limits; and the client library's
// batching keeps exactly one owner among many threads racing for one key.

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "idemkey/client/client.h"
#include "tests/support/server_test.h"

namespace idemkey::testing {
namespace {

using idemkey::v1::BatchRequest;
using idemkey::v1::BatchResponse;

class BatchTest : public ServerTest {
 protected:
  grpc::Status Batch(const BatchRequest& req, BatchResponse* resp) {
    auto stub = idemkey::v1::KeyService::NewStub(server().NewChannel());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(30));
    return stub->Batch(&ctx, req, resp);
  }
};

TEST_F(BatchTest, EachOpGetsTheAnswerOfItsOwnCallInOrder) {
  ASSERT_TRUE(
      client().Reserve(ReserveReq("acme", "warm", "b", "a0")).status.ok());
  idemkey::v1::ReserveRequest bad_key =
      ReserveReq("acme", "has space", "b", "a");
  const auto unary_bad = client().Reserve(bad_key);
  ASSERT_EQ(unary_bad.status.error_code(), grpc::INVALID_ARGUMENT);

  BatchRequest req;
  *req.add_ops()->mutable_reserve() = ReserveReq("acme", "k1", "body", "a1");
  *req.add_ops()->mutable_reserve() = bad_key;
  req.add_ops();  // no call set
  req.add_ops()->mutable_lookup()->set_tenant("acme");
  req.mutable_ops(3)->mutable_lookup()->set_key("missing");
  // Runs after the first op: sees its reservation.
  *req.add_ops()->mutable_reserve() = ReserveReq("acme", "k1", "body", "a2");
  BatchResponse resp;
  ASSERT_TRUE(Batch(req, &resp).ok());
  ASSERT_EQ(resp.results_size(), 5);

  EXPECT_EQ(resp.results(0).code(), 0);
  EXPECT_EQ(resp.results(0).reserve().outcome(), idemkey::v1::OUTCOME_OWNER);
  const uint64_t token = resp.results(0).reserve().fencing_token();
  EXPECT_GT(token, 0u);

  EXPECT_EQ(resp.results(1).code(), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(resp.results(1).message(), unary_bad.status.error_message());
  EXPECT_EQ(resp.results(1).response_case(),
            idemkey::v1::BatchResult::RESPONSE_NOT_SET);

  EXPECT_EQ(resp.results(2).code(), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(resp.results(2).message(),
            "a batch op has no call; set one of reserve, complete, release, "
            "heartbeat or lookup");

  EXPECT_EQ(resp.results(3).code(), grpc::NOT_FOUND);
  EXPECT_EQ(resp.results(3).message(),
            client().Lookup("acme", "missing").status.error_message());

  EXPECT_EQ(resp.results(4).code(), 0);
  EXPECT_EQ(resp.results(4).reserve().outcome(),
            idemkey::v1::OUTCOME_IN_PROGRESS);

  // Complete, then Lookup and Release of the completed record in one batch.
  req.Clear();
  auto* complete = req.add_ops()->mutable_complete();
  complete->set_tenant("acme");
  complete->set_key("k1");
  complete->set_fencing_token(token);
  *complete->mutable_response() = SampleResponse("k1");
  req.add_ops()->mutable_lookup()->set_tenant("acme");
  req.mutable_ops(1)->mutable_lookup()->set_key("k1");
  auto* release = req.add_ops()->mutable_release();
  release->set_tenant("acme");
  release->set_key("k1");
  release->set_fencing_token(token);
  resp.Clear();
  ASSERT_TRUE(Batch(req, &resp).ok());
  ASSERT_EQ(resp.results_size(), 3);
  EXPECT_EQ(resp.results(0).code(), 0) << resp.results(0).message();
  EXPECT_TRUE(resp.results(0).complete().has_expires_at());
  EXPECT_EQ(resp.results(1).lookup().record().state(),
            idemkey::v1::STATE_COMPLETED);
  EXPECT_EQ(resp.results(1).lookup().record().response().SerializeAsString(),
            SampleResponse("k1").SerializeAsString());
  EXPECT_EQ(resp.results(2).code(), grpc::FAILED_PRECONDITION);
  EXPECT_EQ(client().Lookup("acme", "k1").reply.record().state(),
            idemkey::v1::STATE_COMPLETED);
}

TEST_F(BatchTest, MoreThanAThousandOpsIsRefusedWhole) {
  BatchRequest req;
  for (int i = 0; i < 1001; ++i) {
    *req.add_ops()->mutable_reserve() =
        ReserveReq("acme", absl::StrCat("k", i), "b", "a");
  }
  BatchResponse resp;
  grpc::Status s = Batch(req, &resp);
  EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "a batch carries at most 1000 ops, not 1001; split it");
  // Nothing ran.
  EXPECT_EQ(client().Lookup("acme", "k0").status.error_code(), grpc::NOT_FOUND);

  req.mutable_ops()->RemoveLast();
  resp.Clear();
  ASSERT_TRUE(Batch(req, &resp).ok());
  EXPECT_EQ(resp.results_size(), 1000);
  for (const auto& r : resp.results()) {
    EXPECT_EQ(r.reserve().outcome(), idemkey::v1::OUTCOME_OWNER);
  }
}

// The middleware's race, with calls coalesced by the client library: 64
// threads, one key, 40 rounds; exactly one OWNER each round.
TEST_F(BatchTest, BatchedClientKeepsExactlyOneOwnerPerKey) {
  client::ClientOptions options;
  options.address = server().address();
  options.batch_calls = true;
  options.call_timeout = absl::Seconds(30);
  std::shared_ptr<client::Client> batched = client::Client::Create(options);
  constexpr int kThreads = 64;
  constexpr int kRounds = 40;
  for (int round = 0; round < kRounds; ++round) {
    const std::string key = absl::StrCat("race-", round);
    std::atomic<int> owners{0}, in_progress{0}, failed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        auto r = batched->Reserve(
            ReserveReq("acme", key, "body", absl::StrCat("attempt-", t)));
        if (!r.ok()) {
          ++failed;
        } else if (r->outcome() == idemkey::v1::OUTCOME_OWNER) {
          ++owners;
        } else if (r->outcome() == idemkey::v1::OUTCOME_IN_PROGRESS) {
          ++in_progress;
        }
      });
    }
    for (std::thread& t : threads) t.join();
    ASSERT_EQ(failed, 0) << "round " << round;
    ASSERT_EQ(owners, 1) << "round " << round;
    ASSERT_EQ(in_progress, kThreads - 1) << "round " << round;
  }
}

}  // namespace
}  // namespace idemkey::testing
