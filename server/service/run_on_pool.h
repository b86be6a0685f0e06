// run_on_pool.h — finish a callback-API unary call from a worker thread,
// with the gRPC status of a store result.
//
// gRPC's callback threads must not block; a store call may wait for an fsync.
// RunOnPool hands the work to a ThreadPool and finishes the call with the
// status the work returns:
//
//   grpc::ServerUnaryReactor* Lookup(grpc::CallbackServerContext* ctx,
//                                    const LookupRequest* req,
//                                    LookupResponse* resp) override {
//     return RunOnPool(ctx, pool_, [=] { ...; return grpc::Status::OK; });
//   }
//
// `work` runs at most once, before the call's request and response objects
// are released; it must not touch them after returning.

#ifndef IDEMKEY_SERVER_SERVICE_RUN_ON_POOL_H_
#define IDEMKEY_SERVER_SERVICE_RUN_ON_POOL_H_

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"
#include "server/util/thread_pool.h"

namespace idemkey::service {

// absl and gRPC share the canonical code numbers.
inline grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                      std::string(s.message()));
}

template <typename Work>
grpc::ServerUnaryReactor* RunOnPool(grpc::CallbackServerContext* ctx,
                                    util::ThreadPool* pool, Work work) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  const bool queued = pool->Submit(
      [reactor, work = std::move(work)]() mutable { reactor->Finish(work()); });
  if (!queued) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 "idemkeyd is shutting down; retry"));
  }
  return reactor;
}

}  // namespace idemkey::service

#endif  // IDEMKEY_SERVER_SERVICE_RUN_ON_POOL_H_
