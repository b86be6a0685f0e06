// call_batcher.h — coalesces the KeyService calls that many threads make at
// the same time into Batch RPCs (ClientOptions::batch_calls).
//
//   CallBatcher batcher(
//       [&](const BatchRequest& req, BatchResponse* resp) {
//         // One Batch RPC, tried once: each caller retries its own op.
//         return SendOnce(req, resp);
//       },
//       {.max_ops = 128, .max_in_flight = 2});
//   BatchOp op;
//   *op.mutable_reserve() = request;
//   absl::StatusOr<BatchResult> r = batcher.Run(std::move(op));  // blocks
//
// No timer and no thread of its own: a call finding fewer than
// `max_in_flight` batches out sends at once, taking along every call queued
// meanwhile; otherwise it waits, and is sent by whichever caller finds room
// first. A lone call is never delayed; under load, batches grow by
// themselves to the number of calls arriving during one round trip.
//
// Thread-safe: that is its purpose. `send` is called from the callers'
// threads, never under the batcher's lock.

#ifndef IDEMKEY_CLIENT_CPP_CLIENT_SRC_CALL_BATCHER_H_
#define IDEMKEY_CLIENT_CPP_CLIENT_SRC_CALL_BATCHER_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "idemkey/sync/mutex.h"
#include "idemkey/v1/idemkey.pb.h"

namespace idemkey::client {

class CallBatcher {
 public:
  struct Options {
    size_t max_ops = 128;
    // Serialized op bytes per batch; a larger op still goes, alone.
    size_t max_bytes = 1 << 20;
    int max_in_flight = 2;
  };
  // Makes one Batch RPC; its error, if any, becomes every op's.
  using SendFn = std::function<absl::Status(const idemkey::v1::BatchRequest&,
                                            idemkey::v1::BatchResponse*)>;

  CallBatcher(SendFn send, Options options);
  CallBatcher(const CallBatcher&) = delete;
  CallBatcher& operator=(const CallBatcher&) = delete;

  // Sends `op` in some batch and returns its result, or the status of the
  // Batch RPC that carried it when that failed.
  absl::StatusOr<idemkey::v1::BatchResult> Run(idemkey::v1::BatchOp op);

  // Batch RPCs sent so far; for tests.
  size_t batches_sent() const;

 private:
  // A call waiting for its result; lives on its caller's stack. Its fields
  // are guarded by mu_ while it is queued or in a batch (the analysis cannot
  // name the batcher's mutex from here).
  struct Pending {
    idemkey::v1::BatchOp op;
    size_t bytes = 0;
    bool done = false;
    absl::StatusOr<idemkey::v1::BatchResult> result;
    // Signalled when `done`, or when this call is the oldest waiting and a
    // batch slot frees up.
    sync::CondVar wake;
  };

  // Takes calls from the queue head into one batch.
  std::vector<Pending*> TakeBatch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends `batch` and answers every call in it.
  void Send(const std::vector<Pending*>& batch) ABSL_LOCKS_EXCLUDED(mu_);

  const SendFn send_;
  const Options options_;
  mutable sync::Mutex mu_;
  std::deque<Pending*> queue_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  size_t batches_sent_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace idemkey::client

#endif  // IDEMKEY_CLIENT_CPP_CLIENT_SRC_CALL_BATCHER_H_
