// key_calls.h — idemkey.v1.KeyService calls applied to a KeyStore.
//
// The one translation between the wire messages and the state machine,
// shared by the gRPC service of idemkeyd and by the in-process test double of
// the client library (idemkey::testing), so the two answer alike:
//
//   idemkey::v1::ReserveResponse resp;
//   absl::Status s = api::Reserve(store, request, &resp);
//
// Every call takes store::CallOptions. With may_wait_for_io false a call may
// answer store::WouldBlockError() having changed nothing, in the store or in
// `*response`; the caller then runs it again, from the start, with
// may_wait_for_io true (server/service/store_call.h).
//
// Thread-safe as the KeyStore is; requests and responses belong to the
// caller and are used only during the call.

#ifndef IDEMKEY_SERVER_API_KEY_CALLS_H_
#define IDEMKEY_SERVER_API_KEY_CALLS_H_

#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "idemkey/v1/idemkey.pb.h"
#include "server/store/call_options.h"
#include "server/store/key_store.h"

namespace idemkey::api {

// `may_create_tenant`: see ReserveArgs.
absl::Status Reserve(store::KeyStore& store,
                     const idemkey::v1::ReserveRequest& request,
                     idemkey::v1::ReserveResponse* response,
                     const store::CallOptions& options = {},
                     bool may_create_tenant = true);
absl::Status Complete(store::KeyStore& store,
                      const idemkey::v1::CompleteRequest& request,
                      idemkey::v1::CompleteResponse* response,
                      const store::CallOptions& options = {});
absl::Status Release(store::KeyStore& store,
                     const idemkey::v1::ReleaseRequest& request,
                     const store::CallOptions& options = {});
absl::Status Heartbeat(store::KeyStore& store,
                       const idemkey::v1::HeartbeatRequest& request,
                       idemkey::v1::HeartbeatResponse* response,
                       const store::CallOptions& options = {});
absl::Status Lookup(store::KeyStore& store,
                    const idemkey::v1::LookupRequest& request,
                    idemkey::v1::LookupResponse* response,
                    const store::CallOptions& options = {});

// Ops a Batch may carry.
inline constexpr int kMaxBatchOps = 1000;

// May the caller touch this tenant's records? OK or the refusal.
using AuthorizeTenant = absl::FunctionRef<absl::Status(absl::string_view)>;
// May the caller's Reserve create this unknown tenant?
using MayCreateTenant = absl::FunctionRef<bool(absl::string_view)>;

// One op of a Batch or a Stream, authorized and applied exactly as its own
// call would be: OK with the op's response in `result`, or the call's error
// (WouldBlockError: nothing changed, run it again allowed to wait).
absl::Status RunOp(store::KeyStore& store, const idemkey::v1::BatchOp& op,
                   AuthorizeTenant authorize, MayCreateTenant may_create,
                   idemkey::v1::BatchResult* result,
                   const store::CallOptions& options = {});

// `s`, an op's error, as its result: the code and message, no response.
void SetOpError(const absl::Status& s, idemkey::v1::BatchResult* result);

// The record an op touches, as (tenant, key); empty for an op with no call.
// Views into `op`.
std::pair<absl::string_view, absl::string_view> RecordOf(
    const idemkey::v1::BatchOp& op);

}  // namespace idemkey::api

#endif  // IDEMKEY_SERVER_API_KEY_CALLS_H_
