#include "idemkey/grpc/client_idempotency_interceptor.h"

#include <map>
#include <string>
#include <utility>

#include "idemkey/client/client.h"

namespace idemkey::rpc {
namespace {

using grpc::experimental::InterceptionHookPoints;

class IdempotencyKeyInterceptor final : public grpc::experimental::Interceptor {
 public:
  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      std::multimap<std::string, std::string>* metadata =
          methods->GetSendInitialMetadata();
      // Once per call: gRPC's retries resend this metadata as it is now.
      if (metadata->count(kIdempotencyKeyMetadata) == 0) {
        metadata->emplace(kIdempotencyKeyMetadata, client::NewAttemptId());
      }
    }
    methods->Proceed();
  }
};

}  // namespace

void SetIdempotencyKey(grpc::ClientContext* ctx, const std::string& key) {
  ctx->AddMetadata(kIdempotencyKeyMetadata, key);
}

IdempotencyKeyInterceptorFactory::IdempotencyKeyInterceptorFactory(
    MethodFilter filter)
    : filter_(std::move(filter)) {}

grpc::experimental::Interceptor*
IdempotencyKeyInterceptorFactory::CreateClientInterceptor(
    grpc::experimental::ClientRpcInfo* info) {
  if (filter_ && !filter_(info->method() != nullptr ? info->method() : "")) {
    return nullptr;  // no interceptor for this call
  }
  return new IdempotencyKeyInterceptor;
}

}  // namespace idemkey::rpc
