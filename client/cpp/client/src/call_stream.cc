#include "call_stream.h"

#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "idemkey/rules/status.h"

namespace idemkey::client {

using idemkey::v1::BatchOp;
using idemkey::v1::BatchResult;
using idemkey::v1::StreamOp;
using idemkey::v1::StreamRequest;
using idemkey::v1::StreamResponse;

// One Stream RPC. Its state is guarded by the CallStream's mutex, which the
// analysis cannot name from here; every access below holds owner_->mu_.
//
// Callers start operations from outside the reactions (StartCall, writes,
// TryCancel), and never under the mutex: gRPC may run reactions inline in
// those calls. A caller announces itself under the mutex (EnterLocked),
// which keeps the reactor alive: it holds the stream (AddHold before
// StartCall) until the stream is closed for writes and no caller is inside
// such an operation (Leave).
class CallStream::Reactor final
    : public grpc::ClientBidiReactor<StreamRequest, StreamResponse> {
 public:
  // Under owner_->mu_; the opener is the first caller inside: it calls
  // Begin.
  Reactor(CallStream* owner, std::string token)
      : owner_(owner), token_(std::move(token)) {
    if (!token_.empty()) ctx_.AddMetadata("authorization", "Bearer " + token_);
    owner_->stub_->async()->Stream(&ctx_, this);
    AddHold();
    EnterLocked();
  }

  void EnterLocked() { ++callers_inside_; }

  void Begin() {
    StartRead(&read_);
    StartCall();
    Leave();
  }

  const std::string& token() const { return token_; }
  bool closed() const { return closed_; }

  // Under owner_->mu_: queues `op` for `pending`; true when the caller is
  // to write (Write, after releasing the lock).
  bool QueueLocked(uint64_t id, const BatchOp& op, absl::Duration timeout,
                   Pending* pending) {
    pending_[id] = pending;
    StreamOp* queued = outbox_.add_ops();
    queued->set_id(id);
    *queued->mutable_op() = op;
    queued->mutable_timeout()->set_seconds(absl::ToInt64Seconds(timeout));
    queued->mutable_timeout()->set_nanos(static_cast<int32_t>(
        absl::ToInt64Nanoseconds(timeout % absl::Seconds(1))));
    if (!TakeWriteLocked()) return false;
    EnterLocked();
    return true;
  }

  void Write() {
    StartWrite(&writing_);
    Leave();
  }

  // Under owner_->mu_: the caller stopped waiting for `id`; a late answer
  // is dropped.
  void ForgetLocked(uint64_t id) { pending_.erase(id); }

  // Under owner_->mu_: no more ops on this stream; the caller then calls
  // Cancel, and the ops in flight fail UNAVAILABLE when it ends.
  void CloseLocked() {
    closed_ = true;
    EnterLocked();
  }

  void Cancel() {
    ctx_.TryCancel();
    Leave();
  }

  void OnWriteDone(bool ok) override {
    bool write = false;
    bool release = false;
    {
      sync::MutexLock lock(&owner_->mu_);
      write_in_flight_ = false;
      writing_.Clear();
      if (!ok) closed_ = true;  // the stream is over; OnDone answers
      write = TakeWriteLocked();
      release = ReleaseHoldLocked();
    }
    if (write) StartWrite(&writing_);
    if (release) RemoveHold();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      bool release = false;
      {
        sync::MutexLock lock(&owner_->mu_);
        closed_ = true;
        release = ReleaseHoldLocked();
      }
      if (release) RemoveHold();
      return;  // OnDone follows with the stream's status
    }
    {
      sync::MutexLock lock(&owner_->mu_);
      for (idemkey::v1::StreamResult& r : *read_.mutable_results()) {
        auto it = pending_.find(r.id());
        if (it == pending_.end()) continue;  // its caller gave up
        it->second->result = std::move(*r.mutable_result());
        it->second->done = true;
        it->second->wake.Signal();
        pending_.erase(it);
      }
    }
    read_.Clear();
    StartRead(&read_);
  }

  void OnDone(const grpc::Status& status) override {
    CallStream* const owner = owner_;
    {
      sync::MutexLock lock(&owner->mu_);
      const bool unsupported =
          status.error_code() == grpc::StatusCode::UNIMPLEMENTED;
      if (unsupported) owner->unsupported_ = true;
      const absl::Status failure =
          unsupported
              ? absl::UnimplementedError(
                    "this idemkeyd has no KeyService/Stream; using unary "
                    "calls")
              : absl::UnavailableError(absl::StrCat(
                    "the stream to idemkeyd ended before the answer (",
                    status.error_message(),
                    "); the op may or may not have been applied: retry it"));
      for (auto& [id, pending] : pending_) {
        pending->result = failure;
        pending->done = true;
        pending->wake.Signal();
      }
      if (owner->open_ == this) owner->open_ = nullptr;
      if (--owner->live_streams_ == 0) owner->all_ended_.SignalAll();
    }
    delete this;
  }

 private:
  // Under owner_->mu_: moves the outbox's head into writing_ when no write
  // is in flight and the stream takes writes.
  bool TakeWriteLocked() {
    if (write_in_flight_ || closed_ || outbox_.ops_size() == 0) return false;
    write_in_flight_ = true;
    if (outbox_.ops_size() <= kMaxOpsPerMessage &&
        outbox_.ByteSizeLong() <= kMaxBytesPerMessage) {
      writing_.Swap(&outbox_);
      return true;
    }
    size_t bytes = 0;
    int n = 0;
    while (n < outbox_.ops_size() && n < kMaxOpsPerMessage &&
           (n == 0 ||
            bytes + outbox_.ops(n).ByteSizeLong() <= kMaxBytesPerMessage)) {
      bytes += outbox_.ops(n).ByteSizeLong();
      ++n;
    }
    for (int i = 0; i < n; ++i)
      writing_.add_ops()->Swap(outbox_.mutable_ops(i));
    outbox_.mutable_ops()->DeleteSubrange(0, n);
    return true;
  }

  // A caller is done with its operation; the last thing it does here, as
  // the stream may end (and this be deleted) once it left.
  void Leave() {
    bool release = false;
    {
      sync::MutexLock lock(&owner_->mu_);
      --callers_inside_;
      release = ReleaseHoldLocked();
    }
    if (release) RemoveHold();
  }

  // Under owner_->mu_: true once (the caller then calls RemoveHold) when
  // no caller can start an operation any more.
  bool ReleaseHoldLocked() {
    if (hold_released_ || !closed_ || callers_inside_ > 0) return false;
    hold_released_ = true;
    return true;
  }

  CallStream* const owner_;
  const std::string token_;
  grpc::ClientContext ctx_;
  StreamResponse read_;  // filled by gRPC during a read
  // What the next write takes; the write in flight (read by gRPC alone
  // until OnWriteDone).
  StreamRequest outbox_;
  StreamRequest writing_;
  bool write_in_flight_ = false;
  // No more writes: the stream broke, ended or was cancelled.
  bool closed_ = false;
  int callers_inside_ = 0;  // between EnterLocked and Leave
  bool hold_released_ = false;
  absl::flat_hash_map<uint64_t, Pending*> pending_;
};

CallStream::CallStream(idemkey::v1::KeyService::StubInterface* stub)
    : stub_(stub) {}

CallStream::~CallStream() {
  Reactor* open = nullptr;
  {
    sync::MutexLock lock(&mu_);
    std::swap(open, open_);
    if (open != nullptr) open->CloseLocked();
  }
  if (open != nullptr) open->Cancel();
  sync::MutexLock lock(&mu_);
  while (live_streams_ > 0) all_ended_.Wait(&mu_);
}

absl::StatusOr<BatchResult> CallStream::Run(const BatchOp& op,
                                            absl::Duration timeout,
                                            const std::string& token) {
  if (unsupported()) {
    return absl::UnimplementedError("this idemkeyd has no KeyService/Stream");
  }
  Pending mine;
  Reactor* stream;
  Reactor* replaced = nullptr;  // to cancel: opened with another token
  bool opened = false;
  uint64_t id;
  bool write;
  {
    sync::MutexLock lock(&mu_);
    if (open_ != nullptr && (open_->closed() || open_->token() != token)) {
      // A broken stream ends by itself; ops in flight on a replaced one
      // fail UNAVAILABLE and are retried on the new one.
      if (!open_->closed()) {
        replaced = open_;
        replaced->CloseLocked();
      }
      open_ = nullptr;
    }
    if (open_ == nullptr) {
      open_ = new Reactor(this, token);
      ++live_streams_;
      ++streams_opened_;
      opened = true;
    }
    stream = open_;
    id = next_id_++;
    write = stream->QueueLocked(id, op, timeout, &mine);
  }
  // Each entered the reactor under the lock: it is alive until each leaves.
  if (replaced != nullptr) replaced->Cancel();
  if (opened) stream->Begin();
  if (write) stream->Write();

  const absl::Time deadline = absl::Now() + timeout;
  sync::MutexLock lock(&mu_);
  while (!mine.done) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration() || !mine.wake.WaitFor(&mu_, left)) {
      if (mine.done) break;
      // Not answered, so the stream has not ended (it answers every op it
      // has when it ends) and `stream` is alive.
      stream->ForgetLocked(id);
      return absl::DeadlineExceededError(absl::StrCat(
          "idemkeyd did not answer within ", absl::FormatDuration(timeout)));
    }
  }
  return std::move(mine.result);
}

size_t CallStream::streams_opened() const {
  sync::MutexLock lock(&mu_);
  return streams_opened_;
}

}  // namespace idemkey::client
