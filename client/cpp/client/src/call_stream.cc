#include "call_stream.h"

#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace idemkey::client {

using idemkey::v1::BatchOp;
using idemkey::v1::BatchResult;
using idemkey::v1::StreamOp;
using idemkey::v1::StreamRequest;
using idemkey::v1::StreamResponse;

// One Stream RPC, on gRPC's synchronous API: a reader thread of its own
// takes the answers; whichever caller finds no write going becomes the
// writer and writes the outbox until it is empty (the others only queue).
// The synchronous API, rather than the callback one, so that destroying the
// CallStream can wait for gRPC to be entirely done with the stream (join
// the reader): with the callback API gRPC still uses its completion queue
// after OnDone, and a channel destroyed right then aborted the process
// (1 run in 20 here).
//
// State is guarded by the CallStream's mutex, which the analysis cannot
// name from here; every access below holds owner_->mu_ unless it says.
class CallStream::Connection {
 public:
  // Under owner_->mu_; makes no gRPC call. The opener then calls Start.
  Connection(CallStream* owner, std::string token)
      : owner_(owner), token_(std::move(token)) {
    writer_active_ = true;  // the opener writes once the stream exists
  }

  // Without the lock, once, by the opener: opens the stream, starts the
  // reader, and writes what was queued meanwhile.
  void Start() {
    if (!token_.empty()) ctx_.AddMetadata("authorization", "Bearer " + token_);
    stream_ = owner_->stub_->Stream(&ctx_);
    reader_ = std::thread([this] { ReadUntilTheEnd(); });
    WriteOutbox();
  }

  const std::string& token() const { return token_; }
  bool closed() const { return closed_; }
  bool finished() const { return finished_; }

  // Under owner_->mu_: queues `op` for `pending`; true when the caller is
  // to write (WriteOutbox, after releasing the lock).
  bool QueueLocked(uint64_t id, const BatchOp& op, absl::Duration timeout,
                   Pending* pending) {
    pending_[id] = pending;
    StreamOp* queued = outbox_.add_ops();
    queued->set_id(id);
    *queued->mutable_op() = op;
    queued->mutable_timeout()->set_seconds(absl::ToInt64Seconds(timeout));
    queued->mutable_timeout()->set_nanos(static_cast<int32_t>(
        absl::ToInt64Nanoseconds(timeout % absl::Seconds(1))));
    if (writer_active_ || closed_) return false;
    writer_active_ = true;
    return true;
  }

  // Without the lock, by the writer: writes until the outbox is empty.
  void WriteOutbox() {
    StreamRequest message;
    for (;;) {
      {
        sync::MutexLock lock(&owner_->mu_);
        if (closed_ || outbox_.ops_size() == 0) {
          writer_active_ = false;
          writer_done_.SignalAll();
          return;
        }
        TakeMessageLocked(&message);
      }
      if (!stream_->Write(message)) {
        // The stream is over; the reader sees it too and answers the ops.
        sync::MutexLock lock(&owner_->mu_);
        closed_ = true;
      }
      message.Clear();
    }
  }

  // Under owner_->mu_: the caller stopped waiting for `id`; a late answer
  // is dropped.
  void ForgetLocked(uint64_t id) { pending_.erase(id); }

  // Under owner_->mu_: no more ops on this stream; the ops in flight fail
  // UNAVAILABLE. (TryCancel calls nothing of ours back.)
  void CancelLocked() {
    closed_ = true;
    ctx_.TryCancel();
  }

  // Without the lock: waits for the reader thread, which answers every op
  // it has before it ends.
  void Join() {
    if (reader_.joinable()) reader_.join();
  }

 private:
  // The reader thread.
  void ReadUntilTheEnd() {
    StreamResponse response;
    while (stream_->Read(&response)) {
      sync::MutexLock lock(&owner_->mu_);
      for (idemkey::v1::StreamResult& r : *response.mutable_results()) {
        auto it = pending_.find(r.id());
        if (it == pending_.end()) continue;  // its caller gave up
        it->second->result = std::move(*r.mutable_result());
        it->second->done = true;
        it->second->wake.Signal();
        pending_.erase(it);
      }
    }
    {
      // Finish only once no write is going (gRPC forbids them together);
      // a write on an ended stream returns at once.
      sync::MutexLock lock(&owner_->mu_);
      closed_ = true;
      while (writer_active_) writer_done_.Wait(&owner_->mu_);
    }
    const grpc::Status status = stream_->Finish();
    sync::MutexLock lock(&owner_->mu_);
    const bool unsupported =
        status.error_code() == grpc::StatusCode::UNIMPLEMENTED;
    if (unsupported) owner_->unsupported_ = true;
    const absl::Status failure =
        unsupported
            ? absl::UnimplementedError(
                  "this idemkeyd has no KeyService/Stream; using unary calls")
            : absl::UnavailableError(absl::StrCat(
                  "the stream to idemkeyd ended before the answer (",
                  status.error_message(),
                  "); the op may or may not have been applied: retry it"));
    for (auto& [id, pending] : pending_) {
      pending->result = failure;
      pending->done = true;
      pending->wake.Signal();
    }
    pending_.clear();
    if (owner_->open_ == this) owner_->open_ = nullptr;
    finished_ = true;
  }

  // Under owner_->mu_: moves the outbox's head into `message`.
  void TakeMessageLocked(StreamRequest* message) {
    if (outbox_.ops_size() <= kMaxOpsPerMessage &&
        outbox_.ByteSizeLong() <= kMaxBytesPerMessage) {
      message->Swap(&outbox_);
      return;
    }
    size_t bytes = 0;
    int n = 0;
    while (n < outbox_.ops_size() && n < kMaxOpsPerMessage &&
           (n == 0 ||
            bytes + outbox_.ops(n).ByteSizeLong() <= kMaxBytesPerMessage)) {
      bytes += outbox_.ops(n).ByteSizeLong();
      ++n;
    }
    for (int i = 0; i < n; ++i) {
      message->add_ops()->Swap(outbox_.mutable_ops(i));
    }
    outbox_.mutable_ops()->DeleteSubrange(0, n);
  }

  CallStream* const owner_;
  const std::string token_;
  grpc::ClientContext ctx_;
  // Set by Start before any other thread uses it.
  std::unique_ptr<
      grpc::ClientReaderWriterInterface<StreamRequest, StreamResponse>>
      stream_;
  std::thread reader_;
  StreamRequest outbox_;
  bool writer_active_;
  sync::CondVar writer_done_;  // writer_active_ turned false
  // No more writes: the stream broke, ended or was cancelled.
  bool closed_ = false;
  bool finished_ = false;  // the reader answered everything and is ending
  absl::flat_hash_map<uint64_t, Pending*> pending_;
};

CallStream::CallStream(idemkey::v1::KeyService::StubInterface* stub)
    : stub_(stub) {}

CallStream::~CallStream() {
  std::vector<std::unique_ptr<Connection>> all;
  {
    sync::MutexLock lock(&mu_);
    open_ = nullptr;
    for (auto& c : connections_) c->CancelLocked();
    all.swap(connections_);
  }
  for (auto& c : all) c->Join();
}

absl::StatusOr<BatchResult> CallStream::Run(const BatchOp& op,
                                            absl::Duration timeout,
                                            const std::string& token) {
  if (unsupported()) {
    return absl::UnimplementedError("this idemkeyd has no KeyService/Stream");
  }
  Pending mine;
  Connection* stream;
  std::vector<std::unique_ptr<Connection>> ended;  // to join and free
  bool opened = false;
  uint64_t id;
  bool write;
  {
    sync::MutexLock lock(&mu_);
    if (open_ != nullptr && (open_->closed() || open_->token() != token)) {
      // A broken stream ends by itself; ops in flight on a replaced one
      // fail UNAVAILABLE and are retried on the new one.
      if (!open_->closed()) open_->CancelLocked();
      open_ = nullptr;
    }
    if (open_ == nullptr) {
      for (auto it = connections_.begin(); it != connections_.end();) {
        if ((*it)->finished()) {
          ended.push_back(std::move(*it));
          it = connections_.erase(it);
        } else {
          ++it;
        }
      }
      connections_.push_back(std::make_unique<Connection>(this, token));
      open_ = connections_.back().get();
      ++streams_opened_;
      opened = true;
    }
    stream = open_;
    id = next_id_++;
    write = stream->QueueLocked(id, op, timeout, &mine);
  }
  // Connections are freed only here and in the destructor, once finished;
  // `stream` cannot finish while this caller is its opener or writer, nor
  // while `mine` is unanswered.
  for (auto& c : ended) c->Join();
  if (opened) {
    stream->Start();
  } else if (write) {
    stream->WriteOutbox();
  }

  const absl::Time deadline = absl::Now() + timeout;
  sync::MutexLock lock(&mu_);
  while (!mine.done) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration() || !mine.wake.WaitFor(&mu_, left)) {
      if (mine.done) break;
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
