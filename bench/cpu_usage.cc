#include "bench/cpu_usage.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace idemkey::bench {
namespace {

double ToMicros(const timeval& t) { return t.tv_sec * 1e6 + t.tv_usec; }

// utime + stime of /proc/PID/stat, in microseconds; 0 when unreadable.
double ServerCpuMicros(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return 0;
  // The command name (field 2) may hold spaces: count from its ')'.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return (utime + stime) * 1e6 / sysconf(_SC_CLK_TCK);
}

// Context switches of every live thread of `pid`.
uint64_t ServerSwitches(int pid) {
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  DIR* dir = opendir(tasks.c_str());
  if (dir == nullptr) return 0;
  uint64_t total = 0;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream status(tasks + "/" + entry->d_name + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0 ||
          line.rfind("nonvoluntary_ctxt_switches:", 0) == 0) {
        total += std::stoull(line.substr(line.find(':') + 1));
      }
    }
  }
  closedir(dir);
  return total;
}

}  // namespace

CpuUsage CpuUsage::Now(int server_pid) {
  CpuUsage now;
  rusage self{};
  getrusage(RUSAGE_SELF, &self);
  now.self_cpu_us = ToMicros(self.ru_utime) + ToMicros(self.ru_stime);
  now.self_switches = self.ru_nvcsw + self.ru_nivcsw;
  if (server_pid > 0) {
    now.server_cpu_us = ServerCpuMicros(server_pid);
    now.server_switches = ServerSwitches(server_pid);
  }
  return now;
}

CpuUsage CpuUsage::operator-(const CpuUsage& earlier) const {
  // Threads that exit take their switches with them: never below zero.
  auto minus = [](uint64_t a, uint64_t b) { return a > b ? a - b : 0; };
  return {self_cpu_us - earlier.self_cpu_us,
          minus(self_switches, earlier.self_switches),
          server_cpu_us - earlier.server_cpu_us,
          minus(server_switches, earlier.server_switches)};
}

}  // namespace idemkey::bench
