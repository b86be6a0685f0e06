// store_call.h — run a unary call's store work, and answer only once what it
// wrote or read is durable.
//
//   grpc::ServerUnaryReactor* Lookup(grpc::CallbackServerContext* ctx,
//                                    const LookupRequest* req,
//                                    LookupResponse* resp) override {
//     return StartStoreCall(ctx, pool_, store_,
//                           [=] { return api::Lookup(*store_, *req, resp); });
//   }
//
// StartStoreCall runs `work` at once on the gRPC callback thread, inside a
// NonBlockingScope: most calls find their record in memory and write to the
// WAL's page cache, so they need no thread hop. When the store would have to
// wait for the disk it refuses (IsWouldBlock) without changing anything, and
// `work` runs again on `pool`, whose threads may block. RunOnPool always
// uses the pool (scans, tenant creation, checkpoints).
//
// Either way the call is finished from KeyStore::WhenDurable, so a client
// never hears of a write, or of a state it read, that a crash could undo;
// the WAL sync is shared by every call waiting for it.
//
// `work` returns the call's status and may run twice, so it must fill the
// response only when it succeeds; it must not touch the request or the
// response after returning.

#ifndef IDEMKEY_SERVER_SERVICE_STORE_CALL_H_
#define IDEMKEY_SERVER_SERVICE_STORE_CALL_H_

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "server/store/blocking.h"
#include "server/store/key_store.h"
#include "server/util/thread_pool.h"

namespace idemkey::service {

// absl and gRPC share the canonical code numbers.
inline grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                      std::string(s.message()));
}

namespace internal {

inline void FinishWhenDurable(grpc::ServerUnaryReactor* reactor,
                              store::KeyStore* store, absl::Status result) {
  store->WhenDurable(
      [reactor, result = std::move(result)](absl::Status durable) mutable {
        if (!durable.ok()) {
          // A full disk keeps its code: no retry helps until space is freed.
          result = absl::IsResourceExhausted(durable)
                       ? absl::ResourceExhaustedError(absl::StrCat(
                             "the result could not be made durable: ",
                             durable.message()))
                       : absl::UnavailableError(absl::StrCat(
                             "the result could not be made durable, "
                             "retry: ",
                             durable.message()));
        }
        reactor->Finish(ToGrpcStatus(result));
      });
}

template <typename Work>
void FinishOnPool(grpc::ServerUnaryReactor* reactor, util::ThreadPool* pool,
                  store::KeyStore* store, Work work) {
  const bool queued =
      pool->Submit([reactor, store, work = std::move(work)]() mutable {
        FinishWhenDurable(reactor, store, work());
      });
  if (!queued) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 "idemkeyd is shutting down; retry"));
  }
}

}  // namespace internal

template <typename Work>
grpc::ServerUnaryReactor* StartStoreCall(grpc::CallbackServerContext* ctx,
                                         util::ThreadPool* pool,
                                         store::KeyStore* store, Work work) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::Status result;
  {
    store::NonBlockingScope no_io;
    result = work();
  }
  if (store::IsWouldBlock(result)) {
    internal::FinishOnPool(reactor, pool, store, std::move(work));
  } else {
    internal::FinishWhenDurable(reactor, store, std::move(result));
  }
  return reactor;
}

template <typename Work>
grpc::ServerUnaryReactor* RunOnPool(grpc::CallbackServerContext* ctx,
                                    util::ThreadPool* pool,
                                    store::KeyStore* store, Work work) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  internal::FinishOnPool(reactor, pool, store, std::move(work));
  return reactor;
}

}  // namespace idemkey::service

#endif  // IDEMKEY_SERVER_SERVICE_STORE_CALL_H_
