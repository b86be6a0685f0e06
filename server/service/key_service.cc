#include "server/service/key_service.h"

#include "absl/strings/str_cat.h"
#include "server/api/key_calls.h"
#include "server/service/authorized.h"
#include "server/service/store_call.h"
#include "server/store/blocking.h"

namespace idemkey::service {

grpc::ServerUnaryReactor* KeyServiceImpl::Reserve(
    grpc::CallbackServerContext* ctx, const idemkey::v1::ReserveRequest* req,
    idemkey::v1::ReserveResponse* resp) {
  return StartStoreCall(
      ctx, pool_, store_,
      ForTenantOf(auth_, ctx, req->tenant(), [this, req, resp] {
        return api::Reserve(*store_, *req, resp);
      }));
}

grpc::ServerUnaryReactor* KeyServiceImpl::Complete(
    grpc::CallbackServerContext* ctx, const idemkey::v1::CompleteRequest* req,
    idemkey::v1::CompleteResponse* resp) {
  return StartStoreCall(
      ctx, pool_, store_,
      ForTenantOf(auth_, ctx, req->tenant(), [this, req, resp] {
        return api::Complete(*store_, *req, resp);
      }));
}

grpc::ServerUnaryReactor* KeyServiceImpl::Release(
    grpc::CallbackServerContext* ctx, const idemkey::v1::ReleaseRequest* req,
    idemkey::v1::ReleaseResponse* /*resp*/) {
  return StartStoreCall(ctx, pool_, store_,
                        ForTenantOf(auth_, ctx, req->tenant(), [this, req] {
                          return api::Release(*store_, *req);
                        }));
}

grpc::ServerUnaryReactor* KeyServiceImpl::Heartbeat(
    grpc::CallbackServerContext* ctx, const idemkey::v1::HeartbeatRequest* req,
    idemkey::v1::HeartbeatResponse* resp) {
  return StartStoreCall(
      ctx, pool_, store_,
      ForTenantOf(auth_, ctx, req->tenant(), [this, req, resp] {
        return api::Heartbeat(*store_, *req, resp);
      }));
}

grpc::ServerUnaryReactor* KeyServiceImpl::Lookup(
    grpc::CallbackServerContext* ctx, const idemkey::v1::LookupRequest* req,
    idemkey::v1::LookupResponse* resp) {
  return StartStoreCall(
      ctx, pool_, store_,
      ForTenantOf(auth_, ctx, req->tenant(), [this, req, resp] {
        return api::Lookup(*store_, *req, resp);
      }));
}

grpc::ServerUnaryReactor* KeyServiceImpl::Ping(
    grpc::CallbackServerContext* ctx, const idemkey::v1::PingRequest* /*req*/,
    idemkey::v1::PingResponse* /*resp*/) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* KeyServiceImpl::Batch(
    grpc::CallbackServerContext* ctx, const idemkey::v1::BatchRequest* req,
    idemkey::v1::BatchResponse* resp) {
  return StartStoreCall(ctx, pool_, store_, [this, ctx, req, resp] {
    if (req->ops_size() > kMaxBatchOps) {
      return absl::InvalidArgumentError(
          absl::StrCat("a batch carries at most ", kMaxBatchOps, " ops, not ",
                       req->ops_size(), "; split it"));
    }
    // When an op would block, this runs again on the pool and resumes at
    // that op: every op runs once, in order.
    for (int i = resp->results_size(); i < req->ops_size(); ++i) {
      idemkey::v1::BatchResult result;
      absl::Status s = RunBatchOp(ctx, req->ops(i), &result);
      if (store::IsWouldBlock(s)) return s;
      if (!s.ok()) {
        result.clear_response();
        result.set_code(static_cast<int32_t>(s.code()));
        result.set_message(std::string(s.message()));
      }
      resp->add_results()->Swap(&result);
    }
    return absl::OkStatus();
  });
}

absl::Status KeyServiceImpl::RunBatchOp(grpc::CallbackServerContext* ctx,
                                        const idemkey::v1::BatchOp& op,
                                        idemkey::v1::BatchResult* result) {
  auto authorized = [&](const std::string& tenant) {
    return auth_->ForTenant(ctx->client_metadata(), tenant);
  };
  absl::Status s;
  switch (op.call_case()) {
    case idemkey::v1::BatchOp::kReserve:
      if (s = authorized(op.reserve().tenant()); s.ok()) {
        s = api::Reserve(*store_, op.reserve(), result->mutable_reserve());
      }
      return s;
    case idemkey::v1::BatchOp::kComplete:
      if (s = authorized(op.complete().tenant()); s.ok()) {
        s = api::Complete(*store_, op.complete(), result->mutable_complete());
      }
      return s;
    case idemkey::v1::BatchOp::kRelease:
      if (s = authorized(op.release().tenant()); s.ok()) {
        s = api::Release(*store_, op.release());
        result->mutable_release();
      }
      return s;
    case idemkey::v1::BatchOp::kHeartbeat:
      if (s = authorized(op.heartbeat().tenant()); s.ok()) {
        s = api::Heartbeat(*store_, op.heartbeat(),
                           result->mutable_heartbeat());
      }
      return s;
    case idemkey::v1::BatchOp::kLookup:
      if (s = authorized(op.lookup().tenant()); s.ok()) {
        s = api::Lookup(*store_, op.lookup(), result->mutable_lookup());
      }
      return s;
    case idemkey::v1::BatchOp::CALL_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(
      "a batch op has no call; set one of reserve, complete, release, "
      "heartbeat or lookup");
}

}  // namespace idemkey::service
