#include "call_batcher.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace idemkey::client {

CallBatcher::CallBatcher(SendFn send, Options options)
    : send_(std::move(send)), options_(options) {}

absl::StatusOr<idemkey::v1::BatchResult> CallBatcher::Run(
    idemkey::v1::BatchOp op) {
  Pending mine;
  mine.bytes = op.ByteSizeLong();
  mine.op = std::move(op);
  sync::MutexLock lock(&mu_);
  queue_.push_back(&mine);
  for (;;) {
    if (mine.done) return std::move(mine.result);
    if (in_flight_ < options_.max_in_flight && !queue_.empty()) {
      // Room for a batch: send what is queued, our call or not, so the
      // pipe stays full; then look again.
      std::vector<Pending*> batch = TakeBatch();
      ++in_flight_;
      ++batches_sent_;
      mu_.Unlock();
      Send(batch);
      mu_.Lock();
      --in_flight_;
      // The freed slot goes to the oldest waiting call, which sends the
      // next batch; every other waiter sleeps until its own answer.
      if (!queue_.empty()) queue_.front()->wake.Signal();
      continue;
    }
    mine.wake.Wait(&mu_);
  }
}

std::vector<CallBatcher::Pending*> CallBatcher::TakeBatch() {
  std::vector<Pending*> batch;
  size_t bytes = 0;
  while (
      !queue_.empty() && batch.size() < options_.max_ops &&
      (batch.empty() || bytes + queue_.front()->bytes <= options_.max_bytes)) {
    bytes += queue_.front()->bytes;
    batch.push_back(queue_.front());
    queue_.pop_front();
  }
  return batch;
}

void CallBatcher::Send(const std::vector<Pending*>& batch) {
  idemkey::v1::BatchRequest request;
  request.mutable_ops()->Reserve(static_cast<int>(batch.size()));
  // The ops move into the request; `send_` sends it again if it retries.
  for (Pending* p : batch) request.add_ops()->Swap(&p->op);
  idemkey::v1::BatchResponse response;
  absl::Status s = send_(request, &response);
  if (s.ok() && response.results_size() != request.ops_size()) {
    s = absl::InternalError(absl::StrCat("idemkeyd answered a batch of ",
                                         request.ops_size(), " ops with ",
                                         response.results_size(), " results"));
  }
  std::vector<absl::StatusOr<idemkey::v1::BatchResult>> results;
  results.reserve(batch.size());
  for (int i = 0; i < static_cast<int>(batch.size()); ++i) {
    if (s.ok()) {
      results.emplace_back(std::move(*response.mutable_results(i)));
    } else {
      results.emplace_back(s);
    }
  }
  sync::MutexLock lock(&mu_);
  for (size_t i = 0; i < batch.size(); ++i) {
    batch[i]->result = std::move(results[i]);
    batch[i]->done = true;
    batch[i]->wake.Signal();
  }
}

size_t CallBatcher::batches_sent() const {
  sync::MutexLock lock(&mu_);
  return batches_sent_;
}

}  // namespace idemkey::client
