#include "tests/support/idemkeyd_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>

#include "tests/support/read_file.h"
#include "tests/support/test_postgres.h"

namespace idemkey::testing {

pid_t SpawnProcess(const std::vector<std::string>& args,
                   const std::string& log_path) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  const int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  dup2(fd, STDOUT_FILENO);
  dup2(fd, STDERR_FILENO);
  // The test process may have signals blocked; the server expects a clean
  // mask (it blocks what it waits for itself).
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  std::vector<char*> argv;
  for (const std::string& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(argv[0], argv.data());
  _exit(127);
}

namespace {

// Waits up to `timeout` for `pid` to exit; its wait status, or nullopt if
// it still runs.
std::optional<int> WaitExit(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// How a process with wait status `status` ended, for a failure message: a
// crash names its signal, so that it is not taken for an exit code.
std::string HowItEnded(int status) {
  if (WIFEXITED(status)) {
    return "exited with " + std::to_string(WEXITSTATUS(status));
  }
  const int sig = WTERMSIG(status);
  return "was killed by signal " + std::to_string(sig) + " (" + strsignal(sig) +
         ")";
}

}  // namespace

const char* IdemkeydPath() { return IDEMKEYD_PATH; }

int WaitForPortFile(const std::string& path) {
  for (int i = 0; i < 3000; ++i) {
    const std::string port = ReadFile(path);
    if (!port.empty()) return std::stoi(port);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return 0;
}

IdemkeydProcess::IdemkeydProcess(std::string data_dir,
                                 std::vector<std::string> extra_flags,
                                 std::string database_of)
    : data_dir_(std::move(data_dir)),
      extra_flags_(std::move(extra_flags)),
      database_of_(database_of.empty() ? data_dir_ : std::move(database_of)),
      port_file_(data_dir_ + ".port"),
      log_file_(data_dir_ + ".log") {}

IdemkeydProcess::~IdemkeydProcess() {
  if (running()) Kill9();
}

::testing::AssertionResult IdemkeydProcess::Start() {
  if (running()) return ::testing::AssertionFailure() << "already running";
  unlink(port_file_.c_str());
  // A restart listens where the server listened before, as a restarted
  // service does, so clients connected to it can come back.
  std::vector<std::string> args = {
      IdemkeydPath(), "--listen=127.0.0.1:" + std::to_string(port_),
      "--port_file=" + port_file_};
  // Flags that choose the backend themselves (several clusters) win.
  const bool own_backend = std::any_of(
      extra_flags_.begin(), extra_flags_.end(),
      [](const std::string& f) { return f.rfind("--backend=", 0) == 0; });
  if (UsingPostgres() && !own_backend) {
    absl::StatusOr<std::string> dsn = TestDatabaseDsn(database_of_);
    if (!dsn.ok()) {
      return ::testing::AssertionFailure() << dsn.status().message();
    }
    args.push_back("--backend=postgres");
    args.push_back("--postgres_dsn=" + *dsn);
  } else {
    args.push_back("--data_dir=" + data_dir_);
  }
  args.insert(args.end(), extra_flags_.begin(), extra_flags_.end());
  pid_ = SpawnProcess(args, log_file_);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (std::optional<int> status =
            WaitExit(pid_, std::chrono::milliseconds(0))) {
      pid_ = -1;
      return ::testing::AssertionFailure()
             << "idemkeyd " << HowItEnded(*status) << " at start:\n"
             << Log();
    }
    const std::string port = ReadFile(port_file_);
    if (!port.empty()) {
      port_ = std::stoi(port);
      return ::testing::AssertionSuccess();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Kill9();
  return ::testing::AssertionFailure()
         << "idemkeyd did not serve within 60 s:\n"
         << Log();
}

::testing::AssertionResult IdemkeydProcess::Stop() {
  if (!running()) return ::testing::AssertionFailure() << "not running";
  kill(pid_, SIGTERM);
  std::optional<int> status = WaitExit(pid_, std::chrono::seconds(60));
  if (!status) {
    Kill9();
    return ::testing::AssertionFailure() << "idemkeyd ignored SIGTERM:\n"
                                         << Log();
  }
  pid_ = -1;
  if (*status != 0) {
    return ::testing::AssertionFailure()
           << "idemkeyd " << HowItEnded(*status) << " after SIGTERM:\n"
           << Log();
  }
  return ::testing::AssertionSuccess();
}

void IdemkeydProcess::Kill9() {
  if (!running()) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::string IdemkeydProcess::address() const {
  return "127.0.0.1:" + std::to_string(port_);
}

std::shared_ptr<grpc::Channel> IdemkeydProcess::NewChannel() const {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  // A channel of its own, not one shared through the global subchannel pool.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address(),
                                   grpc::InsecureChannelCredentials(), args);
}

std::string IdemkeydProcess::Log() const { return ReadFile(log_file_); }

CommandResult RunIdemkeyd(const std::vector<std::string>& args,
                          int timeout_seconds) {
  char log_path[] = "/tmp/idemkeyd-run-XXXXXX";
  const int fd = mkstemp(log_path);
  close(fd);
  std::vector<std::string> argv = {IdemkeydPath()};
  argv.insert(argv.end(), args.begin(), args.end());
  const pid_t pid = SpawnProcess(argv, log_path);
  CommandResult result;
  std::optional<int> status =
      WaitExit(pid, std::chrono::seconds(timeout_seconds));
  if (!status) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  result.exit_code = status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
  result.output = ReadFile(log_path);
  unlink(log_path);
  return result;
}

}  // namespace idemkey::testing
