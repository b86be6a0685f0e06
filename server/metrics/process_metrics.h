// process_metrics.h — the standard process_* families and idemkey_build_info,
// read from /proc/self at each scrape.
//
//   metrics::TextWriter out;
//   metrics::WriteProcessMetrics(start_time, &out);
//   // process_cpu_seconds_total, process_resident_memory_bytes,
//   // process_virtual_memory_bytes, process_open_fds, process_max_fds,
//   // process_start_time_seconds, idemkey_build_info{version="0.1.0"}
//
// A figure /proc does not give is left out, not written as 0.

#ifndef IDEMKEY_SERVER_METRICS_PROCESS_METRICS_H_
#define IDEMKEY_SERVER_METRICS_PROCESS_METRICS_H_

#include "absl/time/time.h"
#include "server/metrics/exposition.h"

namespace idemkey::metrics {

// The version idemkey_build_info reports (the CMake project's).
extern const char kIdemkeyVersion[];

// `start_time`: when the process started (process_start_time_seconds).
void WriteProcessMetrics(absl::Time start_time, TextWriter* out);

}  // namespace idemkey::metrics

#endif  // IDEMKEY_SERVER_METRICS_PROCESS_METRICS_H_
