// Links and runs against the installed idemkey::client: makes an attempt id
// and calls a server that is not there, which must fail fast as UNAVAILABLE.
#include <iostream>

#include "idemkey/client/client.h"

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
  return s.code() == absl::StatusCode::kUnavailable ? 0 : 1;
}
