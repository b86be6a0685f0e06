// Client with stream_calls against a server without KeyService/Stream (an
// older idemkeyd): the first call finds Stream UNIMPLEMENTED and goes as a
// unary call, and so does every later one.

#include <memory>
#include <string>

#include "client/cpp/client/src/call_stream.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "idemkey/client/client.h"

namespace idemkey::client {
namespace {

// Reserve only; every other method, Stream included, is UNIMPLEMENTED.
class ReserveOnlyService final
    : public idemkey::v1::KeyService::CallbackService {
 public:
  grpc::ServerUnaryReactor* Reserve(
      grpc::CallbackServerContext* ctx, const idemkey::v1::ReserveRequest*,
      idemkey::v1::ReserveResponse* resp) override {
    resp->set_outcome(idemkey::v1::OUTCOME_OWNER);
    resp->set_fencing_token(++reserves_);
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  std::atomic<uint64_t> reserves_{0};
};

class StreamFallbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override { server_->Shutdown(); }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  ReserveOnlyService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(StreamFallbackTest, ClientFallsBackToUnaryCalls) {
  ClientOptions options;
  options.address = address();
  options.stream_calls = true;
  std::shared_ptr<Client> client = Client::Create(options);
  idemkey::v1::ReserveRequest req;
  req.set_tenant("acme");
  req.set_key("k");
  for (uint64_t i = 1; i <= 3; ++i) {
    absl::StatusOr<idemkey::v1::ReserveResponse> r = client->Reserve(req);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->fencing_token(), i);  // each went, once, as a unary call
  }
}

TEST_F(StreamFallbackTest, CallStreamSaysUnsupported) {
  auto channel =
      grpc::CreateChannel(address(), grpc::InsecureChannelCredentials());
  auto stub = idemkey::v1::KeyService::NewStub(channel);
  CallStream stream(stub.get());
  idemkey::v1::BatchOp op;
  op.mutable_reserve()->set_tenant("acme");
  absl::StatusOr<idemkey::v1::BatchResult> r =
      stream.Run(op, absl::Seconds(10), "");
  EXPECT_TRUE(absl::IsUnimplemented(r.status())) << r.status();
  EXPECT_TRUE(stream.unsupported());
  EXPECT_TRUE(
      absl::IsUnimplemented(stream.Run(op, absl::Seconds(10), "").status()));
  EXPECT_EQ(stream.streams_opened(), 1u);
}

}  // namespace
}  // namespace idemkey::client
