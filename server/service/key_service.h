// key_service.h — idemkey.v1.KeyService over a KeyStore (callback API).
//
//   KeyServiceImpl service(&key_store, &pool, &authorizer);
//   builder.RegisterService(&service);
//
// Each call is authorized for its tenant, then validated and applied by the
// KeyStore: on the gRPC callback thread when that needs no disk I/O, else on
// `pool` (store_call.h); the answer goes out once it is durable. Ping
// answers inline and needs no token. Stream runs each op as Batch does and
// answers it as soon as it is durable (key_stream.h).
//
// Thread-safe: gRPC calls it from many threads at once.

#ifndef IDEMKEY_SERVER_SERVICE_KEY_SERVICE_H_
#define IDEMKEY_SERVER_SERVICE_KEY_SERVICE_H_

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "idemkey/v1/idemkey.grpc.pb.h"
#include "server/auth/authorizer.h"
#include "server/metrics/call_metrics.h"
#include "server/service/key_stream.h"
#include "server/store/key_store.h"
#include "server/util/thread_pool.h"

namespace idemkey::service {

// Who may create an unknown tenant by Reserving in it (when the KeyStore
// auto-creates tenants at all).
enum class TenantCreators {
  kAnyCaller,        // anyone allowed on the tenant, admin tokens included
  kOwnTenantTokens,  // with auth on, only a token naming that tenant
};

class KeyServiceImpl final : public idemkey::v1::KeyService::CallbackService {
 public:
  // None is owned; all must outlive the service.
  // `metrics` (may be null) counts the ops of Streams.
  KeyServiceImpl(store::KeyStore* store, util::ThreadPool* pool,
                 const auth::Authorizer* auth,
                 TenantCreators creators = TenantCreators::kOwnTenantTokens,
                 metrics::CallMetrics* metrics = nullptr)
      : store_(store),
        pool_(pool),
        auth_(auth),
        creators_(creators),
        metrics_(metrics) {}

  grpc::ServerUnaryReactor* Reserve(
      grpc::CallbackServerContext* ctx, const idemkey::v1::ReserveRequest* req,
      idemkey::v1::ReserveResponse* resp) override;
  grpc::ServerUnaryReactor* Complete(
      grpc::CallbackServerContext* ctx, const idemkey::v1::CompleteRequest* req,
      idemkey::v1::CompleteResponse* resp) override;
  grpc::ServerUnaryReactor* Release(
      grpc::CallbackServerContext* ctx, const idemkey::v1::ReleaseRequest* req,
      idemkey::v1::ReleaseResponse* resp) override;
  grpc::ServerUnaryReactor* Heartbeat(
      grpc::CallbackServerContext* ctx,
      const idemkey::v1::HeartbeatRequest* req,
      idemkey::v1::HeartbeatResponse* resp) override;
  grpc::ServerUnaryReactor* Lookup(grpc::CallbackServerContext* ctx,
                                   const idemkey::v1::LookupRequest* req,
                                   idemkey::v1::LookupResponse* resp) override;
  grpc::ServerUnaryReactor* Ping(grpc::CallbackServerContext* ctx,
                                 const idemkey::v1::PingRequest* req,
                                 idemkey::v1::PingResponse* resp) override;
  grpc::ServerUnaryReactor* Batch(grpc::CallbackServerContext* ctx,
                                  const idemkey::v1::BatchRequest* req,
                                  idemkey::v1::BatchResponse* resp) override;
  grpc::ServerBidiReactor<idemkey::v1::StreamRequest,
                          idemkey::v1::StreamResponse>*
  Stream(grpc::CallbackServerContext* ctx) override;

  // idemkeyd is stopping: each open Stream, and each opened from now on,
  // ends UNAVAILABLE once the ops it read are answered. Call before
  // grpc::Server::Shutdown, which would otherwise wait for them until its
  // deadline.
  void DrainStreams();

 private:
  bool MayCreateTenant(grpc::CallbackServerContext* ctx,
                       absl::string_view tenant) const;

  store::KeyStore* const store_;
  util::ThreadPool* const pool_;
  const auth::Authorizer* const auth_;
  const TenantCreators creators_;
  metrics::CallMetrics* const metrics_;

  absl::Mutex streams_mu_;
  // Every stream between Stream() and its OnDone.
  absl::flat_hash_set<KeyStream*> streams_ ABSL_GUARDED_BY(streams_mu_);
  bool draining_ ABSL_GUARDED_BY(streams_mu_) = false;
};

}  // namespace idemkey::service

#endif  // IDEMKEY_SERVER_SERVICE_KEY_SERVICE_H_
