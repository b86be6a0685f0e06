#include "tests/support/command.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace idemkey::testing {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string TempFile(const char* what) {
  const char* base = getenv("TMPDIR");
  std::string path = std::string(base != nullptr ? base : "/tmp") +
                     "/idemkey-cmd-" + what + "-XXXXXX";
  const int fd = mkstemp(path.data());
  if (fd >= 0) close(fd);
  return path;
}

// The test's environment with `options` applied, as "NAME=value" strings.
std::vector<std::string> ChildEnvironment(const CommandOptions& options) {
  auto name_of = [](const std::string& entry) {
    return entry.substr(0, entry.find('='));
  };
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    bool drop = false;
    for (const std::string& n : options.unset_env) drop |= name_of(entry) == n;
    for (const std::string& s : options.env) {
      drop |= name_of(entry) == name_of(s);
    }
    if (!drop) env.push_back(entry);
  }
  env.insert(env.end(), options.env.begin(), options.env.end());
  return env;
}

}  // namespace

CommandOutput RunCommand(const std::vector<std::string>& argv,
                         const CommandOptions& options) {
  const std::string out_path = TempFile("out");
  const std::string err_path = TempFile("err");
  // Everything the child needs is built before fork: after it, only
  // async-signal-safe calls.
  const std::vector<std::string> env = ChildEnvironment(options);
  std::vector<char*> c_argv, c_env;
  for (const std::string& a : argv)
    c_argv.push_back(const_cast<char*>(a.c_str()));
  c_argv.push_back(nullptr);
  for (const std::string& e : env)
    c_env.push_back(const_cast<char*>(e.c_str()));
  c_env.push_back(nullptr);

  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid == 0) {
    const int in = open(options.stdin_path.c_str(), O_RDONLY);
    const int out = open(out_path.c_str(), O_WRONLY | O_TRUNC);
    const int err = open(err_path.c_str(), O_WRONLY | O_TRUNC);
    if (in < 0 || out < 0 || err < 0) _exit(126);
    dup2(in, STDIN_FILENO);
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(c_argv[0], c_argv.data(), c_env.data());
    _exit(127);
  }

  CommandOutput result;
  const auto deadline = start + options.timeout;
  for (;;) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  result.out = Slurp(out_path);
  result.err = Slurp(err_path);
  unlink(out_path.c_str());
  unlink(err_path.c_str());
  return result;
}

}  // namespace idemkey::testing
