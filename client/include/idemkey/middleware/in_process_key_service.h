// in_process_key_service.h — the key service inside the test process.
//
// For unit tests of application handlers with the real middleware and no
// running idemkeyd. It runs idemkeyd's own state machine (KeyStore) over the
// in-memory backend, so its answers cannot drift from the server's; only
// durability differs (nothing outlives the object).
//
//   auto keys = std::make_shared<InProcessKeyService>();
//   IdempotencyCore core(keys, MiddlewareOptions{});
//   ... exercise handlers through an adapter ...
//   keys->clock().Advance(absl::Seconds(31));  // let every lease lapse

#ifndef IDEMKEY_MIDDLEWARE_IN_PROCESS_KEY_SERVICE_H_
#define IDEMKEY_MIDDLEWARE_IN_PROCESS_KEY_SERVICE_H_

#include <atomic>

#include "idemkey/client/key_service_client.h"
#include "server/store/clock.h"
#include "server/store/key_store.h"
#include "server/store/memory_backend.h"

namespace idemkey::middleware {

class InProcessKeyService final : public client::KeyServiceClient {
 public:
  // Starts at the current time; tenants are created on first use.
  InProcessKeyService();

  absl::StatusOr<idemkey::v1::ReserveResponse> Reserve(
      const idemkey::v1::ReserveRequest& request) override;
  absl::StatusOr<idemkey::v1::CompleteResponse> Complete(
      const idemkey::v1::CompleteRequest& request) override;
  absl::Status Release(const idemkey::v1::ReleaseRequest& request) override;
  absl::StatusOr<idemkey::v1::HeartbeatResponse> Heartbeat(
      const idemkey::v1::HeartbeatRequest& request) override;

  // The store behind it, for assertions (Lookup, ListRecords).
  store::KeyStore& store() { return store_; }
  // Time as the service sees it; moves only when advanced.
  store::ManualClock& clock() { return clock_; }
  // While set, every call answers UNAVAILABLE, as an unreachable service.
  void SetUnavailable(bool unavailable) { unavailable_ = unavailable; }

 private:
  store::ManualClock clock_;
  store::MemoryBackend backend_;
  store::KeyStore store_;
  std::atomic<bool> unavailable_{false};
};

}  // namespace idemkey::middleware

#endif  // IDEMKEY_MIDDLEWARE_IN_PROCESS_KEY_SERVICE_H_
