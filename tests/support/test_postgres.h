// test_postgres.h — the PostgreSQL server of a test run, when there is one.
//
// The pg.* copies of the e2e suite run with IDEMKEY_TEST_POSTGRES_DSN_FILE
// naming a file that holds the libpq DSN of a real PostgreSQL server, which
// a CTest fixture (support/postgres_server.py) started for the run. There,
// every IdemkeydProcess runs with --backend=postgres on a database of its
// own (one per data directory, so a restart finds its records again).
//
//   if (UsingPostgres()) GTEST_SKIP() << "about RocksDB's files";
//   absl::StatusOr<std::string> dsn = TestDatabaseDsn(dir.path() + "/data");

#ifndef IDEMKEY_TESTS_SUPPORT_TEST_POSTGRES_H_
#define IDEMKEY_TESTS_SUPPORT_TEST_POSTGRES_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace idemkey::testing {

// Whether this run's servers use PostgreSQL.
bool UsingPostgres();

// The DSN of the database that belongs to `data_dir`, created if absent.
absl::StatusOr<std::string> TestDatabaseDsn(const std::string& data_dir);

// Runs `sql` on the database of `dsn` (for tests that look under the
// service); the error text if it failed.
absl::Status ExecSql(const std::string& dsn, const std::string& sql);

// Runs `sql` and returns its first column, one string per row (in text).
absl::StatusOr<std::vector<std::string>> QuerySql(const std::string& dsn,
                                                  const std::string& sql);

// A PostgreSQL server of its own for one test (another "cluster"), started
// as the run's is (support/postgres_server.py) in `dir`, stopped when
// destroyed. dsn() is empty, and error() says why, when it did not start.
class ExtraPostgresServer {
 public:
  // `run_in`: a command prefix the start runs under (`ip netns exec NS`);
  // `listen`: its listen_addresses (with 127.0.0.1, where dsn() points).
  explicit ExtraPostgresServer(std::string dir, std::string run_in = "",
                               std::string listen = "127.0.0.1");
  ~ExtraPostgresServer();
  ExtraPostgresServer(const ExtraPostgresServer&) = delete;
  ExtraPostgresServer& operator=(const ExtraPostgresServer&) = delete;

  const std::string& dsn() const { return dsn_; }
  const std::string& error() const { return error_; }

 private:
  const std::string dir_;
  std::string dsn_;
  std::string error_;
};

// A PostgreSQL server as if on a machine of its own, which a test can
// unplug: it runs in a network namespace of its own, reached over a veth
// pair at 10.213.N.2 (N from the test's PID). Unplug() takes its end of the
// link down, so that packets to it vanish with no reset, as when a machine
// loses power or the network; Plug() brings it back. Needs root (`ip netns`).
//
//   UnpluggablePostgresServer db(dir.path());
//   ASSERT_TRUE(db.error().empty()) << db.error();
//   ... connect to db.dsn() ...; db.Unplug(); ...; db.Plug();
class UnpluggablePostgresServer {
 public:
  explicit UnpluggablePostgresServer(const std::string& dir);
  // Stops the server and removes the namespace and the link.
  ~UnpluggablePostgresServer();
  UnpluggablePostgresServer(const UnpluggablePostgresServer&) = delete;
  UnpluggablePostgresServer& operator=(const UnpluggablePostgresServer&) =
      delete;

  // host=10.213.N.2 port=P user=postgres dbname=postgres
  const std::string& dsn() const { return dsn_; }
  const std::string& error() const { return error_; }
  absl::Status Unplug();
  absl::Status Plug();

 private:
  const std::string namespace_;
  const std::string link_;  // our end; its peer, in the namespace, link_ + "p"
  const std::string subnet_;  // "10.213.N."
  std::string dsn_;
  std::string error_;
  std::unique_ptr<ExtraPostgresServer> server_;
};

}  // namespace idemkey::testing

#endif  // IDEMKEY_TESTS_SUPPORT_TEST_POSTGRES_H_
