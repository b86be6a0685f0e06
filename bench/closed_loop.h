// closed_loop.h — the closed-loop load engine of idemkey-bench.
//
// A Workload turns an operation number into one or more asynchronous calls
// (a Ping; a Reserve then a Complete; two Redis SETs) and reports how the
// operation ended. ClosedLoop keeps `in_flight` operations outstanding, one
// per slot: the end of an operation records its latency and starts the
// slot's next one at once, from whichever thread reported the end, until the
// deadline passes or the workload has nothing left to start.
//
//   class PingOps : public Workload { ... };  // sized for 64 slots
//   PingOps ops(64);
//   RunResult r = ClosedLoop(ops, 64, /*seconds=*/5.0).Run();
//   std::cout << r.rate() << " ops/s, p99 " << r.latency.Quantile(0.99);

#ifndef IDEMKEY_BENCH_CLOSED_LOOP_H_
#define IDEMKEY_BENCH_CLOSED_LOOP_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bench/latency_histogram.h"

namespace idemkey::bench {

using Clock = std::chrono::steady_clock;

// How one operation ended.
struct OpEnd {
  // Why it failed or got another answer than expected; empty when it went
  // as expected.
  std::string error;
  // Index into Workload::OutcomeNames() of the answer it got, for workloads
  // whose operations may end in more than one expected way.
  int outcome = 0;
};

// Reports the end of one operation; called exactly once per started one.
using Done = std::function<void(OpEnd)>;

// The operations a ClosedLoop runs. Built for a number of slots, one
// operation at a time in each, so per-slot state needs no lock.
class Workload {
 public:
  virtual ~Workload() = default;

  // Starts operation `seq` (0, 1, ... in start order over all slots) in
  // slot `slot`, and calls `done` when it ends, from any thread. Returns
  // false, without calling `done`, when the slot has nothing left to run.
  virtual bool Start(size_t slot, uint64_t seq, Done done) = 0;

  // Names of the outcomes OpEnd::outcome indexes; empty (the default) when
  // the workload does not count outcomes.
  virtual std::vector<std::string> OutcomeNames() const { return {}; }
};

// What one run measured.
struct RunResult {
  // Latency of every finished operation, failed ones included.
  LatencyHistogram latency;
  uint64_t errors = 0;
  std::string first_error;
  // (name, count) of each outcome of the operations that did not fail;
  // empty when the workload does not count outcomes.
  std::vector<std::pair<std::string, uint64_t>> outcomes;
  double seconds = 0;

  uint64_t ops() const { return latency.count(); }
  double rate() const { return seconds > 0 ? ops() / seconds : 0; }
};

// Runs a workload once: `in_flight` slots (as many as the workload was built
// for), each starting its next operation when the previous one ends, for
// `seconds` or, with nullopt, until the workload has nothing left to start.
// Each slot writes only its own counters, so the slots share nothing but the
// operation counter.
class ClosedLoop {
 public:
  ClosedLoop(Workload& workload, size_t in_flight,
             std::optional<double> seconds);

  // Starts every slot and returns once all of them have stopped. The
  // duration counts from here, and includes the operations still running at
  // its end.
  RunResult Run();

 private:
  struct Slot {
    size_t index = 0;
    Clock::time_point started;
    LatencyHistogram latency;
    std::vector<uint64_t> outcomes;
    uint64_t errors = 0;
    std::string first_error;
  };

  void StartNext(Slot& slot);
  void OnDone(Slot& slot, OpEnd end);
  void SlotStopped();

  Workload& workload_;
  const std::vector<std::string> outcome_names_;
  const std::optional<double> seconds_;
  Clock::time_point deadline_;
  std::vector<Slot> slots_;
  std::atomic<uint64_t> next_seq_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  size_t active_ = 0;  // guarded by mu_
};

// For targets whose calls block (the client library, libpq): `threads`
// threads, each calling `op(thread, n)` in a loop, n = 0, 1, ... over all of
// them, for `seconds`. `op` returns empty, or what went wrong; thread i is
// the only caller with i, so per-thread state (a connection) needs no lock.
RunResult RunBlockingLoop(
    size_t threads, double seconds,
    const std::function<std::string(size_t thread, uint64_t n)>& op);

// splitmix64: spreads sequence numbers into well-mixed pseudo-random values,
// without RNG state shared between callbacks.
inline uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace idemkey::bench

#endif  // IDEMKEY_BENCH_CLOSED_LOOP_H_
