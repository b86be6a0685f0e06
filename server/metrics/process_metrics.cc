#include "server/metrics/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace idemkey::metrics {

const char kIdemkeyVersion[] = IDEMKEY_VERSION;

namespace {

// Fields of /proc/self/stat after the command name (which may hold spaces),
// so that fields[0] is the state, field 3 of proc(5).
std::vector<std::string> StatFields() {
  std::ifstream in("/proc/self/stat");
  std::stringstream text;
  text << in.rdbuf();
  const std::string stat = text.str();
  const size_t end_of_name = stat.rfind(')');
  if (end_of_name == std::string::npos) return {};
  return absl::StrSplit(stat.substr(end_of_name + 2), ' ');
}

int CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int n = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n - 1;  // the directory stream's own descriptor
}

}  // namespace

void WriteProcessMetrics(absl::Time start_time, TextWriter* out) {
  const std::vector<std::string> f = StatFields();
  // proc(5): utime 14, stime 15, vsize 23, rss 24; f[0] is field 3.
  uint64_t utime = 0, stime = 0, vsize = 0, rss_pages = 0;
  if (f.size() > 21 && absl::SimpleAtoi(f[11], &utime) &&
      absl::SimpleAtoi(f[12], &stime)) {
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    out->Single("process_cpu_seconds_total", "counter",
                "User and system CPU time spent, in seconds.",
                static_cast<double>(utime + stime) / ticks);
  }
  if (f.size() > 21 && absl::SimpleAtoi(f[20], &vsize)) {
    out->Single("process_virtual_memory_bytes", "gauge",
                "Virtual memory size in bytes.", vsize);
  }
  if (f.size() > 21 && absl::SimpleAtoi(f[21], &rss_pages)) {
    out->Single("process_resident_memory_bytes", "gauge",
                "Resident memory size in bytes.",
                rss_pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)));
  }
  if (const int fds = CountOpenFds(); fds >= 0) {
    out->Single("process_open_fds", "gauge", "Open file descriptors.",
                static_cast<uint64_t>(fds));
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    out->Single("process_max_fds", "gauge",
                "Maximum number of open file descriptors.",
                static_cast<uint64_t>(limit.rlim_cur));
  }
  out->Single("process_start_time_seconds", "gauge",
              "Start time of the process since the Unix epoch, in seconds.",
              absl::ToDoubleSeconds(start_time - absl::UnixEpoch()));
  out->Family("idemkey_build_info", "gauge",
              "The idemkeyd build: always 1, its version as a label.");
  out->Sample("idemkey_build_info", {{"version", kIdemkeyVersion}},
              uint64_t{1});
}

}  // namespace idemkey::metrics
