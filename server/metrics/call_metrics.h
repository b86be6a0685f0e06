// call_metrics.h — counts and times every gRPC call of idemkeyd's services,
// in one place: a server interceptor sees each call's method and the status
// it finishes with, whichever handler (pooled, inline, refused by auth or by
// a draining pool) finished it.
//
//   CallMetrics calls({"idemkey.v1.KeyService", "idemkey.v1.AdminService"});
//   std::vector<std::unique_ptr<
//       grpc::experimental::ServerInterceptorFactoryInterface>> creators;
//   creators.push_back(NewCallMetricsInterceptorFactory(&calls));
//   builder.experimental().SetInterceptorCreators(std::move(creators));
//   ...
//   TextWriter out;
//   calls.Write(&out);  // idemkey_calls_total, idemkey_reserve_outcomes_total,
//                       // idemkey_call_duration_seconds
//
// Label sets are bounded: methods come from the services' descriptors (calls
// of other services, such as grpc.health.v1, are not counted), codes are the
// 17 canonical gRPC codes, outcomes the four of Reserve. Recording is a few
// relaxed atomic increments, no lock.

#ifndef IDEMKEY_SERVER_METRICS_CALL_METRICS_H_
#define IDEMKEY_SERVER_METRICS_CALL_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "grpcpp/support/server_interceptor.h"
#include "grpcpp/support/status.h"
#include "server/metrics/exposition.h"

namespace idemkey::metrics {

// Upper bounds (seconds) of idemkey_call_duration_seconds; +Inf follows.
inline constexpr std::array<double, 13> kDurationBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};

inline constexpr int kGrpcCodes = 17;  // OK .. UNAUTHENTICATED

// Reserve outcomes, in the order of idemkey.v1.Outcome (1..4).
enum class ReserveOutcome { kOwner = 0, kInProgress, kCompleted, kMismatch };

class CallMetrics {
 public:
  // Full service names ("idemkey.v1.KeyService"); each must be in the
  // generated descriptor pool. A method's label is its short name, or
  // "Service/Method" if two services share a method name.
  explicit CallMetrics(const std::vector<std::string>& services);

  CallMetrics(const CallMetrics&) = delete;
  CallMetrics& operator=(const CallMetrics&) = delete;

  // The index of "/package.Service/Method", or -1 if not counted.
  int MethodIndex(absl::string_view path) const;
  // The Reserve and Batch methods' indexes, or -1.
  int reserve_index() const { return reserve_index_; }
  int batch_index() const { return batch_index_; }

  void RecordCall(int method, grpc::StatusCode code, int64_t nanos);
  // `outcome` is an idemkey.v1.Outcome value; others are ignored.
  void RecordReserveOutcome(int outcome);

  // Writes the three families.
  void Write(TextWriter* out) const;

 private:
  struct Method {
    std::string label;
    std::array<std::atomic<uint64_t>, kGrpcCodes> codes{};
    // Non-cumulative counts; the last is the +Inf overflow.
    std::array<std::atomic<uint64_t>, kDurationBuckets.size() + 1> buckets{};
    std::atomic<uint64_t> sum_nanos{0};
  };

  std::vector<std::unique_ptr<Method>> methods_;
  absl::flat_hash_map<std::string, int> by_path_;
  int reserve_index_ = -1;
  int batch_index_ = -1;
  std::array<std::atomic<uint64_t>, 4> outcomes_{};
};

// The interceptor factory to give ServerBuilder; `metrics` is not owned and
// must outlive the server.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
NewCallMetricsInterceptorFactory(CallMetrics* metrics);

}  // namespace idemkey::metrics

#endif  // IDEMKEY_SERVER_METRICS_CALL_METRICS_H_
