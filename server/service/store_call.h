// store_call.h — run a call's store work without blocking gRPC's threads,
// and answer only once what it wrote or read is durable.
//
//   grpc::ServerUnaryReactor* Lookup(grpc::CallbackServerContext* ctx,
//                                    const LookupRequest* req,
//                                    LookupResponse* resp) override {
//     return StartStoreCall(ctx, pool_, store_,
//                           [=](const store::CallOptions& options) {
//                             return api::Lookup(*store_, *req, resp, options);
//                           });
//   }
//
// RunStoreWork runs `work` at once on the calling (gRPC callback) thread
// with may_wait_for_io false: most calls find their record in memory and
// write to the WAL's page cache, so they need no thread hop. When the store
// would have to wait for the disk it answers WouldBlockError, and `work`
// runs again on `pool`, whose threads may block, with may_wait_for_io true.
// RunOnPool always uses the pool (scans, tenant admin, checkpoints).
//
// The rerun contract: `work` may run twice, and the second run starts from
// the beginning. A run that answers WouldBlockError has changed nothing in
// the store (call_options.h), but it may have filled part of the response:
// `work` must either fill the response only on success, or clear what the
// first run left there. `work` must not touch the request or the response
// after it returned. (A Batch has a runner of its own, batch_run.h, which
// sends only its refused ops to the pool; so has a stream's message,
// key_stream.h, which also waits for durability once for all the ops that
// ran at once.) tests/unit/server/service/store_call_test.cc holds it to this.
//
// StartStoreCall finishes the call from KeyStore::WhenDurable, so a client
// never hears of a write, or of a state it read, that a crash could undo;
// the WAL sync is shared by every call waiting for it.

#ifndef IDEMKEY_SERVER_SERVICE_STORE_CALL_H_
#define IDEMKEY_SERVER_SERVICE_STORE_CALL_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "idemkey/rules/status.h"
#include "server/store/call_options.h"
#include "server/store/key_store.h"
#include "server/util/thread_pool.h"

namespace idemkey::service {

// `work(const store::CallOptions&)` returns the call's status; `done(status)`
// gets the status of the run that went to its end. When the pool no longer
// takes work (idemkeyd is shutting down), `refused()` runs instead.
template <typename Work, typename Done, typename Refused>
void RunStoreWork(util::ThreadPool* pool, Work work, Done done,
                  Refused refused) {
  absl::Status result = work(store::CallOptions{.may_wait_for_io = false});
  if (!store::IsWouldBlock(result)) return done(std::move(result));
  const bool queued =
      pool->Submit([work = std::move(work), done = std::move(done)]() mutable {
        done(work(store::CallOptions{.may_wait_for_io = true}));
      });
  if (!queued) refused();
}

// What a call answers once WhenDurable reported `durable`: its own
// `result`, or why that result cannot be trusted.
inline absl::Status AfterDurable(absl::Status result,
                                 const absl::Status& durable) {
  if (durable.ok()) return result;
  // A full disk keeps its code: no retry helps until space is freed.
  return absl::IsResourceExhausted(durable)
             ? absl::ResourceExhaustedError(absl::StrCat(
                   "the result could not be made durable: ", durable.message()))
             : absl::UnavailableError(
                   absl::StrCat("the result could not be made durable, retry: ",
                                durable.message()));
}

namespace internal {

inline void FinishWhenDurable(grpc::ServerUnaryReactor* reactor,
                              store::KeyStore* store, absl::Status result) {
  store->WhenDurable(
      [reactor, result = std::move(result)](absl::Status durable) mutable {
        reactor->Finish(
            rules::ToGrpcStatus(AfterDurable(std::move(result), durable)));
      });
}

inline void FinishShuttingDown(grpc::ServerUnaryReactor* reactor) {
  reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                               "idemkeyd is shutting down; retry"));
}

}  // namespace internal

template <typename Work>
grpc::ServerUnaryReactor* StartStoreCall(grpc::CallbackServerContext* ctx,
                                         util::ThreadPool* pool,
                                         store::KeyStore* store, Work work) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  RunStoreWork(
      pool, std::move(work),
      [reactor, store](absl::Status result) {
        internal::FinishWhenDurable(reactor, store, std::move(result));
      },
      [reactor] { internal::FinishShuttingDown(reactor); });
  return reactor;
}

// `work()` takes no CallOptions: it always may wait.
template <typename Work>
grpc::ServerUnaryReactor* RunOnPool(grpc::CallbackServerContext* ctx,
                                    util::ThreadPool* pool,
                                    store::KeyStore* store, Work work) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  const bool queued =
      pool->Submit([reactor, store, work = std::move(work)]() mutable {
        internal::FinishWhenDurable(reactor, store, work());
      });
  if (!queued) internal::FinishShuttingDown(reactor);
  return reactor;
}

}  // namespace idemkey::service

#endif  // IDEMKEY_SERVER_SERVICE_STORE_CALL_H_
