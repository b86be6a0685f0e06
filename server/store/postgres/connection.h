// connection.h — one libpq connection, and the few ways PostgresBackend
// talks over it: a pipeline of parameterised statements in one round trip.
//
// Every value travels in binary (integers big-endian, bytea raw), so nothing
// is quoted or parsed as text. A Pipeline sends its statements back to back,
// then one Sync, and reads every result: one network round trip however
// many statements (libpq's pipeline mode, PostgreSQL 14+). Each distinct
// statement is prepared the first time a connection runs it, in the same
// round trip, and only executed after that: PostgreSQL parses and plans it
// once per connection, not once per call. (Statements come from a fixed set
// in the code, so the prepared ones stay few; none is ever deallocated.)
//
//   absl::StatusOr<std::unique_ptr<Connection>> c = Connection::Open(dsn, s);
//   Pipeline p;
//   p.Add("SELECT fencing_token FROM idemkey_records WHERE key = $1")
//       .Bytes("k1");
//   absl::StatusOr<std::vector<Result>> results = (*c)->Run(p);
//   if (results.ok() && (*results)[0].rows() == 1) {
//     int64_t token = (*results)[0].Int64(0, 0);
//   }
//
// Errors become absl::Status by what a caller can do: a lost connection, a
// standby in a failover, a timeout are UNAVAILABLE (retry), a full disk
// RESOURCE_EXHAUSTED, a broken foreign key FAILED_PRECONDITION (the caller
// words it); a connection that broke is `broken()` from then on and must be
// dropped.
//
// Thread-compatible: one thread at a time per Connection (the pool hands
// each to one caller).

#ifndef IDEMKEY_SERVER_STORE_POSTGRES_CONNECTION_H_
#define IDEMKEY_SERVER_STORE_POSTGRES_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

struct pg_conn;
struct pg_result;

namespace idemkey::store::postgres {

// One statement of a Pipeline, and its parameters ($1, $2, ... in order).
class Statement {
 public:
  explicit Statement(std::string sql) : sql_(std::move(sql)) {}

  Statement& Int64(int64_t v);
  Statement& Bytes(absl::string_view v);  // bytea
  Statement& Text(absl::string_view v);   // text
  Statement& Null();                      // a NULL bytea
  // One-dimensional arrays (int8[], bytea[] with nullopt for NULL, text[]),
  // for statements that do the same to many rows through unnest().
  Statement& Int64Array(absl::Span<const int64_t> v);
  Statement& BytesArray(absl::Span<const std::optional<absl::string_view>> v);
  Statement& TextArray(absl::Span<const absl::string_view> v);

  const std::string& sql() const { return sql_; }

 private:
  friend class Connection;
  Statement& Array(
      unsigned int element_type, unsigned int array_type, size_t n,
      absl::FunctionRef<std::optional<absl::string_view>(size_t)> element);
  std::string sql_;
  std::vector<unsigned int> types_;  // Oids
  std::vector<std::string> values_;
  std::vector<bool> nulls_;
};

class Pipeline {
 public:
  Statement& Add(std::string sql) {
    statements_.emplace_back(std::move(sql));
    return statements_.back();
  }
  const std::vector<Statement>& statements() const { return statements_; }

 private:
  std::vector<Statement> statements_;
};

// The rows of one statement; values in binary, read by column number.
class Result {
 public:
  explicit Result(pg_result* result);
  ~Result();
  Result(Result&& other) noexcept;
  Result& operator=(Result&&) = delete;
  Result(const Result&) = delete;

  int rows() const;
  // Rows an INSERT/UPDATE/DELETE changed.
  int64_t affected() const;
  bool IsNull(int row, int col) const;
  int64_t Int64(int row, int col) const;            // an int8 column
  int16_t Int16(int row, int col) const;            // an int2 column
  absl::string_view Bytes(int row, int col) const;  // bytea or text

 private:
  pg_result* result_;
};

class Connection {
 public:
  // Connects with libpq conninfo `dsn` (multi-host DSNs and
  // target_session_attrs work as libpq documents), then sets the session up:
  // synchronous_commit on, `statement_timeout` for every statement (0: none),
  // the same as lock_timeout, and application_name idemkeyd. Unless `dsn`
  // sets them, connect_timeout, keepalives and tcp_user_timeout give up on
  // a silent (vanished) server within about 10 s. UNAVAILABLE
  // when PostgreSQL cannot be reached; the message never holds the DSN
  // (it may hold a password).
  static absl::StatusOr<std::unique_ptr<Connection>> Open(
      const std::string& dsn, absl::Duration statement_timeout);
  ~Connection();

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs the statements in one round trip and returns a Result for each.
  // The first failing statement's error is returned (the ones after it are
  // skipped by the server); an open transaction is then rolled back, so the
  // connection is clean for its next user.
  absl::StatusOr<std::vector<Result>> Run(const Pipeline& pipeline);

  // Whether PostgreSQL sent a WARNING since the last Run began: COMMIT's
  // wait for the synchronous standby, when cancelled, commits locally and
  // only warns ("might not have been replicated"), so an acknowledged write
  // would not be safe.
  bool warned() const { return warned_; }

  // The connection is gone (or in a state no caller should inherit): drop it.
  bool broken() const;

 private:
  explicit Connection(pg_conn* conn);
  static void OnNotice(void* self, const pg_result* notice);
  absl::Status RollbackIfOpen();
  // A statement is prepared per (SQL, parameter types); its name, once its
  // Prepare ran, or null.
  static std::string PreparedKey(const Statement& st);
  const std::string* PreparedName(const Statement& st) const;

  pg_conn* const conn_;
  bool warned_ = false;
  // A failure after which no one should use this connection again: it was
  // lost, or it reached a read-only standby (which a new connection with
  // target_session_attrs=read-write would not).
  bool discard_ = false;
  // PreparedKey -> the name it was prepared as on this connection.
  absl::flat_hash_map<std::string, std::string> prepared_;
  uint64_t next_statement_ = 0;
};

// A 64-bit pg_advisory_xact_lock key for the pair (a, b): stable across
// processes and versions (FNV-1a), so every replica locks the same key for
// the same record.
int64_t AdvisoryLockKey(absl::string_view a, absl::string_view b);

}  // namespace idemkey::store::postgres

#endif  // IDEMKEY_SERVER_STORE_POSTGRES_CONNECTION_H_
