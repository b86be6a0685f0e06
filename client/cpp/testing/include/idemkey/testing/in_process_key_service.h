// in_process_key_service.h — the key service inside the test process.
//
// For unit tests of application handlers with the real middleware and no
// running idemkeyd. It runs idemkeyd's own state machine over the in-memory
// backend, so its answers cannot drift from the server's; only durability
// differs (nothing outlives the object). Link idemkey::testing.
//
//   auto keys = std::make_shared<idemkey::testing::InProcessKeyService>();
//   IdempotencyCore core(keys, MiddlewareOptions{});
//   ... exercise handlers through an adapter ...
//   keys->AdvanceClock(absl::Seconds(31));  // let every lease lapse
//
// Thread-safe.

#ifndef IDEMKEY_TESTING_IN_PROCESS_KEY_SERVICE_H_
#define IDEMKEY_TESTING_IN_PROCESS_KEY_SERVICE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "idemkey/client/key_service_client.h"
#include "idemkey/v1/idemkey.pb.h"

namespace idemkey::testing {

class InProcessKeyService final : public client::KeyServiceClient {
 public:
  // Its clock starts at the current time and moves only when advanced;
  // tenants are created on first use.
  InProcessKeyService();
  ~InProcessKeyService() override;

  absl::StatusOr<idemkey::v1::ReserveResponse> Reserve(
      const idemkey::v1::ReserveRequest& request) override;
  absl::StatusOr<idemkey::v1::CompleteResponse> Complete(
      const idemkey::v1::CompleteRequest& request) override;
  absl::Status Release(const idemkey::v1::ReleaseRequest& request) override;
  absl::StatusOr<idemkey::v1::HeartbeatResponse> Heartbeat(
      const idemkey::v1::HeartbeatRequest& request) override;
  // What idemkeyd's Lookup would answer, for assertions.
  absl::StatusOr<idemkey::v1::LookupResponse> Lookup(
      const idemkey::v1::LookupRequest& request);

  // Time as the service sees it.
  absl::Time Now() const;
  void AdvanceClock(absl::Duration d);
  // While set, every call answers UNAVAILABLE, as an unreachable service.
  void SetUnavailable(bool unavailable);
  // While not OK, every call answers `failure` (CANCELLED as from a
  // draining server, PERMISSION_DENIED as for a wrong token, ...).
  void SetFailure(absl::Status failure);

 private:
  struct Store;  // the store core, out of this header
  const std::unique_ptr<Store> store_;
};

}  // namespace idemkey::testing

#endif  // IDEMKEY_TESTING_IN_PROCESS_KEY_SERVICE_H_
