// idemkeyd over PostgreSQL: what only this backend has. Replicas that share
// one database, restarted one after the other under load, fail no request;
// the schema is migrated once however many start together, and a schema
// newer than the binary, or a database out of reach, stops the start with a
// clear line. Tenants spread over two clusters (two PostgreSQL servers) go
// to the one with fewer, stay there across restarts, and are placed once
// when two replicas create one together. A database machine that vanishes
// costs its calls seconds, not minutes. (Every other e2e test runs over
// PostgreSQL too, as pg.*.)

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "idemkey/client/client.h"
#include "tests/support/idemkeyd_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_client.h"

namespace idemkey::testing {
namespace {

#define SKIP_UNLESS_POSTGRES()                                  \
  if (!UsingPostgres()) {                                       \
    GTEST_SKIP() << "needs a PostgreSQL server (the pg.* run)"; \
  }

TEST(PostgresStartupTest, UnreachableDatabaseFailsClearly) {
  // Port 1 on loopback refuses at once: nothing listens there.
  CommandResult r =
      RunIdemkeyd({"--listen=127.0.0.1:0", "--backend=postgres",
                   "--postgres_dsn=host=127.0.0.1 port=1 dbname=idemkey "
                   "password=secret-in-dsn connect_timeout=5"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("cannot start: cannot connect to PostgreSQL "
                          "(--postgres_dsn)"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("secret-in-dsn"), std::string::npos) << r.output;
}

TEST(PostgresStartupTest, BackendFlagsAreChecked) {
  CommandResult r = RunIdemkeyd({"--backend=postgres"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("--backend=postgres needs --postgres_dsn"),
            std::string::npos)
      << r.output;
  r = RunIdemkeyd({"--backend=mysql"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("--backend must be rocksdb or postgres"),
            std::string::npos)
      << r.output;
}

TEST(PostgresStartupTest, ReplicasStartingTogetherMigrateOnceAndServe) {
  SKIP_UNLESS_POSTGRES();
  TempDir dir;
  std::vector<std::unique_ptr<IdemkeydProcess>> replicas;
  for (int i = 0; i < 4; ++i) {
    replicas.push_back(std::make_unique<IdemkeydProcess>(
        dir.path() + "/r" + std::to_string(i), std::vector<std::string>{},
        /*database_of=*/dir.path() + "/db"));
  }
  std::vector<std::thread> starting;
  std::vector<::testing::AssertionResult> started(
      replicas.size(), ::testing::AssertionFailure());
  for (size_t i = 0; i < replicas.size(); ++i) {
    starting.emplace_back([&, i] { started[i] = replicas[i]->Start(); });
  }
  for (auto& t : starting) t.join();
  for (size_t i = 0; i < replicas.size(); ++i) {
    ASSERT_TRUE(started[i]) << "replica " << i;
  }
  // One database: a record written through one replica is read through
  // every other.
  TestClient first(replicas[0]->NewChannel());
  auto r = first.Reserve(ReserveReq("acme", "k", "body", "a1"));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  for (size_t i = 1; i < replicas.size(); ++i) {
    TestClient other(replicas[i]->NewChannel());
    auto l = other.Lookup("acme", "k");
    ASSERT_TRUE(l.status.ok()) << l.status.error_message();
    EXPECT_EQ(l.reply.record().fencing_token(), r.reply.fencing_token());
  }
  for (auto& replica : replicas) EXPECT_TRUE(replica->Stop());
}

TEST(PostgresStartupTest, SchemaNewerThanTheBinaryIsRefused) {
  SKIP_UNLESS_POSTGRES();
  TempDir dir;
  IdemkeydProcess server(dir.path() + "/data");
  ASSERT_TRUE(server.Start());
  ASSERT_TRUE(server.Stop());
  absl::StatusOr<std::string> dsn = TestDatabaseDsn(dir.path() + "/data");
  ASSERT_TRUE(dsn.ok()) << dsn.status();
  ASSERT_TRUE(ExecSql(*dsn, "UPDATE idemkey_schema SET version = 99").ok());
  CommandResult r = RunIdemkeyd(
      {"--listen=127.0.0.1:0", "--backend=postgres", "--postgres_dsn=" + *dsn});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("the database's idemkey schema is version 99, "
                          "newer than this idemkeyd knows ("),
            std::string::npos)
      << r.output;
}

// The stricter role setup of deploy/README.md: an owner role made the
// tables; the run-time role holds only the grants listed there, no CREATE
// on the schema, and idemkeyd starts and serves with it.
TEST(PostgresStartupTest, RunTimeRoleWithoutCreateStartsOnAMigratedDatabase) {
  SKIP_UNLESS_POSTGRES();
  TempDir dir;
  {
    IdemkeydProcess owner(dir.path() + "/data");  // as the superuser
    ASSERT_TRUE(owner.Start());
    ASSERT_TRUE(owner.Stop());
  }
  absl::StatusOr<std::string> dsn = TestDatabaseDsn(dir.path() + "/data");
  ASSERT_TRUE(dsn.ok()) << dsn.status();
  absl::StatusOr<std::vector<std::string>> db =
      QuerySql(*dsn, "SELECT current_database()");
  ASSERT_TRUE(db.ok()) << db.status();
  // Roles belong to the whole server, which the run's tests share.
  const std::string role = "runtime_" + db->at(0);
  absl::Status granted = ExecSql(
      *dsn,
      absl::StrCat("CREATE ROLE ", role, " LOGIN; ",
                   "REVOKE CREATE ON SCHEMA public FROM PUBLIC; ",
                   "GRANT USAGE ON SCHEMA public TO ", role, "; ",
                   "GRANT SELECT ON idemkey_schema TO ", role, "; ",
                   "GRANT SELECT, INSERT, DELETE, UPDATE (created_ms) ON "
                   "idemkey_tenants TO ",
                   role, "; ",
                   "GRANT SELECT, INSERT, UPDATE, DELETE ON "
                   "idemkey_records TO ",
                   role, "; ",
                   "GRANT USAGE ON SEQUENCE idemkey_fencing_tokens TO ", role));
  ASSERT_TRUE(granted.ok()) << granted;
  {
    IdemkeydProcess server(
        dir.path() + "/runtime",
        {"--backend=postgres", "--postgres_dsn=" + *dsn + " user=" + role});
    ASSERT_TRUE(server.Start());
    TestClient client(server.NewChannel());
    auto r = client.Reserve(ReserveReq("acme", "k", "body", "a"));
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
    EXPECT_TRUE(
        client
            .Complete("acme", "k", r.reply.fencing_token(), SampleResponse("k"))
            .status.ok());
    EXPECT_TRUE(client.Lookup("acme", "k").status.ok());
    ASSERT_TRUE(server.Stop());
  }
  EXPECT_TRUE(
      ExecSql(*dsn, absl::StrCat("DROP OWNED BY ", role, "; DROP ROLE ", role))
          .ok());
}

// Expired records are absent at once (KeyStore); the background sweep then
// deletes their rows, and only theirs.
TEST(PostgresExpiryTest, SweepDeletesExpiredRowsOnly) {
  SKIP_UNLESS_POSTGRES();
  TempDir dir;
  IdemkeydProcess server(dir.path() + "/data",
                         {"--min_ttl=1s", "--postgres_sweep_interval=1s"});
  ASSERT_TRUE(server.Start());
  TestClient client(server.NewChannel());
  for (const std::string key : {"short-1", "short-2", "kept"}) {
    auto req = ReserveReq("acme", key, "body", "a");
    req.mutable_ttl()->set_seconds(key == "kept" ? 3600 : 1);
    auto r = client.Reserve(req);
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
    ASSERT_TRUE(
        client
            .Complete("acme", key, r.reply.fencing_token(), SampleResponse(key))
            .status.ok());
  }
  absl::StatusOr<std::string> dsn = TestDatabaseDsn(dir.path() + "/data");
  ASSERT_TRUE(dsn.ok()) << dsn.status();
  const std::string only_kept_left =
      "DO $$ BEGIN IF (SELECT array_agg(convert_from(key, 'UTF8')) FROM "
      "idemkey_records) IS DISTINCT FROM ARRAY['kept'] THEN RAISE EXCEPTION "
      "'rows: %', (SELECT array_agg(convert_from(key, 'UTF8')) FROM "
      "idemkey_records); END IF; END $$";
  absl::Status swept = ExecSql(*dsn, only_kept_left);
  EXPECT_FALSE(swept.ok()) << "nothing had expired yet";
  for (int i = 0; i < 100 && !swept.ok(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    swept = ExecSql(*dsn, only_kept_left);
  }
  EXPECT_TRUE(swept.ok()) << swept;
  EXPECT_EQ(client.Lookup("acme", "short-1").status.error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(client.Lookup("acme", "kept").status.ok());
  ASSERT_TRUE(server.Stop());
}

// The primary's machine vanishes (its link goes down: no reset reaches
// idemkeyd, as in a power cut or a partition, unlike the failover suite's
// kill -9): the calls that were headed to it answer UNAVAILABLE within
// idemkeyd's connection timeouts (connection.cc: about 10 s for a sent
// statement, 5 s for the new connection it then tries) instead of waiting
// out TCP's retransmissions with every Update behind them; once the
// machine is back, calls succeed again and the acknowledged record is
// still there.
TEST(PostgresNetworkTest, VanishedDatabaseMachineAnswersUnavailableNotHang) {
  SKIP_UNLESS_POSTGRES();
  if (geteuid() != 0) GTEST_SKIP() << "needs root for a network namespace";
  TempDir dir;
  UnpluggablePostgresServer db(dir.path() + "/db");
  ASSERT_TRUE(db.error().empty()) << db.error();
  absl::Status created = ExecSql(db.dsn(), "CREATE DATABASE idemkey");
  ASSERT_TRUE(created.ok()) << created;
  IdemkeydProcess server(
      dir.path() + "/data",
      {"--backend=postgres", "--postgres_dsn=" + db.dsn() + " dbname=idemkey"});
  ASSERT_TRUE(server.Start());
  TestClient client(server.NewChannel());
  auto before = client.Reserve(ReserveReq("acme", "before", "body", "a"));
  ASSERT_TRUE(before.status.ok()) << before.status.error_message();
  ASSERT_TRUE(client
                  .Complete("acme", "before", before.reply.fencing_token(),
                            SampleResponse("before"))
                  .status.ok());

  ASSERT_TRUE(db.Unplug().ok());
  constexpr int kCalls = 4;
  std::vector<grpc::Status> during(kCalls);
  std::vector<double> seconds(kCalls);
  std::vector<std::thread> callers;
  for (int i = 0; i < kCalls; ++i) {
    callers.emplace_back([&, i] {
      const auto start = std::chrono::steady_clock::now();
      during[i] = client
                      .Reserve(ReserveReq("acme", absl::StrCat("during-", i),
                                          "body", "a"))
                      .status;
      seconds[i] = std::chrono::duration<double>(
                       std::chrono::steady_clock::now() - start)
                       .count();
    });
  }
  for (std::thread& t : callers) t.join();
  ASSERT_TRUE(db.Plug().ok());
  for (int i = 0; i < kCalls; ++i) {
    // TestClient's deadline is 30 s: DEADLINE_EXCEEDED means it hung.
    EXPECT_EQ(during[i].error_code(), grpc::StatusCode::UNAVAILABLE)
        << i << ": " << during[i].error_message();
    EXPECT_LT(seconds[i], 25) << i;
    std::cout << "call " << i << " answered " << during[i].error_code()
              << " after " << seconds[i] << " s: " << during[i].error_message()
              << "\n";
  }

  Result<idemkey::v1::ReserveResponse> after;
  for (int i = 0; i < 60; ++i) {
    after = client.Reserve(ReserveReq("acme", "after", "body", "a"));
    if (after.status.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  EXPECT_TRUE(after.status.ok()) << after.status.error_message();
  auto found = client.Lookup("acme", "before");
  ASSERT_TRUE(found.status.ok()) << found.status.error_message();
  EXPECT_EQ(found.reply.record().response().SerializeAsString(),
            SampleResponse("before").SerializeAsString());
  ASSERT_TRUE(server.Stop());
}

// Three replicas behind one client (round_robin over their addresses); each
// is stopped (SIGTERM, drained) and started again in turn while 16 threads
// Reserve and Complete: not one call may fail, and every acknowledged write
// is there at the end.
TEST(PostgresReplicasTest, RollingRestartUnderLoadFailsNoCall) {
  SKIP_UNLESS_POSTGRES();
  constexpr int kReplicas = 3;
  constexpr int kWriters = 16;
  TempDir dir;
  std::vector<std::unique_ptr<IdemkeydProcess>> replicas;
  std::vector<std::string> addresses;
  for (int i = 0; i < kReplicas; ++i) {
    replicas.push_back(std::make_unique<IdemkeydProcess>(
        dir.path() + "/r" + std::to_string(i),
        std::vector<std::string>{"--drain_timeout=5s"},
        /*database_of=*/dir.path() + "/db"));
    ASSERT_TRUE(replicas.back()->Start());
    addresses.push_back(absl::StrCat("127.0.0.1:", replicas.back()->port()));
  }
  client::ClientOptions options;
  options.address = "ipv4:" + absl::StrJoin(addresses, ",");
  options.call_timeout = absl::Seconds(5);
  std::shared_ptr<client::Client> client = client::Client::Create(options);

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::string> failures;
  std::map<std::string, uint64_t> completed;  // key -> token
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; !stop.load(); ++i) {
        const std::string key = absl::StrCat("w", w, "-", i);
        absl::StatusOr<idemkey::v1::ReserveResponse> r =
            client->Reserve(ReserveReq("acme", key, key, "attempt"));
        absl::Status s = r.status();
        if (s.ok()) {
          idemkey::v1::CompleteRequest c;
          c.set_tenant("acme");
          c.set_key(key);
          c.set_fencing_token(r->fencing_token());
          *c.mutable_response() = SampleResponse(key);
          s = client->Complete(c).status();
        }
        std::lock_guard<std::mutex> lock(mu);
        if (!s.ok()) {
          failures.push_back(absl::StrCat(key, ": ", s.ToString()));
        } else {
          completed[key] = r->fencing_token();
        }
      }
    });
  }
  auto acknowledged = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return completed.size();
  };
  for (auto& replica : replicas) {
    const size_t before = acknowledged();
    while (acknowledged() < before + 200) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_TRUE(replica->Stop());
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    ASSERT_TRUE(replica->Start());  // on its port again
  }
  const size_t before = acknowledged();
  while (acknowledged() < before + 200) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stop = true;
  for (auto& t : writers) t.join();

  EXPECT_TRUE(failures.empty())
      << failures.size() << " calls failed, the first: " << failures.front();
  TestClient check(replicas[0]->NewChannel());
  for (const auto& [key, token] : completed) {
    auto l = check.Lookup("acme", key);
    ASSERT_TRUE(l.status.ok()) << key << ": " << l.status.error_message();
    ASSERT_EQ(l.reply.record().state(), idemkey::v1::STATE_COMPLETED) << key;
    ASSERT_EQ(l.reply.record().fencing_token(), token) << key;
  }
  std::cout << "rolling restart of " << kReplicas
            << " replicas: " << completed.size() << " acknowledged pairs, "
            << failures.size() << " failed calls\n";
  client.reset();
  for (auto& replica : replicas) EXPECT_TRUE(replica->Stop());
}

TEST(PostgresStartupTest, ClustersFileNeedsTwoClustersOrMore) {
  TempDir dir;
  const std::string file = dir.path() + "/clusters";
  std::ofstream(file) << "# one cluster only\nsolo host=127.0.0.1 port=1\n";
  CommandResult r = RunIdemkeyd({"--listen=127.0.0.1:0", "--backend=postgres",
                                 "--postgres_clusters_file=" + file});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("names 1 cluster(s); it is for two or more"),
            std::string::npos)
      << r.output;
  std::ofstream(file) << "east\nwest host=127.0.0.1 port=1\n";
  r = RunIdemkeyd({"--listen=127.0.0.1:0", "--backend=postgres",
                   "--postgres_clusters_file=" + file});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("line 1: expected \"NAME DSN\""), std::string::npos)
      << r.output;
}

// Two clusters: "east", a database on the run's server (it also keeps the
// placement), and "west", a PostgreSQL server of the test's own.
class PostgresPlacementTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIP_UNLESS_POSTGRES();
    west_server_ = std::make_unique<ExtraPostgresServer>(dir_.path());
    ASSERT_TRUE(west_server_->error().empty()) << west_server_->error();
    ASSERT_TRUE(ExecSql(west_server_->dsn(), "CREATE DATABASE idemkey").ok());
    west_ = west_server_->dsn() + " dbname=idemkey";
    absl::StatusOr<std::string> east = TestDatabaseDsn(dir_.path() + "/east");
    ASSERT_TRUE(east.ok()) << east.status();
    east_ = *east;
    WriteClusters({{"east", east_}, {"west", west_}});
  }

  void WriteClusters(
      const std::vector<std::pair<std::string, std::string>>& clusters) {
    std::ofstream out(clusters_file());
    out << "# name dsn\n";
    for (const auto& [name, dsn] : clusters) out << name << " " << dsn << "\n";
  }
  std::string clusters_file() const { return dir_.path() + "/clusters"; }

  std::unique_ptr<IdemkeydProcess> Replica(int i) {
    return std::make_unique<IdemkeydProcess>(
        absl::StrCat(dir_.path(), "/replica", i),
        std::vector<std::string>{
            "--backend=postgres",
            "--postgres_clusters_file=" + clusters_file()});
  }

  // The tenants the database `dsn` holds, by name.
  static std::vector<std::string> TenantsOf(const std::string& dsn) {
    absl::StatusOr<std::vector<std::string>> names =
        QuerySql(dsn, "SELECT name FROM idemkey_tenants ORDER BY name");
    EXPECT_TRUE(names.ok()) << names.status();
    return names.ok() ? *names : std::vector<std::string>{};
  }

  TempDir dir_;
  std::unique_ptr<ExtraPostgresServer> west_server_;
  std::string east_, west_;
};

TEST_F(PostgresPlacementTest, NewTenantsGoToTheClusterWithFewerAndStayThere) {
  std::unique_ptr<IdemkeydProcess> server = Replica(0);
  ASSERT_TRUE(server->Start());
  std::map<std::string, uint64_t> tokens;
  {
    TestClient client(server->NewChannel());
    for (const std::string tenant : {"t0", "t1", "t2", "t3"}) {
      auto r = client.Reserve(ReserveReq(tenant, "k", "body", "a"));
      ASSERT_TRUE(r.status.ok()) << tenant << ": " << r.status.error_message();
      tokens[tenant] = r.reply.fencing_token();
    }
  }
  // Each new tenant to the cluster with fewer tenants, east first on a tie.
  EXPECT_EQ(TenantsOf(east_), (std::vector<std::string>{"t0", "t2"}));
  EXPECT_EQ(TenantsOf(west_), (std::vector<std::string>{"t1", "t3"}));
  // The i-th cluster hands out tokens i mod 64: none is handed out twice.
  EXPECT_EQ(tokens["t0"] % 64, 0u);
  EXPECT_EQ(tokens["t1"] % 64, 1u);
  std::set<uint64_t> distinct;
  for (const auto& [tenant, token] : tokens) distinct.insert(token);
  EXPECT_EQ(distinct.size(), tokens.size());

  // After a restart every tenant is found where it was, and stays there.
  ASSERT_TRUE(server->Stop());
  ASSERT_TRUE(server->Start());
  auto client_owner = std::make_unique<TestClient>(server->NewChannel());
  TestClient& client = *client_owner;
  auto again = client.Reserve(ReserveReq("t1", "k", "body", "a"));
  ASSERT_TRUE(again.status.ok()) << again.status.error_message();
  EXPECT_EQ(again.reply.fencing_token(), tokens["t1"]);
  auto other = client.Reserve(ReserveReq("t1", "k2", "body", "a"));
  ASSERT_TRUE(other.status.ok()) << other.status.error_message();
  EXPECT_EQ(other.reply.fencing_token() % 64, 1u);
  EXPECT_GT(other.reply.fencing_token(), tokens["t1"]);
  EXPECT_EQ(TenantsOf(west_), (std::vector<std::string>{"t1", "t3"}));
  auto listed = client.ListTenants();
  ASSERT_TRUE(listed.status.ok()) << listed.status.error_message();
  EXPECT_EQ(listed.reply.tenants_size(), 4);

  // A dropped tenant leaves its cluster and the placement; made again, it
  // goes where there are fewer now (east: t0, t2; west: t3).
  ASSERT_TRUE(client.DropTenant("t1").status.ok());
  EXPECT_EQ(TenantsOf(west_), (std::vector<std::string>{"t3"}));
  ASSERT_TRUE(client.Reserve(ReserveReq("t1", "k", "body", "a")).status.ok());
  EXPECT_EQ(TenantsOf(west_), (std::vector<std::string>{"t1", "t3"}));
  client_owner.reset();  // an idle connection would slow the stop down
  ASSERT_TRUE(server->Stop());

  // A placement naming a cluster the file no longer has stops the start.
  WriteClusters({{"east", east_}, {"north", west_}});
  CommandResult r =
      RunIdemkeyd({"--listen=127.0.0.1:0", "--backend=postgres",
                   "--postgres_clusters_file=" + clusters_file()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("is placed on cluster \"west\", which is not "
                          "configured"),
            std::string::npos)
      << r.output;
  // Nor may the clusters change places in the file: their tokens depend on
  // it.
  WriteClusters({{"west", west_}, {"east", east_}});
  r = RunIdemkeyd({"--listen=127.0.0.1:0", "--backend=postgres",
                   "--postgres_clusters_file=" + clusters_file()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("cluster west was cluster number 2 of the file"),
            std::string::npos)
      << r.output;
}

// Two replicas creating the same new tenants at once place each once: every
// tenant is on exactly one cluster, and each key has one OWNER.
TEST_F(PostgresPlacementTest, ReplicasCreatingOneTenantTogetherPlaceItOnce) {
  std::vector<std::unique_ptr<IdemkeydProcess>> replicas;
  for (int i = 0; i < 2; ++i) {
    replicas.push_back(Replica(i));
    ASSERT_TRUE(replicas.back()->Start());
  }
  constexpr int kTenants = 12;
  std::vector<std::unique_ptr<TestClient>> clients;
  for (auto& r : replicas) {
    clients.push_back(std::make_unique<TestClient>(r->NewChannel()));
  }
  std::atomic<int> owners{0}, failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kTenants; ++t) {
    for (int side = 0; side < 2; ++side) {
      threads.emplace_back([&, t, side] {
        auto r = clients[side]->Reserve(ReserveReq(
            absl::StrCat("new-", t), "k", "body", absl::StrCat("a", side)));
        if (!r.status.ok()) {
          ++failures;
        } else if (r.reply.outcome() == idemkey::v1::OUTCOME_OWNER) {
          ++owners;
        }
      });
    }
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(owners, kTenants);
  std::vector<std::string> east = TenantsOf(east_), west = TenantsOf(west_);
  EXPECT_EQ(east.size() + west.size(), static_cast<size_t>(kTenants));
  std::vector<std::string> both;
  std::set_intersection(east.begin(), east.end(), west.begin(), west.end(),
                        std::back_inserter(both));
  EXPECT_TRUE(both.empty()) << "on both clusters: " << absl::StrJoin(both, ",");
  EXPECT_FALSE(east.empty());
  EXPECT_FALSE(west.empty());
  clients.clear();  // idle connections would slow the stops down
  for (auto& r : replicas) EXPECT_TRUE(r->Stop());
}

}  // namespace
}  // namespace idemkey::testing
