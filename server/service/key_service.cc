#include "server/service/key_service.h"

#include "server/api/key_calls.h"
#include "server/service/authorized.h"
#include "server/service/store_call.h"

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

}  // namespace idemkey::service
