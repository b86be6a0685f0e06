// call_stream.h — multiplexes the KeyService calls of every thread of a
// process over one KeyService/Stream RPC (ClientOptions::stream_calls).
//
//   CallStream stream(stub.get());
//   BatchOp op;
//   *op.mutable_reserve() = request;
//   absl::StatusOr<BatchResult> r =
//       stream.Run(op, absl::Seconds(2), token);  // blocks
//
// One stream is open at a time. A call adds its op, with an id of its own,
// to the stream's outbox; one write is in flight at a time and takes the
// whole outbox (up to kMaxOpsPerMessage ops and kMaxBytesPerMessage), so
// calls made while a write is out leave together, with no timer. Answers
// come back in any order and wake only their own caller.
//
// When the stream ends before answering a call (idemkeyd restarted, the
// connection was lost), Run returns UNAVAILABLE: the op may or may not have
// been applied, and the caller retries it as it would a unary call (safe
// for every KeyService op: a Reserve keeps its attempt_id, a Complete its
// token); the next Run opens a new stream. A stream opened with another
// token than the caller's is cancelled and replaced, so a rotated token is
// used at once. Against a server without Stream (UNIMPLEMENTED),
// unsupported() turns true for good and the client uses unary calls.
//
// Each stream has a reader thread of its own (call_stream.cc says why).
// Thread-safe: that is its purpose. Destruction cancels the open stream and
// waits for gRPC to be done with it; no Run may be in progress then.

#ifndef IDEMKEY_CLIENT_CPP_CLIENT_SRC_CALL_STREAM_H_
#define IDEMKEY_CLIENT_CPP_CLIENT_SRC_CALL_STREAM_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "idemkey/sync/mutex.h"
#include "idemkey/v1/idemkey.grpc.pb.h"

namespace idemkey::client {

class CallStream {
 public:
  static constexpr int kMaxOpsPerMessage = 256;
  // A larger op still goes, alone (Client sends such calls unary instead).
  static constexpr size_t kMaxBytesPerMessage = 1 << 20;

  // `stub` is not owned and must outlive this.
  explicit CallStream(idemkey::v1::KeyService::StubInterface* stub);
  ~CallStream();
  CallStream(const CallStream&) = delete;
  CallStream& operator=(const CallStream&) = delete;

  // Sends `op` and waits up to `timeout` for its result. `token` (may be
  // empty) goes as "authorization: Bearer" metadata of the stream. Errors:
  // UNAVAILABLE when the stream ended first, DEADLINE_EXCEEDED, and
  // UNIMPLEMENTED when the server has no Stream.
  absl::StatusOr<idemkey::v1::BatchResult> Run(const idemkey::v1::BatchOp& op,
                                               absl::Duration timeout,
                                               const std::string& token);

  // Whether the server answered Stream UNIMPLEMENTED.
  bool unsupported() const { return unsupported_.load(); }
  // Streams opened so far; for tests.
  size_t streams_opened() const;

 private:
  class Connection;  // one Stream RPC; call_stream.cc

  // A call waiting for its answer; lives on its caller's stack, guarded by
  // mu_ while its connection knows it.
  struct Pending {
    bool done = false;
    absl::StatusOr<idemkey::v1::BatchResult> result;
    sync::CondVar wake;
  };

  idemkey::v1::KeyService::StubInterface* const stub_;
  std::atomic<bool> unsupported_{false};
  mutable sync::Mutex mu_;
  // Every stream not yet joined; open_ is the one new ops go to, if any.
  std::vector<std::unique_ptr<Connection>> connections_ ABSL_GUARDED_BY(mu_);
  Connection* open_ ABSL_GUARDED_BY(mu_) = nullptr;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  size_t streams_opened_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace idemkey::client

#endif  // IDEMKEY_CLIENT_CPP_CLIENT_SRC_CALL_STREAM_H_
