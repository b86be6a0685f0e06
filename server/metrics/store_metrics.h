// store_metrics.h — the store's figures (BackendStats) as Prometheus families.
//
//   absl::StatusOr<store::BackendStats> stats = backend->Stats();
//   TextWriter out;
//   if (stats.ok()) WriteStoreMetrics(*stats, &out);
//
// Per-tenant gauges list at most kMaxTenantSeries tenants (the first by
// name), so a scrape stays bounded whatever --max_tenants says;
// idemkey_tenants always gives the full count.

#ifndef IDEMKEY_SERVER_METRICS_STORE_METRICS_H_
#define IDEMKEY_SERVER_METRICS_STORE_METRICS_H_

#include <cstddef>

#include "server/metrics/exposition.h"
#include "server/store/backend.h"

namespace idemkey::metrics {

inline constexpr size_t kMaxTenantSeries = 1000;

void WriteStoreMetrics(const store::BackendStats& stats, TextWriter* out);

}  // namespace idemkey::metrics

#endif  // IDEMKEY_SERVER_METRICS_STORE_METRICS_H_
