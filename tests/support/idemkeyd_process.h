// idemkeyd_process.h — a real idemkeyd binary, started and stopped by a test.
//
// The server listens on 127.0.0.1 with a port the kernel picks, reported via
// --port_file; its stderr goes to a log file the test can read.
//
//   IdemkeydProcess server(dir.path() + "/data", {"--min_ttl=1s"});
//   ASSERT_TRUE(server.Start());
//   auto stub = idemkey::v1::KeyService::NewStub(server.NewChannel());
//   ...
//   ASSERT_TRUE(server.Stop());  // SIGTERM; expects a clean exit 0
//   server.Kill9();              // or: crash it

#ifndef IDEMKEY_TESTS_SUPPORT_IDEMKEYD_PROCESS_H_
#define IDEMKEY_TESTS_SUPPORT_IDEMKEYD_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/support/test_postgres.h"

namespace idemkey::testing {

// Path of the idemkeyd binary under test (set by CMake).
const char* IdemkeydPath();

class IdemkeydProcess {
 public:
  // Over PostgreSQL (UsingPostgres()), the server uses the database that
  // belongs to `database_of` (TestDatabaseDsn), by default to `data_dir`:
  // replicas of one service pass the same one; unless `extra_flags` has a
  // --backend= of its own (then they say everything).
  IdemkeydProcess(std::string data_dir,
                  std::vector<std::string> extra_flags = {},
                  std::string database_of = "");
  // SIGKILLs the server if it still runs.
  ~IdemkeydProcess();

  IdemkeydProcess(const IdemkeydProcess&) = delete;
  IdemkeydProcess& operator=(const IdemkeydProcess&) = delete;

  // Starts the server and waits until it serves; fails with its log if it
  // exits or does not serve within 60 s. The first start takes a port the
  // kernel picks; a restart listens on the same port again.
  ::testing::AssertionResult Start();
  // SIGTERM, then waits for exit status 0.
  ::testing::AssertionResult Stop();
  // SIGKILL, as a crash would; returns once the process is gone.
  void Kill9();

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  std::string address() const;
  // A new channel (its own connection) to the server.
  std::shared_ptr<grpc::Channel> NewChannel() const;
  // Everything the server wrote to stderr so far.
  std::string Log() const;

 private:
  const std::string data_dir_;
  const std::vector<std::string> extra_flags_;
  const std::string database_of_;
  const std::string port_file_;
  const std::string log_file_;
  pid_t pid_ = -1;
  int port_ = 0;
};

struct CommandResult {
  int exit_code = -1;  // -1: killed or timed out
  std::string output;  // stdout and stderr together
};

// Starts `argv` (argv[0] a path) in the background, stdout and stderr
// appended to `log_path`, with no signal blocked; returns its pid.
pid_t SpawnProcess(const std::vector<std::string>& argv,
                   const std::string& log_path);

// Waits up to 30 s for a program started with --port_file=`path` to write
// its port there; 0 if it did not.
int WaitForPortFile(const std::string& path);

// Runs idemkeyd with `args` until it exits (at most `timeout_seconds`), for
// tests of --help and of startup failures.
CommandResult RunIdemkeyd(const std::vector<std::string>& args,
                          int timeout_seconds = 60);

}  // namespace idemkey::testing

#endif  // IDEMKEY_TESTS_SUPPORT_IDEMKEYD_PROCESS_H_
