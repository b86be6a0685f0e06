#include "bench/closed_loop.h"

#include <thread>
#include <utility>

namespace idemkey::bench {

ClosedLoop::ClosedLoop(Workload& workload, size_t in_flight,
                       std::optional<double> seconds)
    : workload_(workload),
      outcome_names_(workload.OutcomeNames()),
      seconds_(seconds),
      slots_(in_flight) {
  for (size_t i = 0; i < slots_.size(); ++i) {
    slots_[i].index = i;
    slots_[i].outcomes.assign(outcome_names_.size(), 0);
  }
}

RunResult ClosedLoop::Run() {
  active_ = slots_.size();
  const Clock::time_point start = Clock::now();
  deadline_ = seconds_ ? start + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(*seconds_))
                       : Clock::time_point::max();
  for (Slot& slot : slots_) StartNext(slot);
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return active_ == 0; });
  }
  RunResult result;
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<uint64_t> outcomes(outcome_names_.size(), 0);
  for (const Slot& slot : slots_) {
    result.latency.Merge(slot.latency);
    result.errors += slot.errors;
    if (result.first_error.empty()) result.first_error = slot.first_error;
    for (size_t i = 0; i < outcomes.size(); ++i)
      outcomes[i] += slot.outcomes[i];
  }
  for (size_t i = 0; i < outcomes.size(); ++i) {
    result.outcomes.emplace_back(outcome_names_[i], outcomes[i]);
  }
  return result;
}

void ClosedLoop::StartNext(Slot& slot) {
  if (Clock::now() >= deadline_) return SlotStopped();
  const uint64_t seq = next_seq_.fetch_add(1, std::memory_order_relaxed);
  slot.started = Clock::now();
  if (!workload_.Start(slot.index, seq,
                       [this, &slot](OpEnd end) { OnDone(slot, end); })) {
    SlotStopped();
  }
}

void ClosedLoop::OnDone(Slot& slot, OpEnd end) {
  slot.latency.Record(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() -
                                                           slot.started)
          .count()));
  if (!end.error.empty()) {
    if (slot.errors++ == 0) slot.first_error = std::move(end.error);
  } else if (end.outcome >= 0 &&
             static_cast<size_t>(end.outcome) < slot.outcomes.size()) {
    ++slot.outcomes[end.outcome];
  }
  StartNext(slot);
}

void ClosedLoop::SlotStopped() {
  std::lock_guard<std::mutex> lock(mu_);
  if (--active_ == 0) cv_.notify_one();
}

RunResult RunBlockingLoop(
    size_t threads, double seconds,
    const std::function<std::string(size_t thread, uint64_t n)>& op) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> next{0};
  std::vector<RunResult> per_thread(threads);
  std::vector<std::thread> running;
  const Clock::time_point start = Clock::now();
  for (size_t i = 0; i < threads; ++i) {
    running.emplace_back([&, i] {
      RunResult& mine = per_thread[i];
      while (!stop.load(std::memory_order_relaxed)) {
        const uint64_t n = next.fetch_add(1, std::memory_order_relaxed);
        const Clock::time_point began = Clock::now();
        std::string error = op(i, n);
        mine.latency.Record(static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() -
                                                                 began)
                .count()));
        if (!error.empty() && mine.errors++ == 0) {
          mine.first_error = std::move(error);
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (std::thread& t : running) t.join();
  RunResult result;
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (RunResult& r : per_thread) {
    result.latency.Merge(r.latency);
    result.errors += r.errors;
    if (result.first_error.empty()) result.first_error = r.first_error;
  }
  return result;
}

}  // namespace idemkey::bench
