// exposition.h — writes the Prometheus text format (version 0.0.4).
//
// One family at a time: its # HELP and # TYPE lines, then its samples. Label
// values and help texts are escaped as the format requires (backslash,
// double quote in label values, newline).
//
//   TextWriter out;
//   out.Family("idemkey_calls_total", "counter", "gRPC calls finished.");
//   out.Sample("idemkey_calls_total", {{"method", "Reserve"}, {"code", "OK"}},
//              uint64_t{3});
//   std::string body = out.Take();
//   // # HELP idemkey_calls_total gRPC calls finished.
//   // # TYPE idemkey_calls_total counter
//   // idemkey_calls_total{method="Reserve",code="OK"} 3

#ifndef IDEMKEY_SERVER_METRICS_EXPOSITION_H_
#define IDEMKEY_SERVER_METRICS_EXPOSITION_H_

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace idemkey::metrics {

// The Content-Type of a scrape answer in this format.
inline constexpr char kTextContentType[] =
    "text/plain; version=0.0.4; charset=utf-8";

using Label = std::pair<absl::string_view, absl::string_view>;

class TextWriter {
 public:
  // `type` is "counter", "gauge" or "histogram".
  void Family(absl::string_view name, absl::string_view type,
              absl::string_view help);
  void Sample(absl::string_view name, std::initializer_list<Label> labels,
              uint64_t value);
  void Sample(absl::string_view name, std::initializer_list<Label> labels,
              double value);

  // A family with a single unlabelled sample: the usual gauge or counter.
  template <typename Value>
  void Single(absl::string_view name, absl::string_view type,
              absl::string_view help, Value value) {
    Family(name, type, help);
    Sample(name, {}, value);
  }

  // The text written so far; the writer is empty afterwards.
  std::string Take() { return std::move(out_); }

 private:
  void Labels(std::initializer_list<Label> labels);
  std::string out_;
};

// A sample value or an `le` bound: "+Inf", "-Inf", "NaN", or the shortest
// decimal that reads back as `v` (at most 17 significant digits).
std::string FormatDouble(double v);

// Label value escaping: \ -> \\, " -> \", newline -> \n.
std::string EscapeLabelValue(absl::string_view v);

}  // namespace idemkey::metrics

#endif  // IDEMKEY_SERVER_METRICS_EXPOSITION_H_
