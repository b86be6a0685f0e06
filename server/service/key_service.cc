#include "server/service/key_service.h"

#include <vector>

#include "absl/time/clock.h"
#include "server/api/key_calls.h"
#include "server/service/authorized.h"
#include "server/service/batch_run.h"
#include "server/service/key_stream.h"
#include "server/service/store_call.h"
#include "server/service/tenant_cap_note.h"
#include "server/store/call_options.h"
#include "server/util/log.h"

namespace idemkey::service {

bool KeyServiceImpl::MayCreateTenant(grpc::CallbackServerContext* ctx,
                                     absl::string_view tenant) const {
  return creators_ == TenantCreators::kAnyCaller ||
         auth_->NamesTenant(ctx->client_metadata(), tenant);
}

grpc::ServerUnaryReactor* KeyServiceImpl::Reserve(
    grpc::CallbackServerContext* ctx, const idemkey::v1::ReserveRequest* req,
    idemkey::v1::ReserveResponse* resp) {
  return StartStoreCall(
      ctx, pool_, store_,
      ForTenantOf(auth_, ctx, req->tenant(),
                  [this, ctx, req, resp](const store::CallOptions& options) {
                    absl::Status s =
                        api::Reserve(*store_, *req, resp, options,
                                     MayCreateTenant(ctx, req->tenant()));
                    NoteTenantCap(s);
                    return s;
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
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  RunBatch(store_, pool_, *req, resp,
           BatchCallbacks{
               .authorize =
                   [this, ctx](absl::string_view tenant) {
                     return auth_->ForTenant(ctx->client_metadata(), tenant);
                   },
               .may_create =
                   [this, ctx](absl::string_view tenant) {
                     return MayCreateTenant(ctx, tenant);
                   },
               .done =
                   [this, reactor](absl::Status s) {
                     internal::FinishWhenDurable(reactor, store_, std::move(s));
                   },
           });
  return reactor;
}

grpc::ServerBidiReactor<idemkey::v1::StreamRequest,
                        idemkey::v1::StreamResponse>*
KeyServiceImpl::Stream(grpc::CallbackServerContext* ctx) {
  // The metadata is the stream's: read once per op, as by a unary call, so
  // a token revoked while the stream is open stops its next op.
  auto* stream = new KeyStream(
      store_, pool_,
      [this, ctx](absl::string_view tenant) {
        return auth_->ForTenant(ctx->client_metadata(), tenant);
      },
      [this, ctx](absl::string_view tenant) {
        return MayCreateTenant(ctx, tenant);
      },
      metrics_,
      [this](KeyStream* ended) {
        absl::MutexLock lock(&streams_mu_);
        streams_.erase(ended);
      });
  bool drain;
  {
    absl::MutexLock lock(&streams_mu_);
    streams_.insert(stream);
    drain = draining_;
    if (drain) stream->Hold();
  }
  stream->StartReading();
  if (drain) {
    stream->Drain();
    stream->Release();
  }
  return stream;
}

void KeyServiceImpl::DrainStreams() {
  std::vector<KeyStream*> open;
  {
    absl::MutexLock lock(&streams_mu_);
    draining_ = true;
    for (KeyStream* s : streams_) {
      s->Hold();  // alive past its OnDone until released below
      open.push_back(s);
    }
  }
  // Without streams_mu_: Drain may run OnDone inline, which takes it.
  for (KeyStream* s : open) {
    s->Drain();
    s->Release();
  }
}

}  // namespace idemkey::service
