#include "server/store/postgres/connection.h"

#include <endian.h>

#include <cstring>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "libpq-fe.h"

namespace idemkey::store::postgres {
namespace {

// Oids of the types parameters are sent as (pg_type.dat).
constexpr Oid kByteaOid = 17;
constexpr Oid kInt8Oid = 20;
constexpr Oid kTextOid = 25;
constexpr Oid kByteaArrayOid = 1001;
constexpr Oid kTextArrayOid = 1009;
constexpr Oid kInt8ArrayOid = 1016;

void AppendInt32(std::string& out, uint32_t v) {
  const uint32_t be = htobe32(v);
  out.append(reinterpret_cast<const char*>(&be), sizeof(be));
}

std::string Trimmed(const char* message) {
  return std::string(
      absl::StripTrailingAsciiWhitespace(message == nullptr ? "" : message));
}

// What a caller can do about a failed statement, from its SQLSTATE
// (PostgreSQL's errcodes.txt).
absl::Status StatusFromError(const PGresult* result, const PGconn* conn) {
  const char* state_field = PQresultErrorField(result, PG_DIAG_SQLSTATE);
  const absl::string_view state = state_field == nullptr ? "" : state_field;
  const std::string message = Trimmed(
      result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(conn));
  if (PQstatus(conn) == CONNECTION_BAD || state.empty() ||
      absl::StartsWith(state, "08") || absl::StartsWith(state, "57P")) {
    return absl::UnavailableError(
        absl::StrCat("PostgreSQL connection lost: ", message));
  }
  if (state == "25006") {  // read_only_sql_transaction: a standby
    return absl::UnavailableError(absl::StrCat(
        "PostgreSQL server is read-only (a standby; failover in progress?): ",
        message));
  }
  if (state == "57014" || state == "55P03") {  // statement or lock timeout
    return absl::UnavailableError(absl::StrCat(
        "PostgreSQL statement timed out (--postgres_statement_timeout): ",
        message));
  }
  if (state == "40001" || state == "40P01" || state == "53300") {
    return absl::UnavailableError(absl::StrCat("PostgreSQL: ", message));
  }
  if (state == "53100") {  // disk_full
    return absl::ResourceExhaustedError(
        absl::StrCat("PostgreSQL's disk is full; free space there: ", message));
  }
  if (state == "23503") {  // foreign_key_violation
    return absl::FailedPreconditionError(message);
  }
  return absl::InternalError(absl::StrCat("PostgreSQL: ", message));
}

}  // namespace

Statement& Statement::Int64(int64_t v) {
  const uint64_t be = htobe64(static_cast<uint64_t>(v));
  types_.push_back(kInt8Oid);
  values_.emplace_back(reinterpret_cast<const char*>(&be), sizeof(be));
  nulls_.push_back(false);
  return *this;
}

Statement& Statement::Bytes(absl::string_view v) {
  types_.push_back(kByteaOid);
  values_.emplace_back(v);
  nulls_.push_back(false);
  return *this;
}

Statement& Statement::Text(absl::string_view v) {
  types_.push_back(kTextOid);
  values_.emplace_back(v);
  nulls_.push_back(false);
  return *this;
}

Statement& Statement::Null() {
  types_.push_back(kByteaOid);
  values_.emplace_back();
  nulls_.push_back(true);
  return *this;
}

Statement& Statement::Array(
    Oid element_type, Oid array_type, size_t n,
    absl::FunctionRef<std::optional<absl::string_view>(size_t)> element) {
  // array_recv's layout (PostgreSQL's arrayfuncs.c): the number of
  // dimensions (0 for an empty array), a has-NULLs flag the server does not
  // need, the element type, each dimension's length and lower bound, then
  // every element as its length (-1: NULL) and its binary form.
  std::string a;
  AppendInt32(a, n == 0 ? 0 : 1);
  AppendInt32(a, 0);
  AppendInt32(a, element_type);
  if (n > 0) {
    AppendInt32(a, static_cast<uint32_t>(n));
    AppendInt32(a, 1);
  }
  for (size_t i = 0; i < n; ++i) {
    const std::optional<absl::string_view> e = element(i);
    if (!e.has_value()) {
      AppendInt32(a, static_cast<uint32_t>(-1));
      continue;
    }
    AppendInt32(a, static_cast<uint32_t>(e->size()));
    a.append(e->data(), e->size());
  }
  types_.push_back(array_type);
  values_.push_back(std::move(a));
  nulls_.push_back(false);
  return *this;
}

Statement& Statement::Int64Array(absl::Span<const int64_t> v) {
  std::vector<uint64_t> be(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    be[i] = htobe64(static_cast<uint64_t>(v[i]));
  }
  return Array(kInt8Oid, kInt8ArrayOid, v.size(), [&](size_t i) {
    return absl::string_view(reinterpret_cast<const char*>(&be[i]),
                             sizeof(uint64_t));
  });
}

Statement& Statement::BytesArray(
    absl::Span<const std::optional<absl::string_view>> v) {
  return Array(kByteaOid, kByteaArrayOid, v.size(),
               [&](size_t i) { return v[i]; });
}

Statement& Statement::TextArray(absl::Span<const absl::string_view> v) {
  return Array(kTextOid, kTextArrayOid, v.size(),
               [&](size_t i) { return std::optional(v[i]); });
}

Result::Result(pg_result* result) : result_(result) {}
Result::~Result() {
  if (result_ != nullptr) PQclear(result_);
}
Result::Result(Result&& other) noexcept
    : result_(std::exchange(other.result_, nullptr)) {}

int Result::rows() const { return PQntuples(result_); }

int64_t Result::affected() const {
  const char* n = PQcmdTuples(result_);
  return n == nullptr || *n == '\0' ? 0 : std::strtoll(n, nullptr, 10);
}

bool Result::IsNull(int row, int col) const {
  return PQgetisnull(result_, row, col) != 0;
}

int64_t Result::Int64(int row, int col) const {
  uint64_t be = 0;
  std::memcpy(&be, PQgetvalue(result_, row, col), sizeof(be));
  return static_cast<int64_t>(be64toh(be));
}

int16_t Result::Int16(int row, int col) const {
  uint16_t be = 0;
  std::memcpy(&be, PQgetvalue(result_, row, col), sizeof(be));
  return static_cast<int16_t>(be16toh(be));
}

absl::string_view Result::Bytes(int row, int col) const {
  return absl::string_view(PQgetvalue(result_, row, col),
                           PQgetlength(result_, row, col));
}

Connection::Connection(pg_conn* conn) : conn_(conn) {
  PQsetNoticeReceiver(conn_, &Connection::OnNotice, this);
}

Connection::~Connection() { PQfinish(conn_); }

void Connection::OnNotice(void* self, const pg_result* notice) {
  const char* severity =
      PQresultErrorField(notice, PG_DIAG_SEVERITY_NONLOCALIZED);
  if (severity != nullptr && std::strcmp(severity, "WARNING") == 0) {
    static_cast<Connection*>(self)->warned_ = true;
  }
}

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(
    const std::string& dsn, absl::Duration statement_timeout) {
  // The defaults come before the DSN, which overrides them (libpq takes a
  // keyword's last value). libpq's own would wait for a dead machine (one
  // that sends no reset: a crash, a partition) for minutes: with no
  // connect_timeout a connect waits out the SYN retries (about 2 min), and
  // a sent statement waits out TCP's retransmissions (about 15 min) with
  // the group transaction, and every Update behind it, stuck on it. These
  // give up on a silent peer within about 10 s (unacknowledged data,
  // tcp_user_timeout) or 11 s (an idle or waiting connection whose
  // keepalive probes go unanswered), about when Patroni's failover has
  // made a new primary. A COMMIT that waits long for a synchronous standby
  // is not cut short: the primary's kernel answers the probes.
  const char* keys[] = {"connect_timeout",
                        "keepalives",
                        "keepalives_idle",
                        "keepalives_interval",
                        "keepalives_count",
                        "tcp_user_timeout",
                        "dbname",
                        "fallback_application_name",
                        nullptr};
  const char* values[] = {"5",     "1",         "5",        "2",    "3",
                          "10000", dsn.c_str(), "idemkeyd", nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (conn == nullptr) {
    return absl::ResourceExhaustedError("libpq: out of memory");
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    absl::Status s = absl::UnavailableError(
        absl::StrCat("cannot connect to PostgreSQL (--postgres_dsn): ",
                     Trimmed(PQerrorMessage(conn))));
    PQfinish(conn);
    return s;
  }
  std::unique_ptr<Connection> c(new Connection(conn));
  const std::string ms =
      absl::StrCat(absl::ToInt64Milliseconds(statement_timeout));
  Pipeline setup;
  // An acknowledgement means the commit is on the synchronous standby too,
  // whatever the server's default.
  setup.Add("SET synchronous_commit = on");
  setup.Add("SELECT set_config('statement_timeout', $1, false)").Text(ms);
  setup.Add("SELECT set_config('lock_timeout', $1, false)").Text(ms);
  absl::StatusOr<std::vector<Result>> done = c->Run(setup);
  if (!done.ok()) return done.status();
  return c;
}

bool Connection::broken() const {
  return discard_ || PQstatus(conn_) != CONNECTION_OK ||
         PQpipelineStatus(conn_) != PQ_PIPELINE_OFF;
}

absl::Status Connection::RollbackIfOpen() {
  if (PQstatus(conn_) != CONNECTION_OK ||
      PQtransactionStatus(conn_) == PQTRANS_IDLE) {
    return absl::OkStatus();
  }
  PGresult* r = PQexec(conn_, "ROLLBACK");
  absl::Status s = PQresultStatus(r) == PGRES_COMMAND_OK
                       ? absl::OkStatus()
                       : StatusFromError(r, conn_);
  PQclear(r);
  return s;
}

const std::string* Connection::PreparedName(const Statement& st) const {
  auto it = prepared_.find(PreparedKey(st));
  return it == prepared_.end() ? nullptr : &it->second;
}

std::string Connection::PreparedKey(const Statement& st) {
  std::string key = st.sql_;
  key.push_back('\0');
  for (unsigned int type : st.types_) absl::StrAppend(&key, type, ",");
  return key;
}

absl::StatusOr<std::vector<Result>> Connection::Run(const Pipeline& pipeline) {
  warned_ = false;
  if (PQenterPipelineMode(conn_) != 1) return StatusFromError(nullptr, conn_);
  absl::Status error;
  // What went out, in order: a statement's Prepare (the first time this
  // connection runs its SQL with these parameter types), then its Execute.
  struct Sent {
    std::string prepared_key;  // set for a Prepare
    std::string name;
  };
  std::vector<Sent> sent;
  absl::flat_hash_map<std::string, std::string> preparing;  // in this Run
  for (const Statement& st : pipeline.statements()) {
    const std::string* name = PreparedName(st);
    if (name == nullptr) {
      std::string key = PreparedKey(st);
      auto [it, fresh] = preparing.try_emplace(key);
      if (fresh) {
        it->second = absl::StrCat("idemkey_", next_statement_++);
        if (PQsendPrepare(conn_, it->second.c_str(), st.sql_.c_str(),
                          static_cast<int>(st.types_.size()),
                          st.types_.data()) != 1) {
          error = StatusFromError(nullptr, conn_);
          break;
        }
        sent.push_back(Sent{.prepared_key = key, .name = it->second});
      }
      name = &it->second;
    }
    std::vector<const char*> values(st.values_.size());
    std::vector<int> lengths(st.values_.size());
    std::vector<int> formats(st.values_.size(), 1);
    for (size_t i = 0; i < values.size(); ++i) {
      values[i] = st.nulls_[i] ? nullptr : st.values_[i].data();
      lengths[i] = static_cast<int>(st.values_[i].size());
    }
    if (PQsendQueryPrepared(conn_, name->c_str(),
                            static_cast<int>(values.size()), values.data(),
                            lengths.data(), formats.data(),
                            /*resultFormat=*/1) != 1) {
      error = StatusFromError(nullptr, conn_);
      break;
    }
    sent.push_back(Sent{});
  }
  std::vector<Result> results;
  if (error.ok() && PQpipelineSync(conn_) != 1) {
    error = StatusFromError(nullptr, conn_);
  }
  if (error.ok()) {
    results.reserve(pipeline.statements().size());
    // Each Prepare's and statement's result, then a NULL; after them the
    // sync's result.
    for (const Sent& item : sent) {
      PGresult* r = PQgetResult(conn_);
      if (r == nullptr) {
        error = StatusFromError(nullptr, conn_);
        break;
      }
      const ExecStatusType status = PQresultStatus(r);
      if (status == PGRES_FATAL_ERROR && error.ok()) {
        error = StatusFromError(r, conn_);
      } else if (status == PGRES_PIPELINE_ABORTED && error.ok()) {
        error = absl::InternalError("PostgreSQL skipped a statement");
      }
      if (!item.prepared_key.empty()) {
        // Only a Prepare that ran made the name: a skipped one did not.
        if (status == PGRES_COMMAND_OK)
          prepared_[item.prepared_key] = item.name;
        PQclear(r);
      } else {
        results.emplace_back(r);
      }
      while ((r = PQgetResult(conn_)) != nullptr) PQclear(r);
    }
    if (PQstatus(conn_) == CONNECTION_OK) {
      PGresult* sync = PQgetResult(conn_);
      if (sync != nullptr && PQresultStatus(sync) != PGRES_PIPELINE_SYNC &&
          error.ok()) {
        error = StatusFromError(sync, conn_);
      }
      PQclear(sync);
    }
  }
  if (PQstatus(conn_) == CONNECTION_OK) PQexitPipelineMode(conn_);
  if (!error.ok()) {
    discard_ = discard_ || absl::IsUnavailable(error);
    (void)RollbackIfOpen();
    return error;
  }
  return results;
}

int64_t AdvisoryLockKey(absl::string_view a, absl::string_view b) {
  uint64_t h = 14695981039346656037ull;
  auto mix = [&h](absl::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
  };
  mix(a);
  mix(absl::string_view("\0", 1));  // ("ab","c") and ("a","bc") differ
  mix(b);
  return static_cast<int64_t>(h);
}

}  // namespace idemkey::store::postgres
