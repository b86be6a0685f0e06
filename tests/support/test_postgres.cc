#include "tests/support/test_postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "libpq-fe.h"
#include "tests/support/read_file.h"

namespace idemkey::testing {
namespace {

const char* DsnFile() { return std::getenv("IDEMKEY_TEST_POSTGRES_DSN_FILE"); }

absl::StatusOr<std::string> ServerDsn() {
  std::string dsn(absl::StripAsciiWhitespace(ReadFile(DsnFile())));
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

absl::StatusOr<std::vector<std::string>> QuerySql(const std::string& dsn,
                                                  const std::string& sql) {
  PGconn* conn = PQconnectdb(dsn.c_str());
  absl::StatusOr<std::vector<std::string>> rows;
  if (PQstatus(conn) != CONNECTION_OK) {
    rows = absl::UnavailableError(PQerrorMessage(conn));
  } else {
    PGresult* r = PQexec(conn, sql.c_str());
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
      rows =
          absl::InternalError(absl::StrCat(sql, ": ", PQresultErrorMessage(r)));
    } else {
      rows.emplace();
      for (int i = 0; i < PQntuples(r); ++i)
        rows->push_back(PQgetvalue(r, i, 0));
    }
    PQclear(r);
  }
  PQfinish(conn);
  return rows;
}

namespace {

int RunServerScript(const std::string& args) {
  return std::system(
      absl::StrCat("/usr/bin/python3 " POSTGRES_SERVER_PY " ", args).c_str());
}

}  // namespace

ExtraPostgresServer::ExtraPostgresServer(std::string dir, std::string run_in,
                                         std::string listen)
    : dir_(std::move(dir)) {
  mkdir(dir_.c_str(), 0755);
  chmod(dir_.c_str(), 0755);  // the postgres user runs the server in it
  const std::string log = dir_ + "/postgres-server.log";
  if (std::system(absl::StrCat(run_in,
                               " /usr/bin/python3 " POSTGRES_SERVER_PY
                               " start --listen '",
                               listen, "' --dir '", dir_, "/pg' --dsn_file '",
                               dir_, "/pg.dsn' > '", log, "' 2>&1")
                      .c_str()) != 0) {
    error_ = absl::StrCat("postgres_server.py start failed:\n", ReadFile(log));
    return;
  }
  dsn_ = std::string(absl::StripAsciiWhitespace(ReadFile(dir_ + "/pg.dsn")));
}

ExtraPostgresServer::~ExtraPostgresServer() {
  (void)RunServerScript(
      absl::StrCat("stop --dir '", dir_, "/pg' > /dev/null 2>&1"));
}

namespace {

// Runs a shell command; its output in the error when it fails.
absl::Status Shell(const std::string& command) {
  std::string output;
  FILE* f = popen((command + " 2>&1").c_str(), "r");
  if (f == nullptr) return absl::InternalError("popen failed: " + command);
  char buf[512];
  while (fgets(buf, sizeof(buf), f) != nullptr) output += buf;
  if (pclose(f) != 0) {
    return absl::InternalError(absl::StrCat(command, " failed: ", output));
  }
  return absl::OkStatus();
}

}  // namespace

UnpluggablePostgresServer::UnpluggablePostgresServer(const std::string& dir)
    : namespace_(absl::StrCat("idemkey-pg-", getpid())),
      link_(absl::StrCat("ikpg", getpid())),
      subnet_(absl::StrCat("10.213.", getpid() % 250, ".")) {
  const std::string in_ns = "ip netns exec " + namespace_;
  for (const std::string& step : {
           "ip netns add " + namespace_,
           absl::StrCat("ip link add ", link_, " type veth peer name ", link_,
                        "p netns ", namespace_),
           absl::StrCat("ip addr add ", subnet_, "1/30 dev ", link_),
           absl::StrCat("ip link set ", link_, " up"),
           absl::StrCat(in_ns, " ip addr add ", subnet_, "2/30 dev ", link_,
                        "p"),
           absl::StrCat(in_ns, " ip link set ", link_, "p up"),
           in_ns + " ip link set lo up",
       }) {
    if (absl::Status s = Shell(step); !s.ok()) {
      error_ = std::string(s.message());
      return;
    }
  }
  server_ = std::make_unique<ExtraPostgresServer>(
      dir, in_ns, absl::StrCat("127.0.0.1,", subnet_, "2"));
  error_ = server_->error();
  dsn_ = absl::StrReplaceAll(server_->dsn(),
                             {{"host=127.0.0.1", "host=" + subnet_ + "2"}});
}

UnpluggablePostgresServer::~UnpluggablePostgresServer() {
  (void)Plug();  // a fast shutdown of the server, not a wait on dead links
  server_.reset();
  (void)Shell("ip netns del " + namespace_);  // the link goes with it
}

absl::Status UnpluggablePostgresServer::Unplug() {
  return Shell(absl::StrCat("ip netns exec ", namespace_, " ip link set ",
                            link_, "p down"));
}

absl::Status UnpluggablePostgresServer::Plug() {
  return Shell(absl::StrCat("ip netns exec ", namespace_, " ip link set ",
                            link_, "p up"));
}

}  // namespace idemkey::testing
