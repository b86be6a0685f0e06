// client_idempotency_interceptor.h — stamps an idempotency key on outgoing
// gRPC calls, for app servers that call other idempotent services.
//
// At PRE_SEND_INITIAL_METADATA the interceptor adds `idempotency-key: <a
// random version-4 UUID>` to each call, unless the caller already set one on
// its ClientContext (then that key is kept). A C++ interceptor runs once per
// call, above gRPC's automatic retries: every retry attempt of the call
// resends the same initial metadata, so the server sees the same key on each
// attempt and runs the request at most once.
//
// Create the channel with the interceptor and a retry policy:
//
//   grpc::ChannelArguments args;
//   args.SetServiceConfigJSON(R"json({
//     "methodConfig": [{
//       "name": [{"service": "idemkey.examples.Payments"}],
//       "retryPolicy": {
//         "maxAttempts": 4,
//         "initialBackoff": "0.1s",
//         "maxBackoff": "1s",
//         "backoffMultiplier": 2,
//         "retryableStatusCodes": ["UNAVAILABLE"]
//       }
//     }]
//   })json");
//   std::vector<std::unique_ptr<
//       grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
//   interceptors.push_back(
//       std::make_unique<idemkey::rpc::IdempotencyKeyInterceptorFactory>());
//   auto channel = grpc::experimental::CreateCustomChannelWithInterceptors(
//       "payments:443", grpc::SslCredentials({}), args,
//       std::move(interceptors));
//   auto payments = Payments::NewStub(channel);
//
//   grpc::ClientContext ctx;      // a fresh key, kept across gRPC's retries
//   payments->CreateCharge(&ctx, request, &charge);
//
// gRPC retries an attempt only while no response headers arrived (e.g. the
// server answered UNAVAILABLE at once); see gRFC A6. An application that
// retries by itself makes a new ClientContext per attempt and must carry the
// key over:
//
//   const std::string key = idemkey::client::NewAttemptId();
//   for (int attempt = 0; attempt < 3; ++attempt) {
//     grpc::ClientContext ctx;
//     idemkey::rpc::SetIdempotencyKey(&ctx, key);  // the interceptor keeps it
//     if (payments->CreateCharge(&ctx, request, &charge).ok()) break;
//   }

#ifndef IDEMKEY_GRPC_CLIENT_IDEMPOTENCY_INTERCEPTOR_H_
#define IDEMKEY_GRPC_CLIENT_IDEMPOTENCY_INTERCEPTOR_H_

#include <functional>
#include <string>

#include "absl/strings/string_view.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/client_interceptor.h"
#include "idemkey/grpc/metadata_names.h"

namespace idemkey::rpc {

// Sets the idempotency key of one call (for keys the application chooses or
// carries across its own retries).
void SetIdempotencyKey(grpc::ClientContext* ctx, const std::string& key);

class IdempotencyKeyInterceptorFactory final
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  // Whether calls to a full method name ("/package.Service/Method") get a
  // key; null: every call.
  using MethodFilter = std::function<bool(absl::string_view full_method)>;

  explicit IdempotencyKeyInterceptorFactory(MethodFilter filter = nullptr);

  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo* info) override;

 private:
  MethodFilter filter_;
};

}  // namespace idemkey::rpc

#endif  // IDEMKEY_GRPC_CLIENT_IDEMPOTENCY_INTERCEPTOR_H_
