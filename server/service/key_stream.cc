#include "server/service/key_stream.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/api/convert.h"
#include "server/api/key_calls.h"
#include "server/service/store_call.h"
#include "server/service/tenant_cap_note.h"

namespace idemkey::service {
namespace {

using idemkey::v1::BatchOp;
using idemkey::v1::StreamOp;
using idemkey::v1::StreamResult;

// The unary method an op stands for, as CallMetrics counts it.
absl::string_view MethodOf(const BatchOp& op) {
  switch (op.call_case()) {
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
  for (StreamOp& op : *read_.mutable_ops()) Start(std::move(op), read_at);
  read_.Clear();
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

void KeyStream::Start(StreamOp op, absl::Time read_at) {
  if (!Admit(op.id())) return;
  const absl::Time deadline =
      op.has_timeout()
          ? read_at + absl::Milliseconds(api::DurationMillis(op.timeout()))
          : absl::InfiniteFuture();
  auto result = std::make_shared<StreamResult>();
  result->set_id(op.id());
  auto request = std::make_shared<StreamOp>(std::move(op));
  RunStoreWork(
      pool_,
      [this, request, result, deadline](const store::CallOptions& options) {
        if (absl::Now() > deadline) {
          return absl::DeadlineExceededError(
              "the op's timeout passed before idemkeyd could start it; it "
              "was not applied");
        }
        result->mutable_result()->Clear();
        absl::Status s =
            api::RunOp(*store_, request->op(), authorize_, may_create_,
                       result->mutable_result(), options);
        NoteTenantCap(s);
        return s;
      },
      [this, request, result, read_at](absl::Status s) {
        store_->WhenDurable([this, s = std::move(s), request, result,
                             read_at](absl::Status durable) mutable {
          s = AfterDurable(std::move(s), durable);
          if (!s.ok()) api::SetOpError(s, result->mutable_result());
          Deliver(std::move(*result), request->op(), read_at);
        });
      },
      [this, request, result, read_at] {
        api::SetOpError(
            absl::UnavailableError("idemkeyd is shutting down; retry"),
            result->mutable_result());
        Deliver(std::move(*result), request->op(), read_at);
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

void KeyStream::Deliver(StreamResult result, const BatchOp& op,
                        absl::Time read_at) {
  if (metrics_ != nullptr) {
    const int method = metrics_->MethodIndex(MethodOf(op));
    metrics_->RecordCall(method,
                         static_cast<grpc::StatusCode>(result.result().code()),
                         absl::ToInt64Nanoseconds(absl::Now() - read_at));
    if (result.result().code() == 0 && result.result().has_reserve()) {
      metrics_->RecordReserveOutcome(result.result().reserve().outcome());
    }
  }
  Step step;
  {
    absl::MutexLock lock(&mu_);
    open_ids_.erase(result.id());
    --ops_in_flight_;
    if (!broken_) *outbox_.add_results() = std::move(result);
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
