// idemctl — query and manage the records of idemkeyd from the command line.
// `idemctl --help` lists the verbs, flags and exit codes; cli.h does the work.
//
//   idemctl --addr 127.0.0.1:50051 get acme order-42
//   idemctl list acme --state in_progress -o json

#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "idemctl/cli.h"

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  const char* addr = std::getenv("IDEMKEY_ADDR");
  idemkey::idemctl::Environment env;
  env.addr_from_env = addr != nullptr ? addr : "";
  const char* token = std::getenv("IDEMKEY_TOKEN");
  env.token_from_env = token != nullptr ? token : "";
  env.stdin_is_terminal = isatty(STDIN_FILENO) == 1;
  env.in = &std::cin;
  env.out = &std::cout;
  env.err = &std::cerr;
  const int code = idemkey::idemctl::RunIdemctl(
      std::vector<std::string>(argv + 1, argv + argc), env);
  std::cout.flush();
  return code;
}
