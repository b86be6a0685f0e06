// target.h — the systems idemkey-bench drives, and what their scenarios
// write.
//
//   ScenarioOptions options;
//   options.tenants = 200;
//   std::string error;
//   std::unique_ptr<Target> target =
//       ConnectKeyTarget("127.0.0.1:50051", /*channels=*/4, options, &error);
//   if (target == nullptr) Die(error);
//   target->Warmup(1.0);
//   RunResult pairs = target->Run("pairs", /*in_flight=*/64, /*seconds=*/5);
//
// idemkeyd (ConnectKeyTarget) runs every scenario of kKeyScenarios; Redis
// (ConnectRedisTarget, only when built with hiredis: IDEMKEY_BENCH_REDIS)
// and PostgreSQL driven directly (ConnectSqlTarget) run `ping` and `pairs`.
// bench/README.md describes each scenario.

#ifndef IDEMKEY_BENCH_TARGET_H_
#define IDEMKEY_BENCH_TARGET_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "bench/closed_loop.h"

namespace idemkey::bench {

// What the scenarios write, and how much of it.
struct ScenarioOptions {
  // Tenant of every record when `tenants` is 1; otherwise the records are
  // spread over tenants "<tenant>-0" ... "<tenant>-<tenants - 1>".
  std::string tenant = "bench";
  int tenants = 1;
  // Body of each stored response.
  int response_bytes = 256;
  // Retention after completion (Reserve's ttl, Redis's PX); 0 leaves
  // Reserve's ttl unset, so idemkeyd applies its default, and gives Redis
  // keys the same 24 h.
  int64_t ttl_seconds = 0;
  // hot: keys every slot competes for at a time.
  int hot_keys = 8;
  // lookup, replay, mix: completed keys written before the first of them.
  uint64_t pool_keys = 10000;
  // fill: Reserve + Complete pairs to write.
  uint64_t fill_records = 500000;
};

// A system under test.
class Target {
 public:
  virtual ~Target() = default;

  // Whether Run knows `scenario`.
  virtual bool Supports(absl::string_view scenario) const = 0;

  // Untimed traffic that opens connections and creates what the scenarios
  // need (tenants); `seconds` of it where the target has a use for a time.
  virtual void Warmup(double seconds) = 0;

  // Runs `scenario` (Supports() is true) with `in_flight` operations
  // outstanding for `seconds`, or, for a scenario of a fixed size (fill),
  // until it is done.
  virtual RunResult Run(absl::string_view scenario, size_t in_flight,
                        double seconds) = 0;
};

// The scenarios of idemkeyd, in the order the default run takes them.
inline constexpr absl::string_view kKeyScenarios[] = {
    "ping",   "reserve", "complete", "lookup", "pairs",
    "replay", "hot",     "mix",      "fill"};

// Connects `channels` gRPC channels (each its own TCP connection) to
// idemkeyd at `address`. nullptr, with *error set, when one does not connect
// within 5 s.
std::unique_ptr<Target> ConnectKeyTarget(const std::string& address,
                                         int channels,
                                         const ScenarioOptions& options,
                                         std::string* error);

// idemkeyd at `address` through idemkey::client::Client (batch_calls and
// stream_calls as given): `pairs` only, one thread per operation in flight.
// nullptr, with *error set, when idemkeyd does not answer Ping.
std::unique_ptr<Target> ConnectLibraryTarget(const std::string& address,
                                             bool batch_calls,
                                             bool stream_calls,
                                             const ScenarioOptions& options,
                                             std::string* error);

// Checks that Redis answers PING at host:port; each run then opens one
// connection per operation in flight. nullptr, with *error set, when Redis
// does not answer within 5 s. Defined only when built with hiredis.
std::unique_ptr<Target> ConnectRedisTarget(const std::string& address,
                                           const ScenarioOptions& options,
                                           std::string* error);

// PostgreSQL at libpq conninfo `dsn` doing idemkeyd's pairs itself, the
// direct-SQL peer (sql_target.cc): `pairs` and `ping`, one connection per
// operation in flight. Creates its table; nullptr, with *error set, when
// PostgreSQL cannot be reached.
std::unique_ptr<Target> ConnectSqlTarget(const std::string& dsn,
                                         const ScenarioOptions& options,
                                         std::string* error);

// Tenant names as ScenarioOptions::tenant describes.
std::vector<std::string> TenantNames(const ScenarioOptions& options);

// 8 random hex digits, new in every process: the prefix of every key, so that
// runs can repeat against one store.
std::string NewRunId();

// `n` random bytes (the fingerprint every Reserve sends).
std::string RandomBytes(size_t n);

}  // namespace idemkey::bench

#endif  // IDEMKEY_BENCH_TARGET_H_
