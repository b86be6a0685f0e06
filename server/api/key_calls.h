// key_calls.h — idemkey.v1.KeyService calls applied to a KeyStore.
//
// The one translation between the wire messages and the state machine,
// shared by the gRPC service of idemkeyd and by the in-process test double of
// the client library, so the two answer alike:
//
//   idemkey::v1::ReserveResponse resp;
//   absl::Status s = api::Reserve(store, request, &resp);

#ifndef IDEMKEY_SERVER_API_KEY_CALLS_H_
#define IDEMKEY_SERVER_API_KEY_CALLS_H_

#include "absl/status/status.h"
#include "idemkey/v1/idemkey.pb.h"
#include "server/store/key_store.h"

namespace idemkey::api {

absl::Status Reserve(store::KeyStore& store,
                     const idemkey::v1::ReserveRequest& request,
                     idemkey::v1::ReserveResponse* response);
absl::Status Complete(store::KeyStore& store,
                      const idemkey::v1::CompleteRequest& request,
                      idemkey::v1::CompleteResponse* response);
absl::Status Release(store::KeyStore& store,
                     const idemkey::v1::ReleaseRequest& request);
absl::Status Heartbeat(store::KeyStore& store,
                       const idemkey::v1::HeartbeatRequest& request,
                       idemkey::v1::HeartbeatResponse* response);
absl::Status Lookup(store::KeyStore& store,
                    const idemkey::v1::LookupRequest& request,
                    idemkey::v1::LookupResponse* response);

}  // namespace idemkey::api

#endif  // IDEMKEY_SERVER_API_KEY_CALLS_H_
