#include "idemkey/middleware/prometheus_observer.h"

#include "absl/strings/str_cat.h"

namespace idemkey::middleware {

namespace {

// Which histogram an event's time belongs to: Begin's or Finish's.
bool IsFinish(EventKind kind) {
  return kind == EventKind::kStored || kind == EventKind::kBodyOmitted ||
         kind == EventKind::kReleased || kind == EventKind::kFinishFailed ||
         kind == EventKind::kLeaseLost;
}

}  // namespace

void PrometheusObserver::Histogram::Observe(absl::Duration d) {
  const double seconds = absl::ToDoubleSeconds(d);
  size_t i = 0;
  while (i < kBuckets.size() && seconds > kBuckets[i]) ++i;
  buckets[i].fetch_add(1, std::memory_order_relaxed);
  count.fetch_add(1, std::memory_order_relaxed);
  sum_micros.fetch_add(static_cast<uint64_t>(absl::ToInt64Microseconds(d)),
                       std::memory_order_relaxed);
}

void PrometheusObserver::Histogram::Write(absl::string_view name,
                                          absl::string_view help,
                                          std::string* out) const {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name,
                  " histogram\n");
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= kBuckets.size(); ++i) {
    cumulative += buckets[i].load(std::memory_order_relaxed);
    const std::string le =
        i < kBuckets.size() ? absl::StrCat(kBuckets[i]) : "+Inf";
    absl::StrAppend(out, name, "_bucket{le=\"", le, "\"} ", cumulative, "\n");
  }
  absl::StrAppend(
      out, name, "_sum ",
      static_cast<double>(sum_micros.load(std::memory_order_relaxed)) / 1e6,
      "\n", name, "_count ", count.load(std::memory_order_relaxed), "\n");
}

void PrometheusObserver::OnEvent(const Event& event) {
  counts_[static_cast<size_t>(event.kind)].fetch_add(1,
                                                     std::memory_order_relaxed);
  // Only steps that asked the key service have a time worth a histogram.
  if (event.kind == EventKind::kBypass ||
      event.kind == EventKind::kRejectedKey ||
      event.kind == EventKind::kMissingTenant) {
    return;
  }
  (IsFinish(event.kind) ? finish_ : decision_).Observe(event.elapsed);
}

uint64_t PrometheusObserver::Count(EventKind kind) const {
  return counts_[static_cast<size_t>(kind)].load(std::memory_order_relaxed);
}

std::string PrometheusObserver::Text() const {
  std::string out =
      "# HELP idemkey_middleware_events_total What the idempotency "
      "middleware did, by event.\n"
      "# TYPE idemkey_middleware_events_total counter\n";
  for (size_t i = 0; i < kKinds; ++i) {
    absl::StrAppend(&out, "idemkey_middleware_events_total{event=\"",
                    EventName(static_cast<EventKind>(i)), "\"} ",
                    counts_[i].load(std::memory_order_relaxed), "\n");
  }
  decision_.Write("idemkey_middleware_decision_seconds",
                  "Time of the key service's decision on a request.", &out);
  finish_.Write("idemkey_middleware_finish_seconds",
                "Time of storing (or releasing) a request's response.", &out);
  return out;
}

}  // namespace idemkey::middleware
