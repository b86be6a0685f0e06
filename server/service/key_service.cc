#include "server/service/key_service.h"

#include "server/service/convert.h"
#include "server/service/run_on_pool.h"

namespace idemkey::service {
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

grpc::ServerUnaryReactor* KeyServiceImpl::Reserve(
    grpc::CallbackServerContext* ctx, const idemkey::v1::ReserveRequest* req,
    idemkey::v1::ReserveResponse* resp) {
  return RunOnPool(ctx, pool_, [this, req, resp] {
    absl::StatusOr<store::ReserveResult> r = store_->Reserve({
        .tenant = req->tenant(),
        .key = req->key(),
        .fingerprint = req->fingerprint(),
        .attempt_id = req->attempt_id(),
        .lease_ms = DurationMillis(req->lease()),
        .ttl_ms = DurationMillis(req->ttl()),
    });
    if (!r.ok()) return ToGrpcStatus(r.status());
    resp->set_outcome(ToProto(r->outcome));
    if (r->outcome == store::ReserveOutcome::kOwner) {
      resp->set_fencing_token(r->fencing_token);
    }
    if (r->lease_expires_ms != 0) {
      *resp->mutable_lease_expires_at() = ToTimestamp(r->lease_expires_ms);
    }
    if (r->expires_ms != 0) {
      *resp->mutable_expires_at() = ToTimestamp(r->expires_ms);
    }
    if (r->outcome == store::ReserveOutcome::kCompleted) {
      resp->mutable_response()->Swap(&r->response);
    }
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* KeyServiceImpl::Complete(
    grpc::CallbackServerContext* ctx, const idemkey::v1::CompleteRequest* req,
    idemkey::v1::CompleteResponse* resp) {
  return RunOnPool(ctx, pool_, [this, req, resp] {
    absl::StatusOr<int64_t> expires_ms = store_->Complete(
        req->tenant(), req->key(), req->fencing_token(), req->response());
    if (!expires_ms.ok()) return ToGrpcStatus(expires_ms.status());
    *resp->mutable_expires_at() = ToTimestamp(*expires_ms);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* KeyServiceImpl::Release(
    grpc::CallbackServerContext* ctx, const idemkey::v1::ReleaseRequest* req,
    idemkey::v1::ReleaseResponse* /*resp*/) {
  return RunOnPool(ctx, pool_, [this, req] {
    return ToGrpcStatus(
        store_->Release(req->tenant(), req->key(), req->fencing_token()));
  });
}

grpc::ServerUnaryReactor* KeyServiceImpl::Heartbeat(
    grpc::CallbackServerContext* ctx, const idemkey::v1::HeartbeatRequest* req,
    idemkey::v1::HeartbeatResponse* resp) {
  return RunOnPool(ctx, pool_, [this, req, resp] {
    absl::StatusOr<int64_t> lease_expires_ms =
        store_->Heartbeat(req->tenant(), req->key(), req->fencing_token(),
                          DurationMillis(req->lease()));
    if (!lease_expires_ms.ok()) return ToGrpcStatus(lease_expires_ms.status());
    *resp->mutable_lease_expires_at() = ToTimestamp(*lease_expires_ms);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* KeyServiceImpl::Lookup(
    grpc::CallbackServerContext* ctx, const idemkey::v1::LookupRequest* req,
    idemkey::v1::LookupResponse* resp) {
  return RunOnPool(ctx, pool_, [this, req, resp] {
    absl::StatusOr<store::Record> record =
        store_->Lookup(req->tenant(), req->key());
    if (!record.ok()) return ToGrpcStatus(record.status());
    *resp->mutable_record() = ToProto(std::move(*record));
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* KeyServiceImpl::Ping(
    grpc::CallbackServerContext* ctx, const idemkey::v1::PingRequest* /*req*/,
    idemkey::v1::PingResponse* /*resp*/) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace idemkey::service
