#include "server/service/key_service.h"

#include "server/api/key_calls.h"
#include "server/service/authorized.h"
#include "server/service/store_call.h"
#include "server/store/call_options.h"

namespace idemkey::service {

grpc::ServerUnaryReactor* KeyServiceImpl::Reserve(
    grpc::CallbackServerContext* ctx, const idemkey::v1::ReserveRequest* req,
    idemkey::v1::ReserveResponse* resp) {
  return StartStoreCall(
      ctx, pool_, store_,
      ForTenantOf(auth_, ctx, req->tenant(),
                  [this, req, resp](const store::CallOptions& options) {
                    return api::Reserve(*store_, *req, resp, options);
                  }));
}

grpc::ServerUnaryReactor* KeyServiceImpl::Complete(
    grpc::CallbackServerContext* ctx, const idemkey::v1::CompleteRequest* req,
    idemkey::v1::CompleteResponse* resp) {
  return StartStoreCall(
      ctx, pool_, store_,
      ForTenantOf(auth_, ctx, req->tenant(),
                  [this, req, resp](const store::CallOptions& options) {
                    return api::Complete(*store_, *req, resp, options);
                  }));
}

grpc::ServerUnaryReactor* KeyServiceImpl::Release(
    grpc::CallbackServerContext* ctx, const idemkey::v1::ReleaseRequest* req,
    idemkey::v1::ReleaseResponse* /*resp*/) {
  return StartStoreCall(
      ctx, pool_, store_,
      ForTenantOf(auth_, ctx, req->tenant(),
                  [this, req](const store::CallOptions& options) {
                    return api::Release(*store_, *req, options);
                  }));
}

grpc::ServerUnaryReactor* KeyServiceImpl::Heartbeat(
    grpc::CallbackServerContext* ctx, const idemkey::v1::HeartbeatRequest* req,
    idemkey::v1::HeartbeatResponse* resp) {
  return StartStoreCall(
      ctx, pool_, store_,
      ForTenantOf(auth_, ctx, req->tenant(),
                  [this, req, resp](const store::CallOptions& options) {
                    return api::Heartbeat(*store_, *req, resp, options);
                  }));
}

grpc::ServerUnaryReactor* KeyServiceImpl::Lookup(
    grpc::CallbackServerContext* ctx, const idemkey::v1::LookupRequest* req,
    idemkey::v1::LookupResponse* resp) {
  return StartStoreCall(
      ctx, pool_, store_,
      ForTenantOf(auth_, ctx, req->tenant(),
                  [this, req, resp](const store::CallOptions& options) {
                    return api::Lookup(*store_, *req, resp, options);
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
  return StartStoreCall(
      ctx, pool_, store_,
      [this, ctx, req, resp](const store::CallOptions& options) {
        auto authorize = [&](absl::string_view tenant) {
          return auth_->ForTenant(ctx->client_metadata(), tenant);
        };
        // Resumes where a run refused for I/O left off (store_call.h).
        return api::Batch(*store_, *req, authorize, resp, options);
      });
}

}  // namespace idemkey::service
