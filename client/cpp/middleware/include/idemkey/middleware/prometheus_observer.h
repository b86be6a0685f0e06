// prometheus_observer.h — the middleware's events as Prometheus text, for
// the app to serve on its own /metrics.
//
//   auto metrics = std::make_shared<idemkey::middleware::PrometheusObserver>();
//   options.observer = metrics;
//   server.Get("/metrics", [metrics](const auto&, auto& res) {
//     res.set_content(metrics->Text(), "text/plain; version=0.0.4");
//   });
//
// Families:
//   idemkey_middleware_events_total{event="..."}    counter, per EventKind
//   idemkey_middleware_decision_seconds             histogram of Begin's
//                                                   time in the key service
//   idemkey_middleware_finish_seconds               histogram of Finish's
//
// Thread-safe: counting is lock-free.

#ifndef IDEMKEY_MIDDLEWARE_PROMETHEUS_OBSERVER_H_
#define IDEMKEY_MIDDLEWARE_PROMETHEUS_OBSERVER_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "idemkey/middleware/observer.h"

namespace idemkey::middleware {

class PrometheusObserver final : public Observer {
 public:
  void OnEvent(const Event& event) override;

  // The exposition text of every family.
  std::string Text() const;
  // One counter, for tests and health checks.
  uint64_t Count(EventKind kind) const;

  // Upper bounds of the histogram buckets, in seconds (+Inf is implied).
  static constexpr std::array<double, 10> kBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};

 private:
  struct Histogram {
    std::array<std::atomic<uint64_t>, kBuckets.size() + 1> buckets{};
    std::atomic<uint64_t> count{0};
    std::atomic<uint64_t> sum_micros{0};
    void Observe(absl::Duration d);
    void Write(absl::string_view name, absl::string_view help,
               std::string* out) const;
  };

  static constexpr size_t kKinds =
      static_cast<size_t>(EventKind::kLeaseLost) + 1;
  std::array<std::atomic<uint64_t>, kKinds> counts_{};
  Histogram decision_;
  Histogram finish_;
};

}  // namespace idemkey::middleware

#endif  // IDEMKEY_MIDDLEWARE_PROMETHEUS_OBSERVER_H_
