// Backups: `idemctl backup DIR` copies the live store, and an idemkeyd
// started on the copy has every record written before it.

#include <map>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "tests/support/command.h"
#include "tests/support/server_test.h"

namespace idemkey::testing {
namespace {

class BackupTest : public ServerTest {
 protected:
  CommandOutput Idemctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {IDEMCTL_PATH, "--addr",
                                     server().address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }
};

TEST_F(BackupTest, RestoredCopyHoldsEveryRecordWrittenBeforeIt) {
  if (UsingPostgres()) {
    GTEST_SKIP() << "a copy of RocksDB's files; PostgreSQL's backup is "
                    "PostgreSQL's (BackupTest.PostgresRefusesWithAdvice)";
  }
  std::map<std::string, uint64_t> written;
  for (int i = 0; i < 40; ++i) {
    const std::string tenant = i % 2 ? "acme" : "globex";
    const std::string key = "k" + std::to_string(i);
    auto r = client().Reserve(ReserveReq(tenant, key, "body", "a"));
    ASSERT_TRUE(r.status.ok());
    if (i % 4 != 0) {
      ASSERT_TRUE(client()
                      .Complete(tenant, key, r.reply.fencing_token(),
                                SampleResponse(key))
                      .status.ok());
    }
    written[tenant + "/" + key] = r.reply.fencing_token();
  }
  ASSERT_TRUE(client().CreateTenant("empty").status.ok());

  const std::string copy = dir().path() + "/backups/2026-11-22";  // new parent
  CommandOutput backup = Idemctl({"backup", copy});
  ASSERT_EQ(backup.exit_code, 0) << backup.err;
  EXPECT_NE(backup.out.find("backed up 3 tenants"), std::string::npos)
      << backup.out;
  EXPECT_EQ(Idemctl({"backup", copy}).exit_code, 5);  // ALREADY_EXISTS
  EXPECT_EQ(Idemctl({"backup", "relative/dir"}).exit_code, 2);
  // Not in the copy: written after it.
  client().Reserve(ReserveReq("acme", "after-backup", "body", "a"));
  StopServer();

  IdemkeydProcess restored(copy);
  ASSERT_TRUE(restored.Start());
  auto copy_client = std::make_unique<TestClient>(restored.NewChannel());
  TestClient& from_copy = *copy_client;
  for (const auto& [path, token] : written) {
    const std::string tenant = path.substr(0, path.find('/'));
    const std::string key = path.substr(path.find('/') + 1);
    auto l = from_copy.Lookup(tenant, key);
    ASSERT_TRUE(l.status.ok()) << path << ": " << l.status.error_message();
    EXPECT_EQ(l.reply.record().fencing_token(), token);
    if (l.reply.record().state() == idemkey::v1::STATE_COMPLETED) {
      EXPECT_EQ(l.reply.record().response().SerializeAsString(),
                SampleResponse(key).SerializeAsString());
    }
  }
  EXPECT_EQ(from_copy.Lookup("acme", "after-backup").status.error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(from_copy.ListTenants().reply.tenants_size(), 3);
  copy_client.reset();  // an idle connection would slow the stop down
  ASSERT_TRUE(restored.Stop());
}

TEST_F(BackupTest, PostgresRefusesWithAdvice) {
  if (!UsingPostgres()) GTEST_SKIP() << "RocksDB backs up (the test above)";
  CommandOutput backup = Idemctl({"backup", dir().path() + "/copy"});
  EXPECT_EQ(backup.exit_code, 5) << backup.err;  // FAILED_PRECONDITION
  EXPECT_NE(backup.err.find("pg_basebackup"), std::string::npos) << backup.err;
}

}  // namespace
}  // namespace idemkey::testing
