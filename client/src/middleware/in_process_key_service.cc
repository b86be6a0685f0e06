#include "idemkey/middleware/in_process_key_service.h"

#include "absl/time/clock.h"
#include "server/api/key_calls.h"

namespace idemkey::middleware {
namespace {

absl::Status Unreachable() {
  return absl::UnavailableError("in-process key service set unavailable");
}

store::KeyStoreOptions StoreOptions(const store::Clock* clock) {
  store::KeyStoreOptions options;
  options.clock = clock;
  return options;
}

}  // namespace

InProcessKeyService::InProcessKeyService()
    : clock_(absl::ToUnixMillis(absl::Now())),
      backend_(/*max_tenants=*/1000, &clock_),
      store_(&backend_, StoreOptions(&clock_)) {}

absl::StatusOr<idemkey::v1::ReserveResponse> InProcessKeyService::Reserve(
    const idemkey::v1::ReserveRequest& request) {
  if (unavailable_) return Unreachable();
  idemkey::v1::ReserveResponse response;
  if (absl::Status s = api::Reserve(store_, request, &response); !s.ok()) {
    return s;
  }
  return response;
}

absl::StatusOr<idemkey::v1::CompleteResponse> InProcessKeyService::Complete(
    const idemkey::v1::CompleteRequest& request) {
  if (unavailable_) return Unreachable();
  idemkey::v1::CompleteResponse response;
  if (absl::Status s = api::Complete(store_, request, &response); !s.ok()) {
    return s;
  }
  return response;
}

absl::Status InProcessKeyService::Release(
    const idemkey::v1::ReleaseRequest& request) {
  if (unavailable_) return Unreachable();
  return api::Release(store_, request);
}

absl::StatusOr<idemkey::v1::HeartbeatResponse> InProcessKeyService::Heartbeat(
    const idemkey::v1::HeartbeatRequest& request) {
  if (unavailable_) return Unreachable();
  idemkey::v1::HeartbeatResponse response;
  if (absl::Status s = api::Heartbeat(store_, request, &response); !s.ok()) {
    return s;
  }
  return response;
}

}  // namespace idemkey::middleware
