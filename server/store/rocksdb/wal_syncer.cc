#include "server/store/rocksdb/wal_syncer.h"

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
  bool synced = false;
  {
    sync::MutexLock lock(&mu_);
    if (sequence > synced_ && !stopping_) {
      waiters_.push_back({sequence, std::move(done)});
      wake_.Signal();
      return;
    }
    synced = sequence <= synced_;
  }
  // Already covered; or stopped, and nobody else will sync.
  std::move(done)(synced ? absl::OkStatus() : hooks_.sync());
}

void WalSyncer::Run() {
  mu_.Lock();
  for (;;) {
    while (waiters_.empty() && !stopping_) wake_.Wait(&mu_);
    if (waiters_.empty()) break;  // stopping, and nobody is left waiting
    mu_.Unlock();
    const uint64_t target = hooks_.latest_sequence();
    const absl::Status status = hooks_.sync();
    mu_.Lock();
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
    mu_.Unlock();
    for (Waiter& w : ready) std::move(w.done)(status);
    mu_.Lock();
  }
  mu_.Unlock();
}

void WalSyncer::Stop() {
  {
    sync::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.Signal();
  thread_.join();
}

uint64_t WalSyncer::syncs() const {
  sync::MutexLock lock(&mu_);
  return syncs_;
}

}  // namespace idemkey::store
