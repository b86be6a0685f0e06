// Links and runs against the installed package: makes an attempt id, calls
// a server that is not there (which must fail fast as UNAVAILABLE), and runs
// the middleware core over the in-process test double (idemkey::testing).
#include <iostream>
#include <memory>

#include "idemkey/client/client.h"
#include "idemkey/middleware/core.h"
#include "idemkey/rules/fingerprint.h"
#include "idemkey/testing/in_process_key_service.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: consumer CLOSED_HOST:PORT\n";
    return 2;
  }
  const std::string id = idemkey::client::NewAttemptId();
  if (id.size() != 36 || id[14] != '4') {
    std::cerr << "bad attempt id " << id << "\n";
    return 1;
  }
  idemkey::client::ClientOptions options;
  options.address = argv[1];
  options.max_attempts = 2;
  auto client = idemkey::client::Client::Create(options);
  absl::Status s = client->Ping();
  std::cout << "attempt id " << id << "; ping: " << s << "\n";
  if (s.code() != absl::StatusCode::kUnavailable) return 1;

  auto keys = std::make_shared<idemkey::testing::InProcessKeyService>();
  idemkey::middleware::IdempotencyCore core(keys, {});
  idemkey::middleware::Decision d = core.Begin({.method = "POST",
                                                .route = "/v1/charges",
                                                .tenant = "acme",
                                                .key = "k1",
                                                .has_key = true,
                                                .body = "{}"});
  std::cout << "in-process Begin: action " << static_cast<int>(d.action)
            << "\n";
  if (d.action != idemkey::middleware::Action::kRun) return 1;
  if (idemkey::rules::Fingerprint("POST", "/v1/charges", "{}").size() != 32) {
    return 1;
  }
  return d.execution->Finish(idemkey::v1::StoredResponse()).ok() ? 0 : 1;
}
