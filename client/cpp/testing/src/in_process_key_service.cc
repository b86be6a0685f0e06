#include "idemkey/testing/in_process_key_service.h"

#include <atomic>

#include "absl/time/clock.h"
#include "server/api/key_calls.h"
#include "server/store/clock.h"
#include "server/store/key_store.h"
#include "server/store/memory_backend.h"

namespace idemkey::testing {
namespace {

absl::Status Unreachable() {
  return absl::UnavailableError("in-process key service set unavailable");
}

store::KeyStoreOptions StoreOptions(const store::Clock* clock) {
  store::KeyStoreOptions options;
  options.clock = clock;
  return options;
}

// Runs `call` with a fresh response unless the service is set unavailable.
template <typename Response, typename Call>
absl::StatusOr<Response> Answer(const std::atomic<bool>& unavailable,
                                Call call) {
  if (unavailable) return Unreachable();
  Response response;
  if (absl::Status s = call(&response); !s.ok()) return s;
  return response;
}

}  // namespace

struct InProcessKeyService::Store {
  Store()
      : clock(absl::ToUnixMillis(absl::Now())),
        backend(/*max_tenants=*/1000, &clock),
        keys(&backend, StoreOptions(&clock)) {}

  store::ManualClock clock;
  store::MemoryBackend backend;
  store::KeyStore keys;
  std::atomic<bool> unavailable{false};
};

InProcessKeyService::InProcessKeyService()
    : store_(std::make_unique<Store>()) {}

InProcessKeyService::~InProcessKeyService() = default;

absl::StatusOr<idemkey::v1::ReserveResponse> InProcessKeyService::Reserve(
    const idemkey::v1::ReserveRequest& request) {
  return Answer<idemkey::v1::ReserveResponse>(
      store_->unavailable, [&](idemkey::v1::ReserveResponse* response) {
        return api::Reserve(store_->keys, request, response);
      });
}

absl::StatusOr<idemkey::v1::CompleteResponse> InProcessKeyService::Complete(
    const idemkey::v1::CompleteRequest& request) {
  return Answer<idemkey::v1::CompleteResponse>(
      store_->unavailable, [&](idemkey::v1::CompleteResponse* response) {
        return api::Complete(store_->keys, request, response);
      });
}

absl::Status InProcessKeyService::Release(
    const idemkey::v1::ReleaseRequest& request) {
  if (store_->unavailable) return Unreachable();
  return api::Release(store_->keys, request);
}

absl::StatusOr<idemkey::v1::HeartbeatResponse> InProcessKeyService::Heartbeat(
    const idemkey::v1::HeartbeatRequest& request) {
  return Answer<idemkey::v1::HeartbeatResponse>(
      store_->unavailable, [&](idemkey::v1::HeartbeatResponse* response) {
        return api::Heartbeat(store_->keys, request, response);
      });
}

absl::StatusOr<idemkey::v1::LookupResponse> InProcessKeyService::Lookup(
    const idemkey::v1::LookupRequest& request) {
  return Answer<idemkey::v1::LookupResponse>(
      store_->unavailable, [&](idemkey::v1::LookupResponse* response) {
        return api::Lookup(store_->keys, request, response);
      });
}

absl::Time InProcessKeyService::Now() const {
  return absl::FromUnixMillis(store_->clock.NowMillis());
}

void InProcessKeyService::AdvanceClock(absl::Duration d) {
  store_->clock.Advance(d);
}

void InProcessKeyService::SetUnavailable(bool unavailable) {
  store_->unavailable = unavailable;
}

}  // namespace idemkey::testing
