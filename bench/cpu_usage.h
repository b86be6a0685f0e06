// cpu_usage.h — CPU time and context switches of this process and of a
// server process, read around one benchmark cell.
//
//   CpuUsage before = CpuUsage::Now(server_pid);
//   ... run the cell ...
//   CpuUsage used = CpuUsage::Now(server_pid) - before;
//   double client_us_per_op = used.self_cpu_us / ops;
//
// This process's figures come from getrusage(RUSAGE_SELF), every thread
// included. The server's come from /proc/PID: CPU time from stat (every
// thread, exited ones too, in clock ticks of usually 10 ms, so cells of a
// few seconds are needed), context switches summed over its live threads'
// status files. A server PID of 0, or one that cannot be read, gives zeros
// for the server.

#ifndef IDEMKEY_BENCH_CPU_USAGE_H_
#define IDEMKEY_BENCH_CPU_USAGE_H_

#include <cstdint>

namespace idemkey::bench {

struct CpuUsage {
  double self_cpu_us = 0;      // user + system
  uint64_t self_switches = 0;  // voluntary + involuntary
  double server_cpu_us = 0;
  uint64_t server_switches = 0;

  static CpuUsage Now(int server_pid);
  CpuUsage operator-(const CpuUsage& earlier) const;
};

}  // namespace idemkey::bench

#endif  // IDEMKEY_BENCH_CPU_USAGE_H_
