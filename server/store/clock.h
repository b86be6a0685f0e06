// clock.h — where the store reads the time.
//
// Every expiry decision (leases, retention, the TTL compaction filter) asks a
// Clock, so tests can move time by hand instead of sleeping:
//
//   idemkey::store::ManualClock clock(/*now_ms=*/1'700'000'000'000);
//   KeyStore store(&backend, {.clock = &clock});
//   clock.Advance(absl::Seconds(31));  // every lease of 30 s has lapsed
//
// Times are Unix milliseconds: the resolution stored on disk.

#ifndef IDEMKEY_SERVER_STORE_CLOCK_H_
#define IDEMKEY_SERVER_STORE_CLOCK_H_

#include <atomic>
#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace idemkey::store {

class Clock {
 public:
  virtual ~Clock() = default;
  // Unix time in milliseconds. Thread-safe.
  virtual int64_t NowMillis() const = 0;
};

// The wall clock. A process-wide instance; never deleted.
class SystemClock final : public Clock {
 public:
  static const Clock* Get() {
    static const SystemClock* const clock = new SystemClock;
    return clock;
  }
  int64_t NowMillis() const override { return absl::ToUnixMillis(absl::Now()); }
};

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t now_ms) : now_ms_(now_ms) {}
  int64_t NowMillis() const override { return now_ms_.load(); }
  void Advance(absl::Duration d) { now_ms_ += absl::ToInt64Milliseconds(d); }

 private:
  std::atomic<int64_t> now_ms_;
};

}  // namespace idemkey::store

#endif  // IDEMKEY_SERVER_STORE_CLOCK_H_
