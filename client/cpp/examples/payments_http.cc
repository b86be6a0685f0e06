// payments-http — a small payments API protected by idemkey.
//
// POST /v1/charges creates a charge; a client that retries with the same
// Idempotency-Key and body gets the first charge back instead of a second
// one. The tenant is the X-Org-Id header, mapped to a valid tenant name
// (rules::TenantNameFor: "Acme Corp" works too). SIGTERM or SIGINT stops it
// after the requests in flight.
//
//   idemkeyd --listen=127.0.0.1:50051 &
//   payments-http --listen_port=8080 --idemkey=127.0.0.1:50051 &
//   curl -i -X POST localhost:8080/v1/charges -H 'X-Org-Id: acme'
//        -H 'Idempotency-Key: 5f0c...' -d '{"amount":1000}'   (one line)
//
// Routes:
//   POST /v1/charges       a charge (201), numbered by this process
//   GET  /v1/charges       the number of charges made (not protected: GET)
//   POST /v1/auth/login    excluded from the middleware by configuration
// --charge_delay makes each charge take that long (to see 409s and leases);
// a charge with header X-Fail: throw throws after the delay. The routes and
// flags are the example apps' contract (tests/conformance/README.md).
// `payments-http --help` lists every flag.

#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "example_flags.h"
#include "httplib.h"
#include "idemkey/client/client.h"
#include "idemkey/http/httplib_idempotency.h"
#include "idemkey/rules/tenant_name.h"

ABSL_FLAG(int, listen_port, 8080, "HTTP port on 127.0.0.1 (0: any free port)");
ABSL_FLAG(std::string, port_file, "", "write the bound HTTP port here");
ABSL_FLAG(absl::Duration, charge_delay, absl::ZeroDuration(),
          "time each charge takes");

int main(int argc, char** argv) {
  idemkey::examples::SetUpUsage(
      "payments_http.cc",
      "a payments API protected by idemkey\n"
      "usage: payments-http [--listen_port=8080] [--idemkey=HOST:PORT] "
      "[flags]");
  absl::ParseCommandLine(argc, argv);
  // Stopped by the signal thread below, not by the default handlers.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  absl::StatusOr<idemkey::client::ClientOptions> client_options =
      idemkey::examples::ClientOptionsFromFlags();
  if (!client_options.ok()) {
    std::cerr << "payments-http: " << client_options.status().message() << "\n";
    return 1;
  }
  // One client (one channel) per process, shared by every request.
  auto keys = idemkey::client::Client::Create(*client_options);

  idemkey::middleware::MiddlewareOptions options =
      idemkey::http::DefaultHttpOptions();
  options.require_key = true;
  options.excluded_routes = {"POST /v1/auth/login"};
  idemkey::examples::ApplyMiddlewareFlags(&options);
  auto core =
      std::make_shared<idemkey::middleware::IdempotencyCore>(keys, options);
  idemkey::http::HttplibIdempotency idempotency(
      core, [](const httplib::Request& req) {
        // No header, no tenant (the request bypasses, or is refused with
        // --require_tenant); any org id maps to a valid tenant name.
        return idemkey::rules::TenantNameFor(req.get_header_value("X-Org-Id"));
      });

  std::atomic<int> charges{0};
  const absl::Duration delay = absl::GetFlag(FLAGS_charge_delay);
  httplib::Server server;
  server.set_tcp_nodelay(true);  // or Nagle + delayed ACKs add ~40 ms
  // cpp-httplib 0.11 (Debian 12) sets SO_REUSEPORT on the listening socket,
  // so a second server could take the same port, and listens with a backlog
  // of 5, so a burst of new connections is reset when the accept loop lags.
  // Its options hook sees the socket before bind: SO_REUSEADDR instead, and
  // the fd, to listen again with a full backlog once bound.
  int listen_fd = -1;
  server.set_socket_options([&listen_fd](int fd) {
    const int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    listen_fd = fd;
  });
  server.Post("/v1/charges", idempotency.Wrap([&](const httplib::Request& req,
                                                  httplib::Response& res) {
    absl::SleepFor(delay);
    // A handler that fails: the middleware releases the key, cpp-httplib
    // answers 500, and a retry runs the charge.
    if (req.get_header_value("X-Fail") == "throw") {
      throw std::runtime_error("charge failed (X-Fail: throw)");
    }
    const int n = ++charges;
    res.status = 201;
    res.set_header("Location", absl::StrCat("/v1/charges/ch_", n));
    res.set_content(
        absl::StrCat("{\"id\":\"ch_", n, "\",\"request\":", req.body, "}\n"),
        "application/json");
  }));
  server.Get(
      "/v1/charges", [&](const httplib::Request&, httplib::Response& res) {
        res.set_content(absl::StrCat("{\"charges\":", charges.load(), "}\n"),
                        "application/json");
      });
  server.Post("/v1/auth/login", idempotency.Wrap([](const httplib::Request&,
                                                    httplib::Response& res) {
    res.set_content("{\"token\":\"example\"}\n", "application/json");
  }));

  int port = absl::GetFlag(FLAGS_listen_port);
  if (port == 0) {
    port = server.bind_to_any_port("127.0.0.1");
  } else if (!server.bind_to_port("127.0.0.1", port)) {
    port = -1;
  }
  if (port < 0 || listen(listen_fd, SOMAXCONN) != 0) {
    std::cerr << "payments-http: cannot listen on 127.0.0.1:"
              << absl::GetFlag(FLAGS_listen_port) << "\n";
    return 1;
  }
  if (const std::string file = absl::GetFlag(FLAGS_port_file); !file.empty()) {
    std::ofstream(file + ".tmp") << port << "\n";
    std::rename((file + ".tmp").c_str(), file.c_str());
  }
  std::cerr << "payments-http listening on 127.0.0.1:" << port
            << ", idemkeyd at " << client_options->address << "\n";
  std::thread stopper([&server, stop_signals] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    server.stop();  // after the requests in flight
  });
  server.listen_after_bind();
  kill(getpid(), SIGTERM);  // wakes the stopper if the server stopped itself
  stopper.join();
  std::cerr << "payments-http stopped\n";
  return 0;
}
