#include "server/api/key_calls.h"

#include <utility>

#include "server/api/convert.h"

namespace idemkey::api {
namespace {

idemkey::v1::Outcome ToProto(store::ReserveOutcome outcome) {
  switch (outcome) {
    case store::ReserveOutcome::kOwner:
      return idemkey::v1::OUTCOME_OWNER;
    case store::ReserveOutcome::kInProgress:
      return idemkey::v1::OUTCOME_IN_PROGRESS;
    case store::ReserveOutcome::kCompleted:
      return idemkey::v1::OUTCOME_COMPLETED;
    case store::ReserveOutcome::kMismatch:
      return idemkey::v1::OUTCOME_MISMATCH;
  }
  return idemkey::v1::OUTCOME_UNSPECIFIED;
}

}  // namespace

absl::Status Reserve(store::KeyStore& store,
                     const idemkey::v1::ReserveRequest& request,
                     idemkey::v1::ReserveResponse* response) {
  absl::StatusOr<store::ReserveResult> r = store.Reserve({
      .tenant = request.tenant(),
      .key = request.key(),
      .fingerprint = request.fingerprint(),
      .attempt_id = request.attempt_id(),
      .lease_ms = DurationMillis(request.lease()),
      .ttl_ms = DurationMillis(request.ttl()),
  });
  if (!r.ok()) return r.status();
  response->set_outcome(ToProto(r->outcome));
  if (r->outcome == store::ReserveOutcome::kOwner) {
    response->set_fencing_token(r->fencing_token);
  }
  if (r->lease_expires_ms != 0) {
    *response->mutable_lease_expires_at() = ToTimestamp(r->lease_expires_ms);
  }
  if (r->expires_ms != 0) {
    *response->mutable_expires_at() = ToTimestamp(r->expires_ms);
  }
  if (r->outcome == store::ReserveOutcome::kCompleted) {
    response->mutable_response()->Swap(&r->response);
  }
  return absl::OkStatus();
}

absl::Status Complete(store::KeyStore& store,
                      const idemkey::v1::CompleteRequest& request,
                      idemkey::v1::CompleteResponse* response) {
  absl::StatusOr<int64_t> expires_ms =
      store.Complete(request.tenant(), request.key(), request.fencing_token(),
                     request.response());
  if (!expires_ms.ok()) return expires_ms.status();
  *response->mutable_expires_at() = ToTimestamp(*expires_ms);
  return absl::OkStatus();
}

absl::Status Release(store::KeyStore& store,
                     const idemkey::v1::ReleaseRequest& request) {
  return store.Release(request.tenant(), request.key(),
                       request.fencing_token());
}

absl::Status Heartbeat(store::KeyStore& store,
                       const idemkey::v1::HeartbeatRequest& request,
                       idemkey::v1::HeartbeatResponse* response) {
  absl::StatusOr<int64_t> lease_expires_ms =
      store.Heartbeat(request.tenant(), request.key(), request.fencing_token(),
                      DurationMillis(request.lease()));
  if (!lease_expires_ms.ok()) return lease_expires_ms.status();
  *response->mutable_lease_expires_at() = ToTimestamp(*lease_expires_ms);
  return absl::OkStatus();
}

absl::Status Lookup(store::KeyStore& store,
                    const idemkey::v1::LookupRequest& request,
                    idemkey::v1::LookupResponse* response) {
  absl::StatusOr<store::Record> record =
      store.Lookup(request.tenant(), request.key());
  if (!record.ok()) return record.status();
  *response->mutable_record() = ToProto(std::move(*record));
  return absl::OkStatus();
}

}  // namespace idemkey::api
