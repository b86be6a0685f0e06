#include "idemkey/testing/in_process_key_service.h"

#include "absl/base/thread_annotations.h"
#include "absl/time/clock.h"
#include "idemkey/sync/mutex.h"
#include "server/api/key_calls.h"
#include "server/store/clock.h"
#include "server/store/key_store.h"
#include "server/store/memory_backend.h"

namespace idemkey::testing {
namespace {

store::KeyStoreOptions StoreOptions(const store::Clock* clock) {
  store::KeyStoreOptions options;
  options.clock = clock;
  return options;
}

}  // namespace

struct InProcessKeyService::Store {
  Store()
      : clock(absl::ToUnixMillis(absl::Now())),
        backend(/*max_tenants=*/1000, &clock),
        keys(&backend, StoreOptions(&clock)) {}

  absl::Status Failure() {
    sync::MutexLock lock(&mu);
    return failure;
  }

  // Runs `call` with a fresh response unless calls are set to fail.
  template <typename Response, typename Call>
  absl::StatusOr<Response> Answer(Call call) {
    if (absl::Status s = Failure(); !s.ok()) return s;
    Response response;
    if (absl::Status s = call(&response); !s.ok()) return s;
    return response;
  }

  store::ManualClock clock;
  store::MemoryBackend backend;
  store::KeyStore keys;
  sync::Mutex mu;
  absl::Status failure ABSL_GUARDED_BY(mu);
};

InProcessKeyService::InProcessKeyService()
    : store_(std::make_unique<Store>()) {}

InProcessKeyService::~InProcessKeyService() = default;

absl::StatusOr<idemkey::v1::ReserveResponse> InProcessKeyService::Reserve(
    const idemkey::v1::ReserveRequest& request) {
  return store_->Answer<idemkey::v1::ReserveResponse>(
      [&](idemkey::v1::ReserveResponse* response) {
        return api::Reserve(store_->keys, request, response);
      });
}

absl::StatusOr<idemkey::v1::CompleteResponse> InProcessKeyService::Complete(
    const idemkey::v1::CompleteRequest& request) {
  return store_->Answer<idemkey::v1::CompleteResponse>(
      [&](idemkey::v1::CompleteResponse* response) {
        return api::Complete(store_->keys, request, response);
      });
}

absl::Status InProcessKeyService::Release(
    const idemkey::v1::ReleaseRequest& request) {
  if (absl::Status s = store_->Failure(); !s.ok()) return s;
  return api::Release(store_->keys, request);
}

absl::StatusOr<idemkey::v1::HeartbeatResponse> InProcessKeyService::Heartbeat(
    const idemkey::v1::HeartbeatRequest& request) {
  return store_->Answer<idemkey::v1::HeartbeatResponse>(
      [&](idemkey::v1::HeartbeatResponse* response) {
        return api::Heartbeat(store_->keys, request, response);
      });
}

absl::StatusOr<idemkey::v1::LookupResponse> InProcessKeyService::Lookup(
    const idemkey::v1::LookupRequest& request) {
  return store_->Answer<idemkey::v1::LookupResponse>(
      [&](idemkey::v1::LookupResponse* response) {
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
  SetFailure(unavailable ? absl::UnavailableError(
                               "in-process key service set unavailable")
                         : absl::OkStatus());
}

void InProcessKeyService::SetFailure(absl::Status failure) {
  sync::MutexLock lock(&store_->mu);
  store_->failure = std::move(failure);
}

}  // namespace idemkey::testing
