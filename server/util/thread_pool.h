// thread_pool.h — a fixed set of threads running submitted tasks in order.
//
// idemkeyd runs store calls here so that gRPC's callback threads never block
// on a synced RocksDB write:
//
//   ThreadPool pool(32);
//   if (!pool.Submit([] { ... })) { /* shutting down: task not run */ }
//   pool.Shutdown();  // runs what was queued, then joins

#ifndef IDEMKEY_SERVER_UTIL_THREAD_POOL_H_
#define IDEMKEY_SERVER_UTIL_THREAD_POOL_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "idemkey/sync/mutex.h"

namespace idemkey::util {

// Thread-safe: Submit and Shutdown may be called from any thread, also from
// a task (but Shutdown not from a task, which it would wait for).
class ThreadPool {
 public:
  explicit ThreadPool(size_t threads);
  // Shuts down if Shutdown() was not called.
  ~ThreadPool();

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Queues `task`; false (and `task` dropped) once Shutdown has begun.
  bool Submit(std::function<void()> task);
  // Stops accepting tasks, runs every queued one, joins the threads.
  // Idempotent.
  void Shutdown();

 private:
  void Work();

  sync::Mutex mu_;
  sync::CondVar cv_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;  // set by the constructor only
};

}  // namespace idemkey::util

#endif  // IDEMKEY_SERVER_UTIL_THREAD_POOL_H_
