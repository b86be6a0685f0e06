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

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace idemkey::util {

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

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace idemkey::util

#endif  // IDEMKEY_SERVER_UTIL_THREAD_POOL_H_
