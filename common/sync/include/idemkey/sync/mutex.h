// mutex.h — a mutex, its scoped lock and a condition variable that clang's
// thread-safety analysis understands.
//
// Why not absl::Mutex: ThreadSanitizer sees a lock only where the code that
// takes it is instrumented, and Debian's libabsl is not, so every absl::Mutex
// would look like no synchronisation at all to the TSan build. std::mutex
// goes through pthread, which TSan intercepts; this wrapper adds the
// annotations (as LevelDB's port::Mutex does), so both tools work:
//
//   class Counter {
//    public:
//     void Add() {
//       sync::MutexLock lock(&mu_);
//       ++n_;
//     }
//    private:
//     sync::Mutex mu_;
//     int n_ ABSL_GUARDED_BY(mu_) = 0;
//   };
//
// Build with clang and -Wthread-safety (scripts/dev.sh test does) to have
// the compiler check every ABSL_GUARDED_BY and ABSL_EXCLUSIVE_LOCKS_REQUIRED.

#ifndef IDEMKEY_SYNC_MUTEX_H_
#define IDEMKEY_SYNC_MUTEX_H_

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

namespace idemkey::sync {

// Not recursive. Thread-safe, of course.
class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  // Tells the analysis that the caller holds the lock (no run-time check).
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds `mu` for its scope.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->Lock();
  }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// A condition variable, used with a Mutex the caller holds (as
// absl::CondVar). Waits may wake spuriously: wait in a loop over the
// condition. Thread-safe.
//
//   sync::MutexLock lock(&mu_);
//   while (queue_.empty()) cv_.Wait(&mu_);
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // Releases `mu` while waiting; holds it again on return.
  void Wait(Mutex* mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();  // still held, by the caller
  }
  // Waits at most `timeout`; false when it passed without a wake-up.
  bool WaitFor(Mutex* mu, absl::Duration timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    const std::cv_status woken =
        cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout));
    lock.release();
    return woken == std::cv_status::no_timeout;
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace idemkey::sync

#endif  // IDEMKEY_SYNC_MUTEX_H_
