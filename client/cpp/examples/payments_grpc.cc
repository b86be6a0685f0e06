// payments-grpc — a small gRPC payments API protected by idemkey.
//
// Payments/CreateCharge creates a charge; a client that retries with the same
// `idempotency-key` metadata and request gets the first charge back (with
// `idempotency-replayed: true`) instead of a second one. The tenant is the
// `x-org-id` metadata; calls without it are not protected. The API is
// proto/idemkey/examples/payments.proto; the example apps of every language
// follow the same contract (tests/conformance/README.md).
//
//   idemkeyd --listen=127.0.0.1:50051 &
//   payments-grpc --listen_port=50052 --idemkey=127.0.0.1:50051 &
//   grpcurl -plaintext -import-path proto -proto
//   idemkey/examples/payments.proto
//     -H 'x-org-id: acme' -H 'idempotency-key: 5f0c...'
//     -d '{"amount": 1000, "currency": "EUR"}'
//     127.0.0.1:50052 idemkey.examples.Payments/CreateCharge   (one line)
//
// A charge of a non-positive amount answers INVALID_ARGUMENT, which is
// stored and replayed like any answer. --charge_delay makes each charge take
// that long (to see ABORTED and lease heartbeats). A call with metadata
// `x-fail: throw` throws after the delay, without charging: the middleware
// releases the key and the call ends INTERNAL.

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "example_flags.h"
#include "grpcpp/grpcpp.h"
#include "idemkey/client/client.h"
#include "idemkey/examples/payments.grpc.pb.h"
#include "idemkey/grpc/server_idempotency.h"
#include "idemkey/rules/tenant_name.h"

ABSL_FLAG(int, listen_port, 50052, "gRPC port on 127.0.0.1 (0: any free port)");
ABSL_FLAG(std::string, port_file, "", "write the bound port here");
ABSL_FLAG(absl::Duration, charge_delay, absl::ZeroDuration(),
          "time each charge takes");

namespace {

using idemkey::examples::Charge;
using idemkey::examples::CreateChargeRequest;
using idemkey::rpc::GrpcServerIdempotency;
using idemkey::rpc::ReplyMetadata;

std::string OrgId(grpc::CallbackServerContext* ctx) {
  auto it = ctx->client_metadata().find("x-org-id");
  if (it == ctx->client_metadata().end()) return "";  // no tenant: bypass
  // Any org id maps to a valid tenant name.
  return idemkey::rules::TenantNameFor(
      absl::string_view(it->second.data(), it->second.size()));
}

bool ShouldThrow(grpc::CallbackServerContext* ctx) {
  auto it = ctx->client_metadata().find("x-fail");
  return it != ctx->client_metadata().end() && it->second == "throw";
}

class PaymentsService final
    : public idemkey::examples::Payments::CallbackService {
 public:
  PaymentsService(std::shared_ptr<idemkey::middleware::IdempotencyCore> core,
                  absl::Duration delay)
      : idempotency_(std::move(core), OrgId), delay_(delay) {}

  grpc::ServerUnaryReactor* CreateCharge(grpc::CallbackServerContext* ctx,
                                         const CreateChargeRequest* request,
                                         Charge* charge) override {
    return idempotency_.Handle(
        ctx, request, charge, "/idemkey.examples.Payments/CreateCharge",
        [this, fail = ShouldThrow(ctx)](const CreateChargeRequest& req,
                                        Charge* out, ReplyMetadata* metadata) {
          if (req.amount() <= 0) {
            return grpc::Status(
                grpc::StatusCode::INVALID_ARGUMENT,
                absl::StrCat("amount must be positive, not ", req.amount()));
          }
          absl::SleepFor(delay_);
          if (fail)
            throw std::runtime_error("the charge failed (x-fail: throw)");
          out->set_id(absl::StrCat("ch_", ++charges_));
          out->set_amount(req.amount());
          out->set_currency(req.currency());
          out->set_description(req.description());
          metadata->AddInitial("x-charge-id", out->id());
          return grpc::Status::OK;
        });
  }

 private:
  GrpcServerIdempotency idempotency_;
  const absl::Duration delay_;
  std::atomic<int> charges_{0};
};

}  // namespace

int main(int argc, char** argv) {
  idemkey::examples::SetUpUsage(
      "payments_grpc.cc",
      "a gRPC payments API protected by idemkey\n"
      "usage: payments-grpc [--listen_port=50052] [--idemkey=HOST:PORT] "
      "[flags]");
  absl::ParseCommandLine(argc, argv);
  // SIGINT and SIGTERM shut the server down cleanly: blocked here, before
  // any thread starts (threads inherit the mask), and awaited at the end.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<idemkey::client::ClientOptions> client_options =
      idemkey::examples::ClientOptionsFromFlags();
  if (!client_options.ok()) {
    std::cerr << "payments-grpc: " << client_options.status().message() << "\n";
    return 1;
  }
  // One client (one channel) per process, shared by every call.
  auto keys = idemkey::client::Client::Create(*client_options);

  // Covers every wrapped method (method "grpc"); UNAVAILABLE and
  // RESOURCE_EXHAUSTED answers are released, not stored.
  idemkey::middleware::MiddlewareOptions options =
      idemkey::rpc::DefaultGrpcOptions();
  options.require_key = true;
  idemkey::examples::ApplyMiddlewareFlags(&options);
  auto core =
      std::make_shared<idemkey::middleware::IdempotencyCore>(keys, options);
  PaymentsService service(core, absl::GetFlag(FLAGS_charge_delay));

  int port = 0;
  grpc::ServerBuilder builder;
  const std::string listen =
      absl::StrCat("127.0.0.1:", absl::GetFlag(FLAGS_listen_port));
  // gRPC lets a second server bind the same port by default; an app server
  // should fail to start instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::cerr << "payments-grpc: cannot listen on " << listen << "\n";
    return 1;
  }
  if (const std::string file = absl::GetFlag(FLAGS_port_file); !file.empty()) {
    std::ofstream(file + ".tmp") << port << "\n";
    std::rename((file + ".tmp").c_str(), file.c_str());
  }
  std::cerr << "payments-grpc listening on port " << port << ", idemkeyd at "
            << client_options->address << "\n";
  int sig = 0;
  sigwait(&signals, &sig);
  server->Shutdown();
  return 0;
}
