// cli.h — idemctl's command line: verbs, flags, help and exit codes.
//
// RunIdemctl parses argv (without the program name), prints help or a usage
// error, connects with idemkey::client::Client and runs the verb. Everything
// it needs from the process comes in through Environment, so it runs the
// same in main.cc and in a test.
//
//   Environment env;
//   env.addr_from_env = "127.0.0.1:50051";  // from $IDEMKEY_ADDR
//   env.stdin_is_terminal = isatty(STDIN_FILENO) == 1;
//   env.in = &std::cin;
//   env.out = &std::cout;
//   env.err = &std::cerr;
//   return RunIdemctl({"get", "acme", "order-1", "-o", "json"}, env);

#ifndef IDEMKEY_CLIENT_IDEMCTL_CLI_H_
#define IDEMKEY_CLIENT_IDEMCTL_CLI_H_

#include <istream>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "idemkey/client/client.h"

namespace idemkey::idemctl {

struct Environment {
  std::string addr_from_env;   // $IDEMKEY_ADDR; "" when unset
  std::string token_from_env;  // $IDEMKEY_TOKEN; "" when unset
  bool stdin_is_terminal = false;
  std::istream* in = nullptr;
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
};

// The exit code (exit_codes.h).
int RunIdemctl(const std::vector<std::string>& args, const Environment& env);

// Client options whose worst case, every attempt and backoff included,
// stays within `timeout`.
idemkey::client::ClientOptions ClientOptionsFor(const std::string& address,
                                                absl::Duration timeout);

}  // namespace idemkey::idemctl

#endif  // IDEMKEY_CLIENT_IDEMCTL_CLI_H_
