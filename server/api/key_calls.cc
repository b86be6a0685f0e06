#include "server/api/key_calls.h"

#include <string>
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

absl::Status RunOp(store::KeyStore& store, const idemkey::v1::BatchOp& op,
                   AuthorizeTenant authorize, MayCreateTenant may_create,
                   idemkey::v1::BatchResult* result,
                   const store::CallOptions& options) {
  absl::Status s;
  switch (op.call_case()) {
    case idemkey::v1::BatchOp::kReserve:
      if (s = authorize(op.reserve().tenant()); !s.ok()) return s;
      return Reserve(store, op.reserve(), result->mutable_reserve(), options,
                     may_create(op.reserve().tenant()));
    case idemkey::v1::BatchOp::kComplete:
      if (s = authorize(op.complete().tenant()); !s.ok()) return s;
      return Complete(store, op.complete(), result->mutable_complete(),
                      options);
    case idemkey::v1::BatchOp::kRelease:
      if (s = authorize(op.release().tenant()); !s.ok()) return s;
      result->mutable_release();
      return Release(store, op.release(), options);
    case idemkey::v1::BatchOp::kHeartbeat:
      if (s = authorize(op.heartbeat().tenant()); !s.ok()) return s;
      return Heartbeat(store, op.heartbeat(), result->mutable_heartbeat(),
                       options);
    case idemkey::v1::BatchOp::kLookup:
      if (s = authorize(op.lookup().tenant()); !s.ok()) return s;
      return Lookup(store, op.lookup(), result->mutable_lookup(), options);
    case idemkey::v1::BatchOp::CALL_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(
      "a batch op has no call; set one of reserve, complete, release, "
      "heartbeat or lookup");
}

absl::Status Reserve(store::KeyStore& store,
                     const idemkey::v1::ReserveRequest& request,
                     idemkey::v1::ReserveResponse* response,
                     const store::CallOptions& options,
                     bool may_create_tenant) {
  absl::StatusOr<store::ReserveResult> r = store.Reserve(
      {
          .tenant = request.tenant(),
          .key = request.key(),
          .fingerprint = request.fingerprint(),
          .attempt_id = request.attempt_id(),
          .lease_ms = DurationMillis(request.lease()),
          .ttl_ms = DurationMillis(request.ttl()),
          .may_create_tenant = may_create_tenant,
      },
      options);
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
                      idemkey::v1::CompleteResponse* response,
                      const store::CallOptions& options) {
  absl::StatusOr<int64_t> expires_ms =
      store.Complete(request.tenant(), request.key(), request.fencing_token(),
                     request.response(), options);
  if (!expires_ms.ok()) return expires_ms.status();
  *response->mutable_expires_at() = ToTimestamp(*expires_ms);
  return absl::OkStatus();
}

absl::Status Release(store::KeyStore& store,
                     const idemkey::v1::ReleaseRequest& request,
                     const store::CallOptions& options) {
  return store.Release(request.tenant(), request.key(), request.fencing_token(),
                       options);
}

absl::Status Heartbeat(store::KeyStore& store,
                       const idemkey::v1::HeartbeatRequest& request,
                       idemkey::v1::HeartbeatResponse* response,
                       const store::CallOptions& options) {
  absl::StatusOr<int64_t> lease_expires_ms =
      store.Heartbeat(request.tenant(), request.key(), request.fencing_token(),
                      DurationMillis(request.lease()), options);
  if (!lease_expires_ms.ok()) return lease_expires_ms.status();
  *response->mutable_lease_expires_at() = ToTimestamp(*lease_expires_ms);
  return absl::OkStatus();
}

absl::Status Lookup(store::KeyStore& store,
                    const idemkey::v1::LookupRequest& request,
                    idemkey::v1::LookupResponse* response,
                    const store::CallOptions& options) {
  absl::StatusOr<store::Record> record =
      store.Lookup(request.tenant(), request.key(), options);
  if (!record.ok()) return record.status();
  *response->mutable_record() = ToProto(std::move(*record));
  return absl::OkStatus();
}

void SetOpError(const absl::Status& s, idemkey::v1::BatchResult* result) {
  result->clear_response();
  result->set_code(static_cast<int32_t>(s.code()));
  result->set_message(std::string(s.message()));
}

std::pair<absl::string_view, absl::string_view> RecordOf(
    const idemkey::v1::BatchOp& op) {
  switch (op.call_case()) {
    case idemkey::v1::BatchOp::kReserve:
      return {op.reserve().tenant(), op.reserve().key()};
    case idemkey::v1::BatchOp::kComplete:
      return {op.complete().tenant(), op.complete().key()};
    case idemkey::v1::BatchOp::kRelease:
      return {op.release().tenant(), op.release().key()};
    case idemkey::v1::BatchOp::kHeartbeat:
      return {op.heartbeat().tenant(), op.heartbeat().key()};
    case idemkey::v1::BatchOp::kLookup:
      return {op.lookup().tenant(), op.lookup().key()};
    case idemkey::v1::BatchOp::CALL_NOT_SET:
      break;
  }
  return {};
}

}  // namespace idemkey::api
