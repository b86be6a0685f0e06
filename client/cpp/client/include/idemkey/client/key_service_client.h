// key_service_client.h — the four calls an application server makes on the
// key service, as an interface.
//
// The middleware (idemkey/middleware/core.h) talks to this interface only.
// Two implementations: idemkey::client::Client, over gRPC to idemkeyd, and
// idemkey::middleware::InProcessKeyService, the test double that runs the
// server's own state machine in memory.
//
//   std::shared_ptr<KeyServiceClient> keys = Client::Create(options);
//   absl::StatusOr<idemkey::v1::ReserveResponse> r = keys->Reserve(request);

#ifndef IDEMKEY_CLIENT_KEY_SERVICE_CLIENT_H_
#define IDEMKEY_CLIENT_KEY_SERVICE_CLIENT_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "idemkey/v1/idemkey.pb.h"

namespace idemkey::client {

// Thread-safe. Errors carry the gRPC status codes of idemkey.proto.
class KeyServiceClient {
 public:
  virtual ~KeyServiceClient() = default;

  virtual absl::StatusOr<idemkey::v1::ReserveResponse> Reserve(
      const idemkey::v1::ReserveRequest& request) = 0;
  virtual absl::StatusOr<idemkey::v1::CompleteResponse> Complete(
      const idemkey::v1::CompleteRequest& request) = 0;
  virtual absl::Status Release(const idemkey::v1::ReleaseRequest& request) = 0;
  virtual absl::StatusOr<idemkey::v1::HeartbeatResponse> Heartbeat(
      const idemkey::v1::HeartbeatRequest& request) = 0;
};

}  // namespace idemkey::client

#endif  // IDEMKEY_CLIENT_KEY_SERVICE_CLIENT_H_
