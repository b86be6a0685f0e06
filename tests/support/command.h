// command.h — run a program to completion and capture what it printed.
//
// For end-to-end tests of command-line tools (idemctl): stdout and stderr are
// kept apart, stdin is /dev/null (not a terminal) unless told otherwise, and
// the environment can be changed for the child only.
//
//   CommandOptions options;
//   options.env = {"IDEMKEY_ADDR=127.0.0.1:50051"};
//   CommandOutput r = RunCommand({"/usr/bin/idemctl", "get", "acme", "k1"},
//                                options);
//   EXPECT_EQ(r.exit_code, 0) << r.err;
//   EXPECT_NE(r.out.find("COMPLETED"), std::string::npos);

#ifndef IDEMKEY_TESTS_SUPPORT_COMMAND_H_
#define IDEMKEY_TESTS_SUPPORT_COMMAND_H_

#include <chrono>
#include <string>
#include <vector>

namespace idemkey::testing {

struct CommandOptions {
  // "NAME=value" entries set for the child, over the test's environment.
  std::vector<std::string> env;
  // Names removed from the child's environment.
  std::vector<std::string> unset_env;
  // File the child reads as stdin.
  std::string stdin_path = "/dev/null";
  // The child is SIGKILLed after this long.
  std::chrono::milliseconds timeout = std::chrono::seconds(60);
};

struct CommandOutput {
  int exit_code = -1;  // -1: killed by a signal or timed out
  std::string out;     // stdout, byte for byte
  std::string err;     // stderr
  std::chrono::milliseconds elapsed{0};
};

// argv[0] is the path of the program (no $PATH search).
CommandOutput RunCommand(const std::vector<std::string>& argv,
                         const CommandOptions& options = {});

}  // namespace idemkey::testing

#endif  // IDEMKEY_TESTS_SUPPORT_COMMAND_H_
