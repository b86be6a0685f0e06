// idemkey-bench — closed-loop load generator for idemkeyd, and for Redis and
// PostgreSQL (driven directly) doing the same logical work.
//
// Keeps --in_flight operations outstanding (each finished one starts the
// next at once) for --seconds per scenario, and reports ops/s, latency
// quantiles, errors and each rate as a fraction of the ping rate: how much
// of the transport's ceiling the store leaves.
//
//   build/server/daemon/idemkeyd --listen=127.0.0.1:50051
//   --data_dir=/tmp/bench-data & build/bench/idemkey-bench
//   --address=127.0.0.1:50051 --in_flight=1,64 build/bench/idemkey-bench
//   --scenarios=ping,pairs,hot --csv=/tmp/bench.csv build/bench/idemkey-bench
//   --target=redis --redis=127.0.0.1:6379 build/bench/idemkey-bench
//   --target=sql --postgres='host=... dbname=...'
//
// bench/README.md describes every scenario and column.

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "bench/closed_loop.h"
#include "bench/cpu_usage.h"
#include "bench/target.h"

ABSL_FLAG(std::string, target, "idemkey",
          "system under test: idemkey (idemkeyd at --address, raw async "
          "stubs), library (idemkeyd at --address through the client "
          "library, one thread per operation in flight; pairs only), redis "
          "(Redis at --redis) or sql (PostgreSQL at --postgres doing the "
          "pairs itself, the direct-SQL peer)");
ABSL_FLAG(bool, batch, false,
          "with --target=library: ClientOptions::batch_calls, coalescing "
          "concurrent calls into Batch RPCs");
ABSL_FLAG(bool, stream, false,
          "with --target=library: ClientOptions::stream_calls, every call an "
          "op of one KeyService/Stream");
ABSL_FLAG(std::string, address, "127.0.0.1:50051",
          "idemkeyd address, host:port");
ABSL_FLAG(std::string, redis, "127.0.0.1:6379", "Redis address, host:port");
ABSL_FLAG(std::string, postgres, "",
          "with --target=sql: libpq conninfo of the database the direct-SQL "
          "peer writes to (its own table, bench_idempotency_keys)");
ABSL_FLAG(std::string, scenarios, "",
          "comma-separated scenarios, run in this order; empty: "
          "ping,reserve,complete,lookup,pairs,replay,hot,mix for idemkey, "
          "ping,pairs for redis and sql");
ABSL_FLAG(std::string, in_flight, "64",
          "operations kept outstanding at all times; a comma-separated list "
          "runs every scenario at each level");
ABSL_FLAG(int32_t, channels, 4,
          "idemkey: gRPC channels (each its own TCP connection) the calls are "
          "spread over; redis always uses one connection per operation in "
          "flight");
ABSL_FLAG(double, seconds, 5, "measured duration of each scenario");
ABSL_FLAG(double, warmup_seconds, 1,
          "untimed Ping traffic before the first scenario");
ABSL_FLAG(std::string, tenant, "bench",
          "tenant of every record, or the prefix of the --tenants names");
ABSL_FLAG(int32_t, tenants, 1,
          "spread the keys over this many tenants: <tenant>-0, <tenant>-1, "
          "...");
ABSL_FLAG(int32_t, response_bytes, 256, "body size of each stored response");
ABSL_FLAG(int64_t, ttl_seconds, 0,
          "retention after completion (Reserve's ttl; Redis's PX); 0: the "
          "server default, 24 h (idemkeyd accepts 60 s and more by default)");
ABSL_FLAG(int32_t, hot_keys, 8, "hot: keys all operations compete for");
ABSL_FLAG(int64_t, pool_keys, 10000,
          "lookup, replay, mix: completed keys written (untimed) before the "
          "first of them, which they pick from at random");
ABSL_FLAG(int64_t, fill_records, 500000,
          "fill: Reserve + Complete pairs to write, however long it takes");
ABSL_FLAG(std::string, csv, "",
          "also append one line per scenario to this CSV file (with a header "
          "line when the file is new or empty)");
ABSL_FLAG(int, server_pid, 0,
          "the server's process (idemkeyd, Redis, PostgreSQL's postmaster "
          "does not count its backends): its CPU time and context switches "
          "per operation go into the CSV beside this process's own");
ABSL_FLAG(std::string, label, "",
          "free text for the CSV's label column (e.g. sync=false); no commas");

namespace {

using idemkey::bench::RunResult;
using idemkey::bench::ScenarioOptions;
using idemkey::bench::Target;

struct Row {
  std::string scenario;
  size_t in_flight = 0;
  RunResult result;
  double ping_rate = 0;  // of the same level; 0 when ping did not run first
  idemkey::bench::CpuUsage cpu;  // used during the cell

  // Per operation: CPU microseconds and context switches.
  double PerOp(double total) const {
    return result.ops() > 0 ? total / result.ops() : 0;
  }

  double vs_ping() const {
    return ping_rate > 0 ? result.rate() / ping_rate : 0;
  }
  std::string Outcomes() const {
    return absl::StrJoin(result.outcomes, " ", absl::PairFormatter("="));
  }
};

constexpr char kHeader[] =
    "scenario  in-flight        ops      ops/s    p50 us    p90 us    p99 us "
    "  p999 us  errors  vs ping  outcomes";

std::string Format(const Row& row) {
  const RunResult& r = row.result;
  return absl::StrFormat(
      "%-9s %9d %10d %10.0f %9.1f %9.1f %9.1f %9.1f %7d %8s%s", row.scenario,
      row.in_flight, r.ops(), r.rate(), r.latency.Quantile(0.50) / 1e3,
      r.latency.Quantile(0.90) / 1e3, r.latency.Quantile(0.99) / 1e3,
      r.latency.Quantile(0.999) / 1e3, r.errors,
      row.ping_rate > 0 ? absl::StrFormat("%.3f", row.vs_ping()) : "-",
      r.outcomes.empty() ? "" : absl::StrCat("  ", row.Outcomes()));
}

constexpr char kCsvHeader[] =
    "label,target,scenario,in_flight,connections,seconds,tenants,response_"
    "bytes,"
    "ops,ops_per_s,p50_us,p90_us,p99_us,p999_us,errors,vs_ping,outcomes,"
    "client_cpu_us_per_op,client_switches_per_op,server_cpu_us_per_op,"
    "server_switches_per_op\n";

std::string CsvLine(const std::string& target, const Row& row) {
  const RunResult& r = row.result;
  // Slot i of idemkey's runs uses channel i mod --channels; every Redis and SQL
  // slot has a connection of its own; the client library has one channel.
  const size_t connections =
      target == "redis" || target == "sql" ? row.in_flight
      : target == "library"
          ? 1
          : std::min<size_t>(row.in_flight, absl::GetFlag(FLAGS_channels));
  return absl::StrFormat(
      "%s,%s,%s,%d,%d,%.3f,%d,%d,%d,%.1f,%.1f,%.1f,%.1f,%.1f,%d,%s,%s,%.1f,%."
      "2f,%s,%s\n",
      absl::GetFlag(FLAGS_label), target, row.scenario, row.in_flight,
      connections, r.seconds, absl::GetFlag(FLAGS_tenants),
      absl::GetFlag(FLAGS_response_bytes), r.ops(), r.rate(),
      r.latency.Quantile(0.50) / 1e3, r.latency.Quantile(0.90) / 1e3,
      r.latency.Quantile(0.99) / 1e3, r.latency.Quantile(0.999) / 1e3, r.errors,
      row.ping_rate > 0 ? absl::StrFormat("%.4f", row.vs_ping()) : "",
      row.Outcomes(), row.PerOp(row.cpu.self_cpu_us),
      row.PerOp(row.cpu.self_switches),
      // Empty without --server_pid.
      absl::GetFlag(FLAGS_server_pid) > 0
          ? absl::StrFormat("%.1f", row.PerOp(row.cpu.server_cpu_us))
          : "",
      absl::GetFlag(FLAGS_server_pid) > 0
          ? absl::StrFormat("%.2f", row.PerOp(row.cpu.server_switches))
          : "");
}

[[noreturn]] void Die(const std::string& message) {
  std::cerr << "idemkey-bench: " << message << "\n";
  std::exit(1);
}

std::vector<size_t> ParseLevels(const std::string& text) {
  std::vector<size_t> levels;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    size_t level = 0;
    if (!absl::SimpleAtoi(part, &level) || level < 1) {
      Die(absl::StrCat("--in_flight: \"", part, "\" is not a positive number"));
    }
    levels.push_back(level);
  }
  return levels;
}

ScenarioOptions OptionsFromFlags() {
  ScenarioOptions options;
  options.tenant = absl::GetFlag(FLAGS_tenant);
  options.tenants = absl::GetFlag(FLAGS_tenants);
  options.response_bytes = absl::GetFlag(FLAGS_response_bytes);
  options.ttl_seconds = absl::GetFlag(FLAGS_ttl_seconds);
  options.hot_keys = absl::GetFlag(FLAGS_hot_keys);
  options.pool_keys = absl::GetFlag(FLAGS_pool_keys);
  options.fill_records = absl::GetFlag(FLAGS_fill_records);
  if (options.tenants < 1) Die("--tenants must be at least 1");
  if (options.response_bytes < 0) Die("--response_bytes must not be negative");
  if (options.ttl_seconds < 0) Die("--ttl_seconds must not be negative");
  if (options.hot_keys < 1) Die("--hot_keys must be at least 1");
  if (absl::GetFlag(FLAGS_pool_keys) < 1) Die("--pool_keys must be at least 1");
  if (absl::GetFlag(FLAGS_fill_records) < 0) {
    Die("--fill_records must not be negative");
  }
  return options;
}

std::unique_ptr<Target> Connect(const std::string& target,
                                const ScenarioOptions& options) {
  std::string error;
  std::unique_ptr<Target> connected;
  if (target == "idemkey") {
    connected = idemkey::bench::ConnectKeyTarget(absl::GetFlag(FLAGS_address),
                                                 absl::GetFlag(FLAGS_channels),
                                                 options, &error);
  } else if (target == "library") {
    connected = idemkey::bench::ConnectLibraryTarget(
        absl::GetFlag(FLAGS_address), absl::GetFlag(FLAGS_batch),
        absl::GetFlag(FLAGS_stream), options, &error);
  } else if (target == "redis") {
#ifdef IDEMKEY_BENCH_REDIS
    connected = idemkey::bench::ConnectRedisTarget(absl::GetFlag(FLAGS_redis),
                                                   options, &error);
#else
    Die("built without hiredis, so --target=redis is missing: install "
        "libhiredis-dev and build again");
#endif
  } else if (target == "sql") {
    connected = idemkey::bench::ConnectSqlTarget(absl::GetFlag(FLAGS_postgres),
                                                 options, &error);
  } else {
    Die(absl::StrCat("--target must be idemkey, library, redis or sql, not \"",
                     target, "\""));
  }
  if (connected == nullptr) Die(error);
  return connected;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "closed-loop load generator for idemkeyd (and Redis doing the same "
      "work).\nUsage: idemkey-bench [--target=idemkey|library|redis|sql] "
      "[--address=127.0.0.1:50051] [--scenarios=ping,pairs,...] "
      "[--in_flight=64[,...]] [--seconds=5] [--csv=FILE]");
  absl::ParseCommandLine(argc, argv);
  // Debian's Abseil checks gRPC's mutexes for lock-order cycles at every
  // acquisition; idemkeyd turns that off too, so neither side pays for it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const std::string target_name = absl::GetFlag(FLAGS_target);
  const std::vector<size_t> levels =
      ParseLevels(absl::GetFlag(FLAGS_in_flight));
  const double seconds = absl::GetFlag(FLAGS_seconds);
  if (absl::GetFlag(FLAGS_channels) < 1) Die("--channels must be at least 1");
  if (seconds <= 0) Die("--seconds must be positive");
  if (absl::StrContains(absl::GetFlag(FLAGS_label), ',')) {
    Die("--label must not contain commas");
  }
  const ScenarioOptions options = OptionsFromFlags();

  std::string scenario_list = absl::GetFlag(FLAGS_scenarios);
  if (scenario_list.empty()) {
    scenario_list = target_name == "redis" || target_name == "sql"
                        ? "ping,pairs"
                    : target_name == "library"
                        ? "pairs"
                        : "ping,reserve,complete,lookup,pairs,replay,hot,mix";
  }
  const std::vector<std::string> scenarios = absl::StrSplit(scenario_list, ',');

  std::unique_ptr<Target> target = Connect(target_name, options);
  for (const std::string& scenario : scenarios) {
    if (!target->Supports(scenario)) {
      Die(absl::StrCat("target ", target_name, " has no scenario \"", scenario,
                       "\""));
    }
  }
  std::ofstream csv;
  if (!absl::GetFlag(FLAGS_csv).empty()) {
    csv.open(absl::GetFlag(FLAGS_csv), std::ios::app);
    if (!csv) Die(absl::StrCat("cannot open --csv=", absl::GetFlag(FLAGS_csv)));
    if (csv.tellp() == 0) csv << kCsvHeader;
  }

  std::cout << absl::StrFormat(
      "idemkey-bench: %s at %s, %s in flight, %.1f s per scenario, %d "
      "tenant(s), %d-byte responses, ttl %s\n",
      target_name,
      target_name == "redis" ? absl::GetFlag(FLAGS_redis)
      // Not the conninfo: it may hold a password.
      : target_name == "sql"
          ? std::string("PostgreSQL")
          : absl::StrCat(absl::GetFlag(FLAGS_address), " (",
                         absl::GetFlag(FLAGS_channels), " channels)"),
      absl::StrJoin(levels, ","), seconds, options.tenants,
      options.response_bytes,
      options.ttl_seconds > 0 ? absl::StrCat(options.ttl_seconds, " s")
                              : "server default");
  target->Warmup(absl::GetFlag(FLAGS_warmup_seconds));

  std::cout << kHeader << "\n" << std::flush;
  std::vector<Row> rows;
  for (size_t level : levels) {
    double ping_rate = 0;
    for (const std::string& scenario : scenarios) {
      const int server_pid = absl::GetFlag(FLAGS_server_pid);
      const idemkey::bench::CpuUsage before =
          idemkey::bench::CpuUsage::Now(server_pid);
      RunResult result = target->Run(scenario, level, seconds);
      if (scenario == "ping") ping_rate = result.rate();
      Row row{scenario, level, std::move(result), ping_rate,
              idemkey::bench::CpuUsage::Now(server_pid) - before};
      std::cout << Format(row) << "\n";
      if (row.result.errors > 0) {
        std::cout << "  first error: " << row.result.first_error << "\n";
      }
      std::cout << std::flush;
      if (csv.is_open()) csv << CsvLine(target_name, row) << std::flush;
      rows.push_back(std::move(row));
    }
  }

  uint64_t errors = 0;
  for (const Row& row : rows) errors += row.result.errors;
  if (rows.size() > 1) {
    std::cout << "\n" << kHeader << "\n";
    for (const Row& row : rows) std::cout << Format(row) << "\n";
  }
  return errors == 0 ? 0 : 2;
}
