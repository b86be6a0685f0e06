// The gRPC adapters (idemkey/grpc/...) against a real idemkeyd: an in-test
// gRPC app server whose Payments/CreateCharge is wrapped by
// GrpcServerIdempotency, called as clients would; and the client interceptor
// whose key must survive gRPC's automatic retries.

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "idemkey/client/client.h"
#include "idemkey/examples/payments.grpc.pb.h"
#include "idemkey/grpc/client_idempotency_interceptor.h"
#include "idemkey/grpc/server_idempotency.h"
#include "tests/support/server_test.h"

namespace idemkey::testing {
namespace {

using idemkey::examples::Charge;
using idemkey::examples::CreateChargeRequest;
using idemkey::examples::Payments;
using idemkey::middleware::IdempotencyCore;
using idemkey::middleware::MiddlewareOptions;
using idemkey::rpc::DefaultGrpcOptions;
using idemkey::rpc::GrpcServerIdempotency;
using idemkey::rpc::ReplyMetadata;

using Metadata = std::multimap<std::string, std::string>;
using HandlerFn = std::function<grpc::Status(const CreateChargeRequest&,
                                             Charge*, ReplyMetadata*)>;

constexpr char kMethod[] = "/idemkey.examples.Payments/CreateCharge";

Metadata ToStrings(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
  Metadata out;
  for (const auto& [name, value] : metadata) {
    out.emplace(std::string(name.data(), name.size()),
                std::string(value.data(), value.size()));
  }
  return out;
}

std::string MetadataValue(grpc::CallbackServerContext* ctx,
                          const std::string& name) {
  auto it = ctx->client_metadata().find(name);
  if (it == ctx->client_metadata().end()) return "";
  return std::string(it->second.data(), it->second.size());
}

// Payments with CreateCharge behind the middleware; `handler` does the work.
class WrappedPayments final : public Payments::CallbackService {
 public:
  WrappedPayments(std::shared_ptr<IdempotencyCore> core, HandlerFn handler,
                  GrpcServerIdempotency::Executor executor = nullptr)
      : idempotency_(
            std::move(core),
            [](grpc::CallbackServerContext* ctx) {
              return MetadataValue(ctx, "x-org-id");
            },
            std::move(executor)),
        handler_(std::move(handler)) {}

  grpc::ServerUnaryReactor* CreateCharge(grpc::CallbackServerContext* ctx,
                                         const CreateChargeRequest* request,
                                         Charge* charge) override {
    return idempotency_.Handle(ctx, request, charge, kMethod,
                               [this](const CreateChargeRequest& req,
                                      Charge* out, ReplyMetadata* metadata) {
                                 ++runs_;
                                 return handler_(req, out, metadata);
                               });
  }

  int runs() const { return runs_; }

 private:
  GrpcServerIdempotency idempotency_;
  HandlerFn handler_;
  std::atomic<int> runs_{0};
};

// A gRPC server on 127.0.0.1 with a port the kernel picks.
class AppServer {
 public:
  explicit AppServer(grpc::Service* service) {
    grpc::ServerBuilder builder;
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(service);
    server_ = builder.BuildAndStart();
  }
  ~AppServer() {
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::seconds(5));
  }

  bool ok() const { return server_ != nullptr && port_ > 0; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // A channel with its own connection (no subchannel shared with others).
  std::shared_ptr<grpc::Channel> NewChannel() const {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return grpc::CreateCustomChannel(address(),
                                     grpc::InsecureChannelCredentials(), args);
  }

 private:
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

struct CallResult {
  grpc::Status status;
  Charge charge;
  Metadata initial;
  Metadata trailing;

  bool replayed() const {
    auto it = initial.find("idempotency-replayed");
    return it != initial.end() && it->second == "true";
  }
  // Initial metadata without the replay marker.
  Metadata initial_without_marker() const {
    Metadata out = initial;
    out.erase("idempotency-replayed");
    return out;
  }
};

CreateChargeRequest ChargeReq(int64_t amount,
                              const std::string& description = "coffee") {
  CreateChargeRequest r;
  r.set_amount(amount);
  r.set_currency("EUR");
  r.set_description(description);
  return r;
}

// One CreateCharge call; no key (or tenant) when the argument is nullopt.
CallResult CallCharge(const std::shared_ptr<grpc::Channel>& channel,
                      const CreateChargeRequest& request,
                      std::optional<std::string> key,
                      std::optional<std::string> tenant = "acme") {
  auto stub = Payments::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  if (key) ctx.AddMetadata("idempotency-key", *key);
  if (tenant) ctx.AddMetadata("x-org-id", *tenant);
  CallResult r;
  r.status = stub->CreateCharge(&ctx, request, &r.charge);
  r.initial = ToStrings(ctx.GetServerInitialMetadata());
  r.trailing = ToStrings(ctx.GetServerTrailingMetadata());
  return r;
}

// A handler that charges (numbering the charges) and answers with metadata:
// repeated names, a binary value, initial and trailing.
HandlerFn Charger(std::atomic<int>* charges) {
  return [charges](const CreateChargeRequest& req, Charge* out,
                   ReplyMetadata* metadata) {
    out->set_id("ch_" + std::to_string(++*charges));
    out->set_amount(req.amount());
    out->set_currency(req.currency());
    out->set_description(req.description());
    metadata->AddInitial("x-charge-id", out->id());
    metadata->AddInitial("x-tag", "a");
    metadata->AddInitial("x-tag", "b");
    metadata->AddTrailing("x-trace-bin", std::string("\x00\xff\x01", 3));
    metadata->AddTrailing("x-ledger", "posted");
    return grpc::Status::OK;
  };
}

// A port on 127.0.0.1 where nothing listens.
int ClosedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

class GrpcMiddlewareTest : public ServerTest {
 protected:
  void TearDown() override {
    // App servers and key-service clients first: their connections to
    // idemkeyd would delay its graceful stop.
    app_.reset();
    service_.reset();
    core_.reset();
    keys_.reset();
    ServerTest::TearDown();
  }

  static MiddlewareOptions RequiredKeyOptions() {
    MiddlewareOptions options = DefaultGrpcOptions();
    options.require_key = true;
    return options;
  }

  // Starts the app server; its middleware talks to `keys_address` (the
  // test's idemkeyd when empty).
  void StartApp(MiddlewareOptions options, HandlerFn handler,
                const std::string& keys_address = "",
                GrpcServerIdempotency::Executor executor = nullptr) {
    client::ClientOptions client_options;
    client_options.stream_calls = StreamTransport();
    client_options.address =
        keys_address.empty() ? server().address() : keys_address;
    client_options.call_timeout = absl::Seconds(2);
    client_options.max_attempts = 2;
    keys_ = client::Client::Create(client_options);
    core_ = std::make_shared<IdempotencyCore>(keys_, std::move(options));
    service_ = std::make_unique<WrappedPayments>(core_, std::move(handler),
                                                 std::move(executor));
    app_ = std::make_unique<AppServer>(service_.get());
    ASSERT_TRUE(app_->ok());
    channel_ = app_->NewChannel();
  }

  int runs() const { return service_->runs(); }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  AppServer& app() { return *app_; }

 private:
  std::shared_ptr<client::Client> keys_;
  std::shared_ptr<IdempotencyCore> core_;
  std::unique_ptr<WrappedPayments> service_;
  std::unique_ptr<AppServer> app_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(GrpcMiddlewareTest, FirstCallRunsHandlerAndRetriesReplayIt) {
  std::atomic<int> charges{0};
  StartApp(RequiredKeyOptions(), Charger(&charges));

  CallResult first = CallCharge(channel(), ChargeReq(1000), "order-1");
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  EXPECT_EQ(first.charge.id(), "ch_1");
  EXPECT_FALSE(first.replayed());
  EXPECT_EQ(first.initial.count("x-tag"), 2u);
  EXPECT_EQ(first.trailing.find("x-trace-bin")->second,
            std::string("\x00\xff\x01", 3));

  for (int i = 0; i < 20; ++i) {
    CallResult retry = CallCharge(channel(), ChargeReq(1000), "order-1");
    EXPECT_EQ(retry.status.error_code(), first.status.error_code());
    EXPECT_EQ(retry.status.error_message(), first.status.error_message());
    EXPECT_EQ(retry.charge.SerializeAsString(),
              first.charge.SerializeAsString());
    EXPECT_TRUE(retry.replayed()) << "retry " << i;
    EXPECT_EQ(retry.initial_without_marker(), first.initial) << "retry " << i;
    EXPECT_EQ(retry.trailing, first.trailing) << "retry " << i;
  }
  EXPECT_EQ(runs(), 1);

  // Stored as docs/semantics.md says: gRPC code, metadata as headers, response
  // bytes.
  auto l = client().Lookup("acme", "order-1");
  ASSERT_TRUE(l.status.ok()) << l.status.error_message();
  EXPECT_EQ(l.reply.record().response().status_code(), 0);
  EXPECT_EQ(l.reply.record().response().body(),
            first.charge.SerializeAsString());
}

TEST_F(GrpcMiddlewareTest, ErrorStatusIsStoredAndReplayed) {
  StartApp(RequiredKeyOptions(), [](const CreateChargeRequest& req, Charge*,
                                    ReplyMetadata* metadata) {
    metadata->AddTrailing("x-reason", "declined");
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        "amount " + std::to_string(req.amount()) + " must be positive",
        "details-bytes");
  });
  CallResult first = CallCharge(channel(), ChargeReq(-5), "bad-1");
  EXPECT_EQ(first.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(first.status.error_message(), "amount -5 must be positive");
  for (int i = 0; i < 3; ++i) {
    CallResult retry = CallCharge(channel(), ChargeReq(-5), "bad-1");
    EXPECT_EQ(retry.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(retry.status.error_message(), first.status.error_message());
    EXPECT_EQ(retry.status.error_details(), "details-bytes");
    EXPECT_TRUE(retry.replayed());
    EXPECT_EQ(retry.trailing, first.trailing);
  }
  EXPECT_EQ(runs(), 1);
}

TEST_F(GrpcMiddlewareTest, NotFinalStatusIsReleasedAndRetryRuns) {
  std::atomic<int> calls{0};
  StartApp(RequiredKeyOptions(),
           [&](const CreateChargeRequest&, Charge* out, ReplyMetadata*) {
             if (++calls == 1) {
               return grpc::Status(grpc::StatusCode::UNAVAILABLE, "busy");
             }
             out->set_id("ch_ok");
             return grpc::Status::OK;
           });
  CallResult first = CallCharge(channel(), ChargeReq(10), "nf-1");
  EXPECT_EQ(first.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(client().Lookup("acme", "nf-1").status.error_code(),
            grpc::StatusCode::NOT_FOUND);
  CallResult second = CallCharge(channel(), ChargeReq(10), "nf-1");
  ASSERT_TRUE(second.status.ok()) << second.status.error_message();
  EXPECT_FALSE(second.replayed());
  EXPECT_EQ(second.charge.id(), "ch_ok");
  EXPECT_EQ(runs(), 2);
}

TEST_F(GrpcMiddlewareTest, SameKeyDifferentRequestFailsPrecondition) {
  std::atomic<int> charges{0};
  StartApp(RequiredKeyOptions(), Charger(&charges));
  ASSERT_TRUE(CallCharge(channel(), ChargeReq(1000), "k").status.ok());
  CallResult other = CallCharge(channel(), ChargeReq(2000), "k");
  EXPECT_EQ(other.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(other.status.error_message().find("different"), std::string::npos)
      << other.status.error_message();
  EXPECT_FALSE(other.replayed());
  EXPECT_EQ(runs(), 1);
}

TEST_F(GrpcMiddlewareTest, MissingKeyOnRequiredMethodIsInvalidArgument) {
  std::atomic<int> charges{0};
  StartApp(RequiredKeyOptions(), Charger(&charges));
  CallResult r = CallCharge(channel(), ChargeReq(1000), std::nullopt);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(r.status.error_message().find("requires an Idempotency-Key"),
            std::string::npos)
      << r.status.error_message();
  EXPECT_EQ(runs(), 0);
}

TEST_F(GrpcMiddlewareTest, MalformedKeysAreInvalidArgument) {
  std::atomic<int> charges{0};
  StartApp(RequiredKeyOptions(), Charger(&charges));
  CallResult too_long =
      CallCharge(channel(), ChargeReq(1000), std::string(257, 'k'));
  EXPECT_EQ(too_long.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(too_long.status.error_message().find("Idempotency-Key"),
            std::string::npos)
      << too_long.status.error_message();
  CallResult empty = CallCharge(channel(), ChargeReq(1000), "");
  EXPECT_EQ(empty.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(runs(), 0);
  // The longest valid key works.
  EXPECT_TRUE(CallCharge(channel(), ChargeReq(1000), std::string(256, 'k'))
                  .status.ok());
  EXPECT_EQ(runs(), 1);
}

TEST_F(GrpcMiddlewareTest, NoTenantOrExcludedMethodBypasses) {
  std::atomic<int> charges{0};
  MiddlewareOptions options = RequiredKeyOptions();
  StartApp(options, Charger(&charges));
  // No tenant: runs every time, nothing recorded.
  EXPECT_TRUE(
      CallCharge(channel(), ChargeReq(1), "nt", std::nullopt).status.ok());
  EXPECT_TRUE(
      CallCharge(channel(), ChargeReq(1), "nt", std::nullopt).status.ok());
  EXPECT_EQ(runs(), 2);

  options.excluded_routes = {std::string("grpc ") + kMethod};
  StartApp(options, Charger(&charges));
  CallResult a = CallCharge(channel(), ChargeReq(1), "ex");
  CallResult b = CallCharge(channel(), ChargeReq(1), "ex");
  EXPECT_TRUE(a.status.ok());
  EXPECT_TRUE(b.status.ok());
  EXPECT_FALSE(b.replayed());
  EXPECT_NE(a.charge.id(), b.charge.id());
  EXPECT_EQ(runs(), 2);
  EXPECT_EQ(client().Lookup("acme", "ex").status.error_code(),
            grpc::StatusCode::NOT_FOUND);
}

// 32 identical calls, each on its own connection, released at once: the
// handler runs once (held until every other call answered), the rest are
// told ABORTED with a retry-after.
void ExpectConcurrentCallsAbortButOne(AppServer& app,
                                      std::atomic<int>* answered) {
  constexpr int kCalls = 32;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < kCalls; ++i) {
    channels.push_back(app.NewChannel());
    ASSERT_TRUE(channels.back()->WaitForConnected(
        std::chrono::system_clock::now() + std::chrono::seconds(10)));
  }
  std::vector<CallResult> results(kCalls);
  std::mutex mu;
  std::condition_variable cv;
  bool go = false;
  std::vector<std::thread> threads;
  for (int i = 0; i < kCalls; ++i) {
    threads.emplace_back([&, i] {
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return go; });
      }
      results[i] = CallCharge(channels[i], ChargeReq(500), "race-1");
      ++*answered;
    });
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    go = true;
  }
  cv.notify_all();
  for (auto& t : threads) t.join();

  int ok = 0, aborted = 0;
  for (const CallResult& r : results) {
    if (r.status.ok()) {
      ++ok;
      EXPECT_FALSE(r.replayed());
    } else {
      EXPECT_EQ(r.status.error_code(), grpc::StatusCode::ABORTED)
          << r.status.error_message();
      ++aborted;
      auto it = r.trailing.find("retry-after");
      ASSERT_NE(it, r.trailing.end());
      EXPECT_GE(std::stoi(it->second), 1);
    }
  }
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(aborted, kCalls - 1);
}

HandlerFn HeldCharger(std::atomic<int>* answered, int others) {
  return [answered, others](const CreateChargeRequest&, Charge* out,
                            ReplyMetadata*) {
    // Hold the key until every other call answered (or 20 s).
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (answered->load() < others &&
           std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    out->set_id("ch_race");
    return grpc::Status::OK;
  };
}

TEST_F(GrpcMiddlewareTest, ConcurrentIdenticalCallsRunHandlerOnce) {
  std::atomic<int> answered{0};
  StartApp(RequiredKeyOptions(), HeldCharger(&answered, 31));
  ExpectConcurrentCallsAbortButOne(app(), &answered);
  EXPECT_EQ(runs(), 1);
}

TEST_F(GrpcMiddlewareTest, ConcurrentCallsWithExecutorRunHandlerOnce) {
  std::atomic<int> answered{0};
  std::vector<std::thread> pool;
  std::mutex pool_mu;
  StartApp(RequiredKeyOptions(), HeldCharger(&answered, 31), "",
           [&](std::function<void()> task) {
             std::lock_guard<std::mutex> lock(pool_mu);
             pool.emplace_back(std::move(task));
           });
  ExpectConcurrentCallsAbortButOne(app(), &answered);
  EXPECT_EQ(runs(), 1);
  std::lock_guard<std::mutex> lock(pool_mu);
  for (auto& t : pool) t.join();
}

TEST_F(GrpcMiddlewareTest, ThrowingHandlerReleasesKeyAndRetryRuns) {
  std::atomic<int> calls{0};
  StartApp(RequiredKeyOptions(),
           [&](const CreateChargeRequest&, Charge* out, ReplyMetadata* md) {
             md->AddInitial("x-attempt", std::to_string(calls + 1));
             if (++calls == 1) throw std::runtime_error("card network down");
             out->set_id("ch_after_throw");
             return grpc::Status::OK;
           });
  CallResult first = CallCharge(channel(), ChargeReq(700), "throw-1");
  EXPECT_EQ(first.status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_NE(first.status.error_message().find("card network down"),
            std::string::npos)
      << first.status.error_message();
  EXPECT_EQ(first.initial.count("x-attempt"), 0u);
  // Released before the answer went out.
  EXPECT_EQ(client().Lookup("acme", "throw-1").status.error_code(),
            grpc::StatusCode::NOT_FOUND);

  CallResult retry = CallCharge(channel(), ChargeReq(700), "throw-1");
  ASSERT_TRUE(retry.status.ok()) << retry.status.error_message();
  EXPECT_FALSE(retry.replayed());
  EXPECT_EQ(retry.charge.id(), "ch_after_throw");
  EXPECT_EQ(runs(), 2);
  CallResult replay = CallCharge(channel(), ChargeReq(700), "throw-1");
  EXPECT_TRUE(replay.replayed());
  EXPECT_EQ(replay.charge.id(), "ch_after_throw");
  EXPECT_EQ(runs(), 2);
}

TEST_F(GrpcMiddlewareTest, KeyServiceDownFailClosedIsUnavailable) {
  std::atomic<int> charges{0};
  StartApp(RequiredKeyOptions(), Charger(&charges),
           "127.0.0.1:" + std::to_string(ClosedPort()));
  CallResult r = CallCharge(channel(), ChargeReq(1000), "down-1");
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(r.status.error_message().find("could not be checked"),
            std::string::npos)
      << r.status.error_message();
  EXPECT_EQ(runs(), 0);
}

TEST_F(GrpcMiddlewareTest, KeyServiceDownFailOpenRunsHandler) {
  std::atomic<int> charges{0};
  MiddlewareOptions options = RequiredKeyOptions();
  options.fail_open = true;
  StartApp(options, Charger(&charges),
           "127.0.0.1:" + std::to_string(ClosedPort()));
  CallResult r = CallCharge(channel(), ChargeReq(1000), "down-1");
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.charge.id(), "ch_1");
  EXPECT_FALSE(r.replayed());
  EXPECT_EQ(runs(), 1);
}

// ---- The client interceptor ------------------------------------------------

// Payments that fails each call's first `failures` attempts with UNAVAILABLE
// and records the idempotency-key of every attempt.
// At most once for gRPC too: a response message too large to store is
// stored without it; the retry gets the stored status, an empty message and
// idempotency-body-omitted, and the handler does not run again.
TEST_F(GrpcMiddlewareTest, OversizedResponseIsStoredWithoutItsMessage) {
  std::atomic<int> charges{0};
  StartApp(RequiredKeyOptions(),
           [&](const CreateChargeRequest& req, Charge* out, ReplyMetadata* md) {
             out->set_id("ch_" + std::to_string(++charges));
             out->set_amount(req.amount());
             out->set_description(std::string(5 << 20, 'x'));
             md->AddInitial("x-charge-id", out->id());
             return grpc::Status::OK;
           });
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);  // the first answer is 5 MiB
  auto channel = grpc::CreateCustomChannel(
      app().address(), grpc::InsecureChannelCredentials(), args);
  CallResult first = CallCharge(channel, ChargeReq(500), "big-1");
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  EXPECT_EQ(first.charge.description().size(), size_t{5} << 20);
  CallResult retry = CallCharge(channel, ChargeReq(500), "big-1");
  ASSERT_TRUE(retry.status.ok()) << retry.status.error_message();
  EXPECT_TRUE(retry.replayed());
  EXPECT_EQ(retry.initial.count("idempotency-body-omitted"), 1u);
  EXPECT_EQ(retry.initial.find("x-charge-id")->second, "ch_1");
  EXPECT_EQ(retry.charge.id(), "");  // the empty message
  EXPECT_EQ(charges, 1);
}

class FlakyPayments final : public Payments::CallbackService {
 public:
  explicit FlakyPayments(int failures) : failures_(failures) {}

  grpc::ServerUnaryReactor* CreateCharge(grpc::CallbackServerContext* ctx,
                                         const CreateChargeRequest* request,
                                         Charge* charge) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    std::lock_guard<std::mutex> lock(mu_);
    keys_.push_back(MetadataValue(ctx, "idempotency-key"));
    int& attempts = attempts_[request->description()];
    if (++attempts <= failures_) {
      reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "flaky"));
    } else {
      charge->set_id("ch_" + request->description());
      reactor->Finish(grpc::Status::OK);
    }
    return reactor;
  }

  std::vector<std::string> keys() {
    std::lock_guard<std::mutex> lock(mu_);
    return keys_;
  }
  void Clear() {
    std::lock_guard<std::mutex> lock(mu_);
    keys_.clear();
  }

 private:
  const int failures_;
  std::mutex mu_;
  std::vector<std::string> keys_;        // every attempt, in order
  std::map<std::string, int> attempts_;  // by request description
};

constexpr char kRetryServiceConfig[] = R"json({
  "methodConfig": [{
    "name": [{"service": "idemkey.examples.Payments"}],
    "retryPolicy": {
      "maxAttempts": 4,
      "initialBackoff": "0.01s",
      "maxBackoff": "0.1s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
})json";

std::shared_ptr<grpc::Channel> RetryingChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetServiceConfigJSON(kRetryServiceConfig);
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 1);
  std::vector<
      std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(
      std::make_unique<idemkey::rpc::IdempotencyKeyInterceptorFactory>());
  return grpc::experimental::CreateCustomChannelWithInterceptors(
      address, grpc::InsecureChannelCredentials(), args,
      std::move(interceptors));
}

TEST(GrpcClientInterceptorTest, KeyIsTheSameOnEveryRetryAttempt) {
  FlakyPayments service(/*failures=*/2);
  AppServer app(&service);
  ASSERT_TRUE(app.ok());
  auto stub = Payments::NewStub(RetryingChannel(app.address()));

  std::vector<std::string> first_keys;
  for (const char* call : {"one", "two"}) {
    service.Clear();
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(30));
    Charge charge;
    grpc::Status s = stub->CreateCharge(&ctx, ChargeReq(1, call), &charge);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(charge.id(), std::string("ch_") + call);
    std::vector<std::string> keys = service.keys();
    ASSERT_EQ(keys.size(), 3u);                 // two UNAVAILABLE, then OK
    EXPECT_EQ(keys[0].size(), 36u) << keys[0];  // a UUID
    for (const std::string& k : keys) EXPECT_EQ(k, keys[0]);
    first_keys.push_back(keys[0]);
  }
  EXPECT_NE(first_keys[0], first_keys[1]);  // a new key per call
}

TEST(GrpcClientInterceptorTest, CallerSetKeyIsKept) {
  FlakyPayments service(/*failures=*/2);
  AppServer app(&service);
  ASSERT_TRUE(app.ok());
  auto stub = Payments::NewStub(RetryingChannel(app.address()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  idemkey::rpc::SetIdempotencyKey(&ctx, "caller-key-1");
  Charge charge;
  grpc::Status s = stub->CreateCharge(&ctx, ChargeReq(1, "mine"), &charge);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(service.keys(), std::vector<std::string>(3, "caller-key-1"));
}

// Both adapters together against idemkeyd: the wrapped handler answers
// UNAVAILABLE (not final: released) twice, gRPC retries with the same key,
// the third attempt runs and is stored; an application-level retry with
// that key is replayed.
TEST_F(GrpcMiddlewareTest, InterceptorKeyDrivesServerSideIdempotency) {
  std::atomic<int> calls{0};
  StartApp(RequiredKeyOptions(),
           [&](const CreateChargeRequest&, Charge* out, ReplyMetadata*) {
             if (++calls <= 2) {
               return grpc::Status(grpc::StatusCode::UNAVAILABLE, "flaky");
             }
             out->set_id("ch_" + std::to_string(calls.load()));
             return grpc::Status::OK;
           });
  auto stub = Payments::NewStub(RetryingChannel(app().address()));
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-org-id", "acme");
  Charge charge;
  ASSERT_TRUE(stub->CreateCharge(&ctx, ChargeReq(42), &charge).ok());
  EXPECT_EQ(charge.id(), "ch_3");
  EXPECT_EQ(runs(), 3);

  // The record is under the interceptor's key: find it and retry with it.
  idemkey::v1::ListRecordsRequest list;
  list.set_tenant("acme");
  auto records = client().ListRecords(list);
  ASSERT_TRUE(records.status.ok()) << records.status.error_message();
  ASSERT_EQ(records.reply.records_size(), 1);
  const std::string key = records.reply.records(0).key();
  EXPECT_EQ(key.size(), 36u);

  grpc::ClientContext again;
  again.AddMetadata("x-org-id", "acme");
  idemkey::rpc::SetIdempotencyKey(&again, key);
  Charge replayed;
  ASSERT_TRUE(stub->CreateCharge(&again, ChargeReq(42), &replayed).ok());
  EXPECT_EQ(replayed.id(), "ch_3");
  auto marker = again.GetServerInitialMetadata().find("idempotency-replayed");
  ASSERT_NE(marker, again.GetServerInitialMetadata().end());
  EXPECT_EQ(runs(), 3);
}

TEST_F(GrpcMiddlewareTest, LongHandlerKeepsItsLeaseThroughHeartbeats) {
  MiddlewareOptions options = RequiredKeyOptions();
  options.lease = absl::Seconds(1);
  options.heartbeat_interval = absl::Milliseconds(250);
  std::atomic<int> charges{0};
  HandlerFn charge = Charger(&charges);
  StartApp(options, [&](const CreateChargeRequest& req, Charge* out,
                        ReplyMetadata* metadata) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    return charge(req, out, metadata);
  });
  std::thread owner([&] {
    EXPECT_TRUE(CallCharge(channel(), ChargeReq(7), "long").status.ok());
  });
  // Well past the first lease: only heartbeats can have kept it.
  std::this_thread::sleep_for(std::chrono::milliseconds(1800));
  CallResult during = CallCharge(app().NewChannel(), ChargeReq(7), "long");
  owner.join();
  EXPECT_EQ(during.status.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(runs(), 1);
  EXPECT_TRUE(CallCharge(channel(), ChargeReq(7), "long").replayed());
}

// payments-grpc killed in the middle of a charge: after the lease a retry
// runs the charge again, and the dead owner's token can no longer complete.
TEST_F(GrpcMiddlewareTest, AppServerKilledMidHandlerIsRecoveredAfterTheLease) {
  const std::string port_file = dir().path() + "/doomed.port";
  const pid_t doomed = SpawnProcess(
      {PAYMENTS_GRPC_PATH, "--listen_port=0", "--port_file=" + port_file,
       "--idemkey=" + server().address(), "--lease=1s", "--charge_delay=60s"},
      dir().path() + "/doomed.log");
  const int port = WaitForPortFile(port_file);
  ASSERT_GT(port, 0) << "payments-grpc did not start";
  auto doomed_channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                            grpc::InsecureChannelCredentials());
  std::thread caller(
      [&] { CallCharge(doomed_channel, ChargeReq(9), "crash"); });
  uint64_t dead_token = 0;
  for (int i = 0; i < 500 && dead_token == 0; ++i) {
    auto l = client().Lookup("acme", "crash");
    if (l.status.ok()) dead_token = l.reply.record().fencing_token();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_NE(dead_token, 0u) << "the call never reserved its key";
  kill(doomed, SIGKILL);
  waitpid(doomed, nullptr, 0);
  caller.join();
  doomed_channel.reset();

  std::atomic<int> charges{0};
  StartApp(RequiredKeyOptions(), Charger(&charges));
  EXPECT_EQ(CallCharge(channel(), ChargeReq(9), "crash").status.error_code(),
            grpc::StatusCode::ABORTED);  // the dead owner's lease still runs
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  CallResult retry = CallCharge(channel(), ChargeReq(9), "crash");
  ASSERT_TRUE(retry.status.ok()) << retry.status.error_message();
  EXPECT_FALSE(retry.replayed());
  EXPECT_EQ(runs(), 1);
  EXPECT_EQ(client()
                .Complete("acme", "crash", dead_token, SampleResponse("late"))
                .status.error_code(),
            grpc::StatusCode::ABORTED);
}

// The example app (client/cpp/examples/payments_grpc.cc) as a user runs it.
TEST_F(GrpcMiddlewareTest, PaymentsGrpcExampleChargesOncePerKey) {
  const std::string port_file = dir().path() + "/payments-grpc.port";
  const pid_t app_pid = SpawnProcess(
      {PAYMENTS_GRPC_PATH, "--listen_port=0", "--port_file=" + port_file,
       "--idemkey=" + server().address()},
      dir().path() + "/payments-grpc.log");
  const int port = WaitForPortFile(port_file);
  ASSERT_GT(port, 0) << "payments-grpc did not start";
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                     grpc::InsecureChannelCredentials());

  CallResult first = CallCharge(channel, ChargeReq(1000), "ex-1");
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  EXPECT_EQ(first.charge.id(), "ch_1");
  EXPECT_EQ(first.initial.find("x-charge-id")->second, "ch_1");
  CallResult retry = CallCharge(channel, ChargeReq(1000), "ex-1");
  ASSERT_TRUE(retry.status.ok()) << retry.status.error_message();
  EXPECT_TRUE(retry.replayed());
  EXPECT_EQ(retry.charge.SerializeAsString(), first.charge.SerializeAsString());
  EXPECT_EQ(
      CallCharge(channel, ChargeReq(1000), std::nullopt).status.error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);
  CallResult bad = CallCharge(channel, ChargeReq(0), "ex-2");
  EXPECT_EQ(bad.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  CallResult bad_again = CallCharge(channel, ChargeReq(0), "ex-2");
  EXPECT_EQ(bad_again.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(bad_again.status.error_message(), bad.status.error_message());
  EXPECT_TRUE(bad_again.replayed());
  CallResult second = CallCharge(channel, ChargeReq(1000), "ex-3");
  EXPECT_EQ(second.charge.id(), "ch_2");  // one charge per new key

  channel.reset();
  kill(app_pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(waitpid(app_pid, &status, 0), app_pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

}  // namespace
}  // namespace idemkey::testing
