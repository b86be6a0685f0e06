#include "server/metrics/call_metrics.h"

#include <chrono>
#include <set>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "idemkey/v1/idemkey.pb.h"

namespace idemkey::metrics {
namespace {

constexpr absl::string_view kOutcomeNames[4] = {"owner", "in_progress",
                                                "completed", "mismatch"};

using grpc::experimental::InterceptionHookPoints;

// One per call: notes when the call started and, for Reserve, the outcome
// it answers (for Batch, those of its Reserve ops); records them when the
// status is sent.
class CallInterceptor final : public grpc::experimental::Interceptor {
 public:
  CallInterceptor(CallMetrics* metrics, int method)
      : metrics_(metrics),
        method_(method),
        start_(std::chrono::steady_clock::now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* batch) override {
    if (batch->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_MESSAGE)) {
      // Each method's response type is fixed by the proto.
      const void* message = batch->GetSendMessage();
      if (message != nullptr) CollectOutcomes(message);
    }
    if (batch->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::StatusCode code = batch->GetSendStatus().error_code();
      const int64_t nanos =
          std::chrono::duration_cast<std::chrono::nanoseconds>(
              std::chrono::steady_clock::now() - start_)
              .count();
      metrics_->RecordCall(method_, code, nanos);
      if (code == grpc::StatusCode::OK) {
        for (int outcome : outcomes_) metrics_->RecordReserveOutcome(outcome);
      }
    }
    batch->Proceed();
  }

 private:
  void CollectOutcomes(const void* message) {
    if (method_ == metrics_->reserve_index()) {
      outcomes_.push_back(
          static_cast<const idemkey::v1::ReserveResponse*>(message)->outcome());
    } else if (method_ == metrics_->batch_index()) {
      for (const idemkey::v1::BatchResult& r :
           static_cast<const idemkey::v1::BatchResponse*>(message)->results()) {
        if (r.code() == 0 && r.has_reserve()) {
          outcomes_.push_back(r.reserve().outcome());
        }
      }
    }
  }

  CallMetrics* const metrics_;
  const int method_;
  const std::chrono::steady_clock::time_point start_;
  std::vector<int> outcomes_;
};

class CallInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CallInterceptorFactory(CallMetrics* metrics) : metrics_(metrics) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    const int method = metrics_->MethodIndex(info->method());
    if (method < 0) return nullptr;  // health, reflection: not counted
    return new CallInterceptor(metrics_, method);
  }

 private:
  CallMetrics* const metrics_;
};

}  // namespace

CallMetrics::CallMetrics(const std::vector<std::string>& services) {
  std::vector<const google::protobuf::MethodDescriptor*> all;
  std::set<std::string> seen, duplicated;
  for (const std::string& name : services) {
    const google::protobuf::ServiceDescriptor* service =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
            name);
    if (service == nullptr) continue;
    for (int i = 0; i < service->method_count(); ++i) {
      all.push_back(service->method(i));
      if (!seen.insert(service->method(i)->name()).second) {
        duplicated.insert(service->method(i)->name());
      }
    }
  }
  for (const google::protobuf::MethodDescriptor* m : all) {
    auto method = std::make_unique<Method>();
    method->label = duplicated.count(m->name()) > 0
                        ? absl::StrCat(m->service()->name(), "/", m->name())
                        : m->name();
    const int index = static_cast<int>(methods_.size());
    by_path_[absl::StrCat("/", m->service()->full_name(), "/", m->name())] =
        index;
    if (m->full_name() == "idemkey.v1.KeyService.Reserve") {
      reserve_index_ = index;
    } else if (m->full_name() == "idemkey.v1.KeyService.Batch") {
      batch_index_ = index;
    }
    methods_.push_back(std::move(method));
  }
}

int CallMetrics::MethodIndex(absl::string_view path) const {
  auto it = by_path_.find(path);
  return it == by_path_.end() ? -1 : it->second;
}

void CallMetrics::RecordCall(int method, grpc::StatusCode code, int64_t nanos) {
  if (method < 0 || method >= static_cast<int>(methods_.size())) return;
  Method& m = *methods_[method];
  int c = static_cast<int>(code);
  if (c < 0 || c >= kGrpcCodes) c = static_cast<int>(grpc::StatusCode::UNKNOWN);
  m.codes[c].fetch_add(1, std::memory_order_relaxed);
  if (nanos < 0) nanos = 0;
  const double seconds = static_cast<double>(nanos) * 1e-9;
  size_t bucket = 0;
  while (bucket < kDurationBuckets.size() &&
         seconds > kDurationBuckets[bucket]) {
    ++bucket;
  }
  m.buckets[bucket].fetch_add(1, std::memory_order_relaxed);
  m.sum_nanos.fetch_add(static_cast<uint64_t>(nanos),
                        std::memory_order_relaxed);
}

void CallMetrics::RecordReserveOutcome(int outcome) {
  if (outcome < idemkey::v1::OUTCOME_OWNER ||
      outcome > idemkey::v1::OUTCOME_MISMATCH) {
    return;
  }
  outcomes_[outcome - idemkey::v1::OUTCOME_OWNER].fetch_add(
      1, std::memory_order_relaxed);
}

void CallMetrics::Write(TextWriter* out) const {
  out->Family("idemkey_calls_total", "counter",
              "gRPC calls of KeyService and AdminService finished, by method "
              "and status code. code=\"OK\" is always listed; other codes "
              "once they occur.");
  for (const auto& m : methods_) {
    for (int c = 0; c < kGrpcCodes; ++c) {
      const uint64_t n = m->codes[c].load(std::memory_order_relaxed);
      if (n == 0 && c != 0) continue;
      out->Sample("idemkey_calls_total",
                  {{"method", m->label},
                   {"code", absl::StatusCodeToString(
                                static_cast<absl::StatusCode>(c))}},
                  n);
    }
  }

  out->Family("idemkey_reserve_outcomes_total", "counter",
              "Reserve calls answered OK, by outcome.");
  for (int i = 0; i < 4; ++i) {
    out->Sample("idemkey_reserve_outcomes_total",
                {{"outcome", kOutcomeNames[i]}},
                outcomes_[i].load(std::memory_order_relaxed));
  }

  out->Family("idemkey_call_duration_seconds", "histogram",
              "Time from the arrival of a call to its status being sent, "
              "including the wait for a store thread, by method.");
  for (const auto& m : methods_) {
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= kDurationBuckets.size(); ++b) {
      cumulative += m->buckets[b].load(std::memory_order_relaxed);
      const std::string le = b < kDurationBuckets.size()
                                 ? FormatDouble(kDurationBuckets[b])
                                 : std::string("+Inf");
      out->Sample("idemkey_call_duration_seconds_bucket",
                  {{"method", m->label}, {"le", le}}, cumulative);
    }
    out->Sample(
        "idemkey_call_duration_seconds_sum", {{"method", m->label}},
        static_cast<double>(m->sum_nanos.load(std::memory_order_relaxed)) *
            1e-9);
    out->Sample("idemkey_call_duration_seconds_count", {{"method", m->label}},
                cumulative);
  }
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
NewCallMetricsInterceptorFactory(CallMetrics* metrics) {
  return std::make_unique<CallInterceptorFactory>(metrics);
}

}  // namespace idemkey::metrics
