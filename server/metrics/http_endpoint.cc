#include "server/metrics/http_endpoint.h"

#include <sys/socket.h>

#include <chrono>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "server/metrics/exposition.h"

namespace idemkey::metrics {

MetricsEndpoint::MetricsEndpoint()
    : server_(std::make_unique<httplib::Server>()) {}

MetricsEndpoint::~MetricsEndpoint() { Stop(); }

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& listen, Collect collect) {
  const size_t colon = listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(absl::string_view(listen).substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--metrics_listen \"", listen, "\" is not host:port (port 0-65535)"));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) host = "0.0.0.0";

  std::unique_ptr<MetricsEndpoint> endpoint(new MetricsEndpoint());
  httplib::Server& server = *endpoint->server_;
  // httplib's default sets SO_REUSEPORT, which would let a second idemkeyd
  // share the port silently; SO_REUSEADDR alone makes "in use" an error.
  server.set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  // One worker: scrapes are rare and serialized.
  server.new_task_queue = [] { return new httplib::ThreadPool(1); };
  server.set_keep_alive_timeout(1);
  server.set_read_timeout(5);
  server.set_write_timeout(5);
  server.set_payload_max_length(1 << 16);
  server.Get("/metrics", [collect = std::move(collect)](
                             const httplib::Request&, httplib::Response& res) {
    res.set_content(collect(), kTextContentType);
  });

  if (port == 0) {
    port = server.bind_to_any_port(host);
  } else if (!server.bind_to_port(host, port)) {
    port = -1;
  }
  if (port <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", listen,
                     " for metrics: the address is in use or invalid (see "
                     "--metrics_listen)"));
  }
  endpoint->port_ = port;
  endpoint->thread_ = std::thread([&server] { server.listen_after_bind(); });
  // stop() is a no-op until the loop runs: wait for it, so that an early
  // Stop() cannot leave the thread listening.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!server.is_running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return endpoint;
}

void MetricsEndpoint::Stop() {
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

}  // namespace idemkey::metrics
