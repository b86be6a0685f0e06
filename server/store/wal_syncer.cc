#include "server/store/wal_syncer.h"

#include <algorithm>
#include <utility>

namespace idemkey::store {

WalSyncer::WalSyncer(Hooks hooks)
    : hooks_(std::move(hooks)), thread_([this] { Run(); }) {}

WalSyncer::~WalSyncer() { Stop(); }

void WalSyncer::WhenSynced(Done done) {
  // Read before taking the lock: whatever the caller wrote or saw is at or
  // below this number.
  const uint64_t sequence = hooks_.latest_sequence();
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (sequence > synced_ && !stopping_) {
      waiters_.push_back({sequence, std::move(done)});
      lock.unlock();
      wake_.notify_one();
      return;
    }
    if (sequence <= synced_) {
      lock.unlock();
      std::move(done)(absl::OkStatus());
      return;
    }
  }
  // Stopped: nobody else will sync.
  std::move(done)(hooks_.sync());
}

void WalSyncer::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    wake_.wait(lock, [this] { return !waiters_.empty() || stopping_; });
    if (waiters_.empty()) return;  // stopping, and nobody is left waiting
    lock.unlock();
    const uint64_t target = hooks_.latest_sequence();
    const absl::Status status = hooks_.sync();
    lock.lock();
    ++syncs_;
    if (status.ok()) synced_ = std::max(synced_, target);
    // Waiters that read a number above `target` registered after it was
    // read; the next sync covers them.
    auto covered = std::partition(
        waiters_.begin(), waiters_.end(),
        [target](const Waiter& w) { return w.sequence > target; });
    std::vector<Waiter> ready(std::make_move_iterator(covered),
                              std::make_move_iterator(waiters_.end()));
    waiters_.erase(covered, waiters_.end());
    lock.unlock();
    for (Waiter& w : ready) std::move(w.done)(status);
    lock.lock();
  }
}

void WalSyncer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

uint64_t WalSyncer::syncs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return syncs_;
}

}  // namespace idemkey::store
