// PostgreSQL driven directly as a Target: what a team would write instead
// of idemkey over the same database (Brandur Leach's "Implementing Stripe-
// like idempotency keys in Postgres": one row per key, claimed with INSERT
// ... ON CONFLICT, then completed), the direct-SQL peer of idemkeyd's
// PostgreSQL backend.
//
//   pairs  INSERT INTO bench_idempotency_keys ... ON CONFLICT DO NOTHING
//          RETURNING fencing_token, which must return a row (the key was
//          free: this attempt owns it, with a token from a sequence), then
//          UPDATE ... SET response, completed WHERE the key and token match,
//          which must change one row;
//   ping   SELECT 1, the baseline of one round trip.
//
// Each statement is prepared once per connection and runs on its own, so
// with synchronous_commit on (the server's default) each is one durable
// commit: two round trips per pair, the least such a design needs. The
// peer locks nothing across its two statements; a retry of a reserved key
// would read the row and compare its lease, which the scenario never
// needs (its keys are fresh). One connection and one thread per operation
// in flight, as an app server's connection pool would.

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "bench/closed_loop.h"
#include "bench/target.h"

namespace idemkey::bench {
namespace {

struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using Conn = std::unique_ptr<PGconn, ConnDeleter>;
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

constexpr absl::string_view kSchema =
    "CREATE TABLE IF NOT EXISTS bench_idempotency_keys ("
    "  tenant text NOT NULL,"
    "  key text NOT NULL,"
    "  fingerprint bytea NOT NULL,"
    "  attempt_id text NOT NULL,"
    "  fencing_token bigint NOT NULL,"
    "  locked_at timestamptz,"
    "  response bytea,"
    "  completed_at timestamptz,"
    "  expires_at timestamptz NOT NULL,"
    "  PRIMARY KEY (tenant, key));"
    "CREATE SEQUENCE IF NOT EXISTS bench_fencing_tokens AS bigint";

constexpr absl::string_view kReserve =
    "INSERT INTO bench_idempotency_keys (tenant, key, fingerprint, "
    "attempt_id, fencing_token, locked_at, expires_at) "
    "VALUES ($1, $2, $3, $4, nextval('bench_fencing_tokens'), now(), "
    "now() + make_interval(secs => $5::bigint)) "
    "ON CONFLICT (tenant, key) DO NOTHING RETURNING fencing_token";
constexpr absl::string_view kComplete =
    "UPDATE bench_idempotency_keys SET response = $3, completed_at = now(), "
    "locked_at = NULL "
    "WHERE tenant = $1 AND key = $2 AND fencing_token = $4::bigint";

// Idempotency keys live this long when --ttl_seconds leaves it open: the
// default of idemkeyd.
constexpr int64_t kDefaultTtlSeconds = 24 * 3600;

std::string ErrorOf(PGconn* c) {
  std::string message = PQerrorMessage(c);
  while (!message.empty() && message.back() == '\n') message.pop_back();
  return message;
}

Conn Connect(const std::string& dsn, std::string* error) {
  Conn c(PQconnectdb(dsn.c_str()));
  if (PQstatus(c.get()) != CONNECTION_OK) {
    *error = absl::StrCat("cannot connect to PostgreSQL (", dsn,
                          "): ", ErrorOf(c.get()));
    return nullptr;
  }
  for (auto [name, sql] :
       {std::pair{"reserve", kReserve}, std::pair{"complete", kComplete},
        std::pair{"ping", absl::string_view("SELECT 1")}}) {
    Result r(PQprepare(c.get(), name, std::string(sql).c_str(), 0, nullptr));
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
      *error = absl::StrCat("preparing ", name, ": ", ErrorOf(c.get()));
      return nullptr;
    }
  }
  return c;
}

class SqlTarget final : public Target {
 public:
  SqlTarget(std::string dsn, const ScenarioOptions& options)
      : dsn_(std::move(dsn)),
        options_(options),
        tenants_(TenantNames(options)),
        run_id_(NewRunId()),
        fingerprint_(RandomBytes(32)),
        response_(options.response_bytes, 'x') {}

  bool Supports(absl::string_view scenario) const override {
    return scenario == "pairs" || scenario == "ping";
  }

  void Warmup(double) override {}

  RunResult Run(absl::string_view scenario, size_t in_flight,
                double seconds) override {
    // Connections are opened before the clock starts, and kept for the
    // levels after (a pool's connections outlive its requests).
    while (conns_.size() < in_flight) {
      std::string error;
      Conn c = Connect(dsn_, &error);
      if (c == nullptr) {
        RunResult failed;
        failed.errors = 1;
        failed.first_error = error;
        return failed;
      }
      conns_.push_back(std::move(c));
    }
    const std::string phase = absl::StrCat(run_id_, "-", runs_++);
    return RunBlockingLoop(in_flight, seconds, [&](size_t i, uint64_t n) {
      PGconn* c = conns_[i].get();
      if (scenario == "ping") return Ping(c);
      return Pair(c, tenants_[n % tenants_.size()],
                  absl::StrCat(phase, "-", n));
    });
  }

 private:
  static std::string Ping(PGconn* c) {
    Result r(PQexecPrepared(c, "ping", 0, nullptr, nullptr, nullptr, 0));
    return PQresultStatus(r.get()) == PGRES_TUPLES_OK
               ? ""
               : absl::StrCat("SELECT 1: ", ErrorOf(c));
  }

  std::string Pair(PGconn* c, const std::string& tenant,
                   const std::string& key) const {
    const std::string ttl = absl::StrCat(
        options_.ttl_seconds > 0 ? options_.ttl_seconds : kDefaultTtlSeconds);
    std::string token;
    {
      const char* values[] = {tenant.c_str(), key.c_str(), fingerprint_.data(),
                              key.c_str(), ttl.c_str()};
      const int lengths[] = {0, 0, static_cast<int>(fingerprint_.size()), 0, 0};
      const int binary[] = {0, 0, 1, 0, 0};
      Result r(PQexecPrepared(c, "reserve", 5, values, lengths, binary, 0));
      if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
        return absl::StrCat("reserve: ", ErrorOf(c));
      }
      if (PQntuples(r.get()) != 1) return "reserve: the key was taken";
      token = PQgetvalue(r.get(), 0, 0);
    }
    const char* values[] = {tenant.c_str(), key.c_str(), response_.data(),
                            token.c_str()};
    const int lengths[] = {0, 0, static_cast<int>(response_.size()), 0};
    const int binary[] = {0, 0, 1, 0};
    Result r(PQexecPrepared(c, "complete", 4, values, lengths, binary, 0));
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
      return absl::StrCat("complete: ", ErrorOf(c));
    }
    return std::string(PQcmdTuples(r.get())) == "1"
               ? ""
               : "complete: no row had the key and token";
  }

  const std::string dsn_;
  const ScenarioOptions options_;
  const std::vector<std::string> tenants_;
  const std::string run_id_;
  const std::string fingerprint_;
  const std::string response_;
  std::vector<Conn> conns_;  // conns_[i]: thread i's
  int runs_ = 0;
};

}  // namespace

std::unique_ptr<Target> ConnectSqlTarget(const std::string& dsn,
                                         const ScenarioOptions& options,
                                         std::string* error) {
  Conn c(PQconnectdb(dsn.c_str()));
  if (PQstatus(c.get()) != CONNECTION_OK) {
    *error = absl::StrCat("cannot connect to PostgreSQL (", dsn,
                          "): ", ErrorOf(c.get()));
    return nullptr;
  }
  Result r(PQexec(c.get(), std::string(kSchema).c_str()));
  if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
    *error = absl::StrCat("creating the peer's table: ", ErrorOf(c.get()));
    return nullptr;
  }
  return std::make_unique<SqlTarget>(dsn, options);
}

}  // namespace idemkey::bench
