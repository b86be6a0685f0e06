#include "tests/support/test_postgres.h"

#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "libpq-fe.h"

namespace idemkey::testing {
namespace {

const char* DsnFile() { return std::getenv("IDEMKEY_TEST_POSTGRES_DSN_FILE"); }

absl::StatusOr<std::string> ServerDsn() {
  std::ifstream in(DsnFile());
  std::stringstream ss;
  ss << in.rdbuf();
  std::string dsn(absl::StripAsciiWhitespace(ss.str()));
  if (dsn.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("no DSN in ", DsnFile(),
                     " (is the Postgres.StartServer fixture running?)"));
  }
  return dsn;
}

}  // namespace

bool UsingPostgres() {
  const char* file = DsnFile();
  return file != nullptr && *file != '\0';
}

absl::Status ExecSql(const std::string& dsn, const std::string& sql) {
  PGconn* conn = PQconnectdb(dsn.c_str());
  absl::Status s;
  if (PQstatus(conn) != CONNECTION_OK) {
    s = absl::UnavailableError(PQerrorMessage(conn));
  } else {
    PGresult* r = PQexec(conn, sql.c_str());
    const ExecStatusType status = PQresultStatus(r);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      s = absl::InternalError(absl::StrCat(sql, ": ", PQresultErrorMessage(r)));
    }
    PQclear(r);
  }
  PQfinish(conn);
  return s;
}

absl::StatusOr<std::string> TestDatabaseDsn(const std::string& data_dir) {
  absl::StatusOr<std::string> server = ServerDsn();
  if (!server.ok()) return server.status();
  // A name per directory; std::hash is stable within the test process,
  // which is all a restart on the same directory needs.
  const std::string db =
      absl::StrCat("e2e_", absl::Hex(std::hash<std::string>()(data_dir)));
  absl::Status created = ExecSql(*server, absl::StrCat("CREATE DATABASE ", db));
  if (!created.ok() &&
      !absl::StrContains(created.message(), "already exists")) {
    return created;
  }
  return absl::StrCat(*server, " dbname=", db);
}

}  // namespace idemkey::testing
