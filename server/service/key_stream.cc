#include "server/service/key_stream.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/api/convert.h"
#include "server/api/key_calls.h"
#include "server/service/store_call.h"  // AfterDurable
#include "server/service/tenant_cap_note.h"

namespace idemkey::service {
namespace {

using idemkey::v1::BatchOp;
using idemkey::v1::StreamOp;
using idemkey::v1::StreamResult;

// The unary method an op stands for, as CallMetrics counts it.
absl::string_view MethodOf(BatchOp::CallCase call) {
  switch (call) {
    case BatchOp::kReserve:
      return "/idemkey.v1.KeyService/Reserve";
    case BatchOp::kComplete:
      return "/idemkey.v1.KeyService/Complete";
    case BatchOp::kRelease:
      return "/idemkey.v1.KeyService/Release";
    case BatchOp::kHeartbeat:
      return "/idemkey.v1.KeyService/Heartbeat";
    case BatchOp::kLookup:
      return "/idemkey.v1.KeyService/Lookup";
    case BatchOp::CALL_NOT_SET:
      break;
  }
  return "";
}

}  // namespace

KeyStream::KeyStream(store::KeyStore* store, util::ThreadPool* pool,
                     Authorize authorize, MayCreate may_create,
                     metrics::CallMetrics* metrics, OnEnd on_end)
    : store_(store),
      pool_(pool),
      authorize_(std::move(authorize)),
      may_create_(std::move(may_create)),
      metrics_(metrics),
      on_end_(std::move(on_end)) {}

void KeyStream::StartReading() {
  StartRead(&read_);
  Step step;
  {
    absl::MutexLock lock(&mu_);
    --admitting_;  // the constructor's: the first read is started
    step = NextStepLocked();
  }
  Take(step);
}

void KeyStream::OnReadDone(bool ok) {
  if (!ok || read_.ops_size() > api::kMaxBatchOps) {
    Step step;
    {
      absl::MutexLock lock(&mu_);
      reads_done_ = true;
      if (ok) {
        // Answers what it read before, then ends: the client's error.
        end_status_ = grpc::Status(
            grpc::StatusCode::INVALID_ARGUMENT,
            absl::StrCat("a stream message carries at most ", api::kMaxBatchOps,
                         " ops, not ", read_.ops_size(), "; split it"));
      }
      step = NextStepLocked();
    }
    Take(step);
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    // gRPC may complete a read that was pending when the stream finished
    // (a drain): its ops are not applied, and the client, told UNAVAILABLE,
    // resends them. Nothing may be started on a finished stream.
    if (finished_) return;
    ++admitting_;  // no Finish while this read's ops are admitted
  }
  const absl::Time read_at = absl::Now();
  std::vector<Ran> ran;
  ran.reserve(read_.ops_size());
  for (StreamOp& op : *read_.mutable_ops()) Start(std::move(op), read_at, &ran);
  read_.Clear();
  if (!ran.empty()) DeliverWhenDurable(std::move(ran), read_at);
  bool read_again;
  {
    absl::MutexLock lock(&mu_);
    read_again = !draining_;
  }
  // Still admitting: a Drain now cannot Finish (and delete) the stream
  // before this read is started. The next OnReadDone may run on another
  // thread before StartRead returns, hence a count.
  if (read_again) StartRead(&read_);
  Step step;
  {
    absl::MutexLock lock(&mu_);
    --admitting_;
    step = NextStepLocked();
  }
  Take(step);
}

void KeyStream::Start(StreamOp op, absl::Time read_at, std::vector<Ran>* ran) {
  if (!Admit(op.id())) return;
  const absl::Time deadline =
      op.has_timeout()
          ? read_at + absl::Milliseconds(api::DurationMillis(op.timeout()))
          : absl::InfiniteFuture();
  Ran now;
  now.call = op.op().call_case();
  now.result.set_id(op.id());
  now.status = Apply(op, deadline, &now.result,
                     store::CallOptions{.may_wait_for_io = false});
  if (!store::IsWouldBlock(now.status)) {
    ran->push_back(std::move(now));
    return;
  }
  // The store would wait for the disk: again on the pool, where it may.
  auto request = std::make_shared<StreamOp>(std::move(op));
  auto later = std::make_shared<Ran>(std::move(now));
  const bool queued = pool_->Submit([this, request, later, deadline, read_at] {
    later->status = Apply(*request, deadline, &later->result,
                          store::CallOptions{.may_wait_for_io = true});
    std::vector<Ran> one;
    one.push_back(std::move(*later));
    DeliverWhenDurable(std::move(one), read_at);
  });
  if (!queued) {
    later->status = absl::UnavailableError("idemkeyd is shutting down; retry");
    std::vector<Ran> one;
    one.push_back(std::move(*later));
    Deliver(std::move(one), read_at);  // nothing was applied
  }
}

absl::Status KeyStream::Apply(const StreamOp& op, absl::Time deadline,
                              StreamResult* result,
                              const store::CallOptions& options) {
  if (absl::Now() > deadline) {
    return absl::DeadlineExceededError(
        "the op's timeout passed before idemkeyd could start it; it was not "
        "applied");
  }
  // A run the store refused (WouldBlockError) may have filled part of it.
  result->mutable_result()->Clear();
  absl::Status s = api::RunOp(*store_, op.op(), authorize_, may_create_,
                              result->mutable_result(), options);
  NoteTenantCap(s);
  return s;
}

void KeyStream::DeliverWhenDurable(std::vector<Ran> ran, absl::Time read_at) {
  store_->WhenDurable(
      [this, ran = std::move(ran), read_at](absl::Status durable) mutable {
        for (Ran& r : ran)
          r.status = AfterDurable(std::move(r.status), durable);
        Deliver(std::move(ran), read_at);
      });
}

bool KeyStream::Admit(uint64_t id) {
  Step step;
  {
    absl::MutexLock lock(&mu_);
    if (open_ids_.insert(id).second) {
      ++ops_in_flight_;
      return true;
    }
    StreamResult* refused = outbox_.add_results();
    refused->set_id(id);
    api::SetOpError(
        absl::InvalidArgumentError(absl::StrCat(
            "op id ", id,
            " is already in flight on this stream; ids of ops awaiting "
            "an answer must differ")),
        refused->mutable_result());
    step = NextStepLocked();
  }
  Take(step);
  return false;
}

void KeyStream::Deliver(std::vector<Ran> ran, absl::Time read_at) {
  const int64_t nanos = absl::ToInt64Nanoseconds(absl::Now() - read_at);
  for (Ran& r : ran) {
    if (!r.status.ok()) api::SetOpError(r.status, r.result.mutable_result());
    if (metrics_ == nullptr) continue;
    metrics_->RecordCall(
        metrics_->MethodIndex(MethodOf(r.call)),
        static_cast<grpc::StatusCode>(r.result.result().code()), nanos);
    if (r.result.result().code() == 0 && r.result.result().has_reserve()) {
      metrics_->RecordReserveOutcome(r.result.result().reserve().outcome());
    }
  }
  Step step;
  {
    absl::MutexLock lock(&mu_);
    for (Ran& r : ran) {
      open_ids_.erase(r.result.id());
      --ops_in_flight_;
      if (!broken_) *outbox_.add_results() = std::move(r.result);
    }
    step = NextStepLocked();
  }
  Take(step);
}

void KeyStream::OnWriteDone(bool ok) {
  Step step;
  {
    absl::MutexLock lock(&mu_);
    write_in_flight_ = false;
    writing_.Clear();
    if (!ok) {
      broken_ = true;
      outbox_.Clear();
    }
    step = NextStepLocked();
  }
  Take(step);
}

void KeyStream::OnDone() {
  // Finish comes only when no op is in flight and no more are read, so
  // only holders may still refer to this.
  on_end_(this);
  bool unheld;
  {
    absl::MutexLock lock(&mu_);
    done_ = true;
    unheld = holds_ == 0;
  }
  if (unheld) delete this;
}

void KeyStream::Hold() {
  absl::MutexLock lock(&mu_);
  ++holds_;
}

void KeyStream::Release() {
  bool last;
  {
    absl::MutexLock lock(&mu_);
    last = --holds_ == 0 && done_;
  }
  if (last) delete this;
}

void KeyStream::Drain() {
  Step step;
  {
    absl::MutexLock lock(&mu_);
    draining_ = true;
    step = NextStepLocked();
  }
  Take(step);
}

KeyStream::Step KeyStream::NextStepLocked() {
  if (finished_ || write_in_flight_) return Step();
  if (!broken_ && outbox_.results_size() > 0) {
    write_in_flight_ = true;
    writing_.Swap(&outbox_);
    return Step{.action = Step::kWrite, .status = grpc::Status()};
  }
  if ((reads_done_ || draining_) && ops_in_flight_ == 0 && admitting_ == 0) {
    finished_ = true;
    grpc::Status status = end_status_;
    if (broken_) {
      status = grpc::Status(grpc::StatusCode::CANCELLED,
                            "the client stopped reading answers");
    } else if (!reads_done_) {
      status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                            "idemkeyd is stopping; every op it read was "
                            "answered: reconnect and resend the others");
    }
    return Step{.action = Step::kFinish, .status = status};
  }
  return Step();
}

void KeyStream::Take(const Step& step) {
  switch (step.action) {
    case Step::kWrite:
      // writing_ is left alone until OnWriteDone, which may come on another
      // thread before StartWrite returns.
      StartWrite(&writing_);
      break;
    case Step::kFinish:
      Finish(step.status);  // OnDone follows, and deletes this
      break;
    case Step::kNothing:
      break;
  }
}

}  // namespace idemkey::service
