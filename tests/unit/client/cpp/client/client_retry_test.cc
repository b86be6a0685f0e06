// The client library's retry path, against a KeyService in the test process
// that fails on purpose: UNAVAILABLE is retried up to max_attempts with the
// same request, every other answer is returned at once. With batch_calls,
// also an op's own UNAVAILABLE in a Batch that went through, and a failed
// Batch RPC costs each op one of its attempts, not a round of them.
#include <memory>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "idemkey/client/client.h"
#include "idemkey/sync/mutex.h"
#include "idemkey/v1/idemkey.grpc.pb.h"

namespace idemkey::client {
namespace {

// Answers the first `failures` Reserves with `code`, then OWNER; remembers
// the attempt ids it saw. A Reserve in a Batch fails in its result, or, with
// `fail_batches`, by failing the whole Batch RPC.
class FlakyKeyService final : public idemkey::v1::KeyService::Service {
 public:
  FlakyKeyService(int failures, grpc::StatusCode code, bool fail_batches)
      : failures_(failures), code_(code), fail_batches_(fail_batches) {}

  grpc::Status Reserve(grpc::ServerContext*,
                       const idemkey::v1::ReserveRequest* req,
                       idemkey::v1::ReserveResponse* resp) override {
    sync::MutexLock lock(&mu_);
    attempt_ids_.push_back(req->attempt_id());
    if (static_cast<int>(attempt_ids_.size()) <= failures_) {
      return grpc::Status(code_, "on purpose");
    }
    resp->set_outcome(idemkey::v1::OUTCOME_OWNER);
    resp->set_fencing_token(7);
    return grpc::Status::OK;
  }

  grpc::Status Batch(grpc::ServerContext* ctx,
                     const idemkey::v1::BatchRequest* req,
                     idemkey::v1::BatchResponse* resp) override {
    for (const idemkey::v1::BatchOp& op : req->ops()) {
      idemkey::v1::BatchResult* result = resp->add_results();
      grpc::Status s = Reserve(ctx, &op.reserve(), result->mutable_reserve());
      if (s.ok()) continue;
      if (fail_batches_) return s;
      result->clear_reserve();
      result->set_code(s.error_code());
      result->set_message(s.error_message());
    }
    return grpc::Status::OK;
  }

  std::vector<std::string> attempt_ids() {
    sync::MutexLock lock(&mu_);
    return attempt_ids_;
  }

 private:
  const int failures_;
  const grpc::StatusCode code_;
  const bool fail_batches_;
  sync::Mutex mu_;
  std::vector<std::string> attempt_ids_ ABSL_GUARDED_BY(mu_);
};

class ClientRetryTest : public ::testing::Test {
 protected:
  void Serve(int failures, grpc::StatusCode code, bool fail_batches = false) {
    service_ = std::make_unique<FlakyKeyService>(failures, code, fail_batches);
    grpc::ServerBuilder builder;
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    address_ = "127.0.0.1:" + std::to_string(port);
  }

  std::shared_ptr<Client> NewClient(int max_attempts,
                                    bool batch_calls = false) {
    ClientOptions options;
    options.address = address_;
    options.max_attempts = max_attempts;
    options.batch_calls = batch_calls;
    options.initial_backoff = absl::Milliseconds(1);
    options.max_backoff = absl::Milliseconds(4);
    return Client::Create(options);
  }

  static idemkey::v1::ReserveRequest Request() {
    idemkey::v1::ReserveRequest req;
    req.set_tenant("acme");
    req.set_key("k1");
    req.set_fingerprint(std::string(32, 'f'));
    req.set_attempt_id("attempt-1");
    return req;
  }

  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  std::unique_ptr<FlakyKeyService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

TEST_F(ClientRetryTest, UnavailableIsRetriedWithTheSameAttempt) {
  Serve(/*failures=*/2, grpc::StatusCode::UNAVAILABLE);
  absl::StatusOr<idemkey::v1::ReserveResponse> r =
      NewClient(/*max_attempts=*/3)->Reserve(Request());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->fencing_token(), 7u);
  EXPECT_EQ(service_->attempt_ids(),
            (std::vector<std::string>(3, "attempt-1")));
}

TEST_F(ClientRetryTest, GivesUpAfterMaxAttemptsWithTheLastAnswer) {
  Serve(/*failures=*/10, grpc::StatusCode::UNAVAILABLE);
  absl::StatusOr<idemkey::v1::ReserveResponse> r =
      NewClient(/*max_attempts=*/3)->Reserve(Request());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(), "on purpose");
  EXPECT_EQ(service_->attempt_ids().size(), 3u);
}

TEST_F(ClientRetryTest, TheServicesVerdictIsNotRetried) {
  for (grpc::StatusCode code :
       {grpc::StatusCode::INVALID_ARGUMENT, grpc::StatusCode::ABORTED,
        grpc::StatusCode::PERMISSION_DENIED}) {
    Serve(/*failures=*/1, code);
    absl::StatusOr<idemkey::v1::ReserveResponse> r =
        NewClient(/*max_attempts=*/4)->Reserve(Request());
    EXPECT_EQ(static_cast<int>(r.status().code()), static_cast<int>(code));
    EXPECT_EQ(service_->attempt_ids().size(), 1u);
    server_->Shutdown();
    server_.reset();
  }
}

// A stopping idemkeyd answers UNAVAILABLE for the ops of a Batch it could
// no longer start, in their results: each is retried like a failed call.
TEST_F(ClientRetryTest, AnOpsOwnUnavailableInABatchIsRetried) {
  Serve(/*failures=*/2, grpc::StatusCode::UNAVAILABLE);
  absl::StatusOr<idemkey::v1::ReserveResponse> r =
      NewClient(/*max_attempts=*/3, /*batch_calls=*/true)->Reserve(Request());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->fencing_token(), 7u);
  EXPECT_EQ(service_->attempt_ids(),
            (std::vector<std::string>(3, "attempt-1")));
}

TEST_F(ClientRetryTest, AFailedBatchCostsEachOpOneAttempt) {
  Serve(/*failures=*/10, grpc::StatusCode::UNAVAILABLE, /*fail_batches=*/true);
  absl::StatusOr<idemkey::v1::ReserveResponse> r =
      NewClient(/*max_attempts=*/3, /*batch_calls=*/true)->Reserve(Request());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(service_->attempt_ids().size(), 3u);  // not 3 x 3
}

TEST_F(ClientRetryTest, AnOpsOwnVerdictInABatchIsNotRetried) {
  Serve(/*failures=*/1, grpc::StatusCode::INVALID_ARGUMENT);
  absl::StatusOr<idemkey::v1::ReserveResponse> r =
      NewClient(/*max_attempts=*/4, /*batch_calls=*/true)->Reserve(Request());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "on purpose");
  EXPECT_EQ(service_->attempt_ids().size(), 1u);
}

}  // namespace
}  // namespace idemkey::client
