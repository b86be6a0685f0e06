// What idemkeyd acknowledged is there after a clean restart and after kill -9.

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/server_test.h"

namespace idemkey::testing {
namespace {

using idemkey::v1::OUTCOME_OWNER;

class RestartTest : public ServerTest {};

TEST_F(RestartTest, RecordsAndTenantsSurviveCleanRestart) {
  std::map<std::string, uint64_t> in_progress;
  std::map<std::string, uint64_t> completed;
  for (int i = 0; i < 50; ++i) {
    const std::string tenant = i % 2 ? "acme" : "globex";
    const std::string key = "key-" + std::to_string(i);
    auto r = client().Reserve(ReserveReq(tenant, key, "body", "a"));
    ASSERT_EQ(r.reply.outcome(), OUTCOME_OWNER);
    if (i % 3 == 0) {
      in_progress[tenant + "/" + key] = r.reply.fencing_token();
    } else {
      ASSERT_TRUE(client()
                      .Complete(tenant, key, r.reply.fencing_token(),
                                SampleResponse(key))
                      .status.ok());
      completed[tenant + "/" + key] = r.reply.fencing_token();
    }
  }
  ASSERT_TRUE(client().CreateTenant("empty-tenant").status.ok());

  RestartServer();
  EXPECT_NE(server().Log().find("stopped cleanly"), std::string::npos);

  auto check = [&](const std::map<std::string, uint64_t>& records,
                   idemkey::v1::State state) {
    for (const auto& [path, token] : records) {
      const std::string tenant = path.substr(0, path.find('/'));
      const std::string key = path.substr(path.find('/') + 1);
      auto l = client().Lookup(tenant, key);
      ASSERT_TRUE(l.status.ok()) << path << ": " << l.status.error_message();
      EXPECT_EQ(l.reply.record().state(), state) << path;
      EXPECT_EQ(l.reply.record().fencing_token(), token) << path;
      if (state == idemkey::v1::STATE_COMPLETED) {
        EXPECT_EQ(l.reply.record().response().SerializeAsString(),
                  SampleResponse(key).SerializeAsString());
      }
    }
  };
  check(in_progress, idemkey::v1::STATE_IN_PROGRESS);
  check(completed, idemkey::v1::STATE_COMPLETED);
  auto tenants = client().ListTenants();
  ASSERT_EQ(tenants.reply.tenants_size(), 3);
  EXPECT_EQ(tenants.reply.tenants(1).name(), "empty-tenant");
}

// Runs with sync on (the default) and off: a process crash loses nothing
// either way, since the WAL is written before a call is acknowledged.
class CrashTest : public ServerTest,
                  public ::testing::WithParamInterface<bool> {
 protected:
  std::vector<std::string> ServerFlags() const override {
    return {GetParam() ? "--sync=true" : "--sync=false"};
  }
};

struct Acked {
  uint64_t token = 0;
  bool completed = false;
};

// Writes Reserve + Complete pairs from 16 threads, calls `stop_server` in the
// middle of them, and returns what the server acknowledged, by key.
std::map<std::string, Acked> WriteUntilStopped(
    const IdemkeydProcess& server, const std::function<void()>& stop_server) {
  constexpr int kWriters = 16;
  std::mutex mu;
  std::map<std::string, Acked> acked;
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      TestClient c(server.NewChannel());
      for (int i = 0; !stop; ++i) {
        const std::string key =
            "w" + std::to_string(w) + "-" + std::to_string(i);
        auto r = c.Reserve(ReserveReq("acme", key, "body", "a"));
        if (!r.status.ok()) return;  // the server is gone
        {
          std::lock_guard<std::mutex> lock(mu);
          acked[key].token = r.reply.fencing_token();
        }
        auto done = c.Complete("acme", key, r.reply.fencing_token(),
                               SampleResponse(key));
        if (!done.status.ok()) return;
        std::lock_guard<std::mutex> lock(mu);
        acked[key].completed = true;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  stop_server();
  stop = true;
  for (auto& t : writers) t.join();
  return acked;
}

// Every acknowledged write is in the restarted server, and fencing tokens
// keep growing past the ones handed out before.
void ExpectAllPresent(TestClient& client,
                      const std::map<std::string, Acked>& acked) {
  ASSERT_GT(acked.size(), 50u) << "too few writes to test anything";
  uint64_t max_token = 0;
  int completed = 0;
  for (const auto& [key, a] : acked) {
    max_token = std::max(max_token, a.token);
    auto l = client.Lookup("acme", key);
    ASSERT_TRUE(l.status.ok()) << key << ": " << l.status.error_message();
    EXPECT_EQ(l.reply.record().fencing_token(), a.token) << key;
    if (a.completed) {
      ++completed;
      ASSERT_EQ(l.reply.record().state(), idemkey::v1::STATE_COMPLETED) << key;
      EXPECT_EQ(l.reply.record().response().SerializeAsString(),
                SampleResponse(key).SerializeAsString())
          << key;
    }
  }
  EXPECT_GT(completed, 0);
  auto fresh = client.Reserve(ReserveReq("acme", "after-stop", "body", "a"));
  EXPECT_GT(fresh.reply.fencing_token(), max_token);
  std::cerr << "verified " << acked.size() << " acknowledged reserves ("
            << completed << " completed)\n";
}

TEST_P(CrashTest, AcknowledgedReservesAndCompletesSurviveKill9) {
  auto acked = WriteUntilStopped(server(), [&] { server().Kill9(); });
  CrashAndRestartServer();
  ExpectAllPresent(client(), acked);
}

TEST_F(RestartTest, SigtermUnderLoadDrainsCleanlyAndKeepsAcknowledgedWrites) {
  auto acked = WriteUntilStopped(server(), [&] {
    // Stop() asserts exit status 0: in-flight calls drained, DB closed.
    EXPECT_TRUE(server().Stop());
  });
  StartAgain();
  EXPECT_NE(server().Log().find("stopped cleanly"), std::string::npos);
  ExpectAllPresent(client(), acked);
}

INSTANTIATE_TEST_SUITE_P(SyncOnAndOff, CrashTest, ::testing::Bool(),
                         [](const auto& info) {
                           return info.param ? "SyncOn" : "SyncOff";
                         });

}  // namespace
}  // namespace idemkey::testing
