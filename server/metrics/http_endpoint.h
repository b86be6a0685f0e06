// http_endpoint.h — serves GET /metrics (Prometheus text format) with
// cpp-httplib, on a thread of its own plus one worker.
//
//   absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
//       MetricsEndpoint::Start("127.0.0.1:9464", [&] { return Scrape(); });
//   if (!endpoint.ok()) { ...; return 1; }  // in use, or a bad address
//   int port = (*endpoint)->port();         // the bound port (for ":0")
//   ...
//   (*endpoint)->Stop();                    // also done by the destructor
//
// `collect` runs once per scrape on the worker thread, one scrape at a time;
// what it uses must outlive Stop(). Other paths answer 404.

#ifndef IDEMKEY_SERVER_METRICS_HTTP_ENDPOINT_H_
#define IDEMKEY_SERVER_METRICS_HTTP_ENDPOINT_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace idemkey::metrics {

class MetricsEndpoint {
 public:
  using Collect = std::function<std::string()>;

  // Binds `listen` (host:port, port 0 picks a free one; "[::1]:9464" for
  // IPv6) and starts serving. UNAVAILABLE when the address is in use,
  // INVALID_ARGUMENT when it is malformed.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(
      const std::string& listen, Collect collect);

  ~MetricsEndpoint();
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  int port() const { return port_; }
  // Stops accepting, waits for a scrape in progress; idempotent.
  void Stop();

 private:
  MetricsEndpoint();

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace idemkey::metrics

#endif  // IDEMKEY_SERVER_METRICS_HTTP_ENDPOINT_H_
