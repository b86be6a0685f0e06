// PostgresBackend's group commit (postgres_backend.h): Updates that wait
// together share one transaction, and a tenant's drop waits for the
// transactions that read the tenant. On the run's real PostgreSQL server, a
// database per test, as pg.GroupCommitTest.*/Postgres (tests/CMakeLists.txt).

#include "server/store/postgres/postgres_backend.h"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_postgres.h"

namespace idemkey::store {
namespace {

// One parameter, so that the test's name ends in /Postgres, which CTest
// runs with the server (the unit run skips it).
class GroupCommitTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    if (!idemkey::testing::UsingPostgres()) {
      GTEST_SKIP() << "runs as pg.*, with the run's PostgreSQL server";
    }
    absl::StatusOr<std::string> dsn =
        idemkey::testing::TestDatabaseDsn(dir_.path());
    ASSERT_TRUE(dsn.ok()) << dsn.status();
    dsn_ = *dsn;
    PostgresOptions options;
    options.dsn = dsn_;
    options.sweep_interval = absl::ZeroDuration();
    options.transactions_in_flight = 1;
    auto opened = PostgresBackend::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status();
    backend_ = *std::move(opened);
    for (const char* tenant : {"acme", "doomed"}) {
      ASSERT_TRUE(backend_->CreateTenant(tenant, {}).ok());
    }
  }

  // Puts a fresh record at (tenant, key); `before_write` runs inside the
  // Update, after the read.
  absl::Status Put(
      const std::string& tenant, const std::string& key,
      const std::function<void()>& before_write = [] {}) {
    return backend_->Update(
        tenant, key, {},
        [&](std::optional<Record>& r) -> absl::StatusOr<WriteAction> {
          before_write();
          r.emplace();
          r->fingerprint = "fp";
          r->expires_ms = 1;
          return WriteAction::kPut;
        });
  }

  // Starts an Update that holds the only transaction, inside its function,
  // until `release` is notified; returns once it does.
  std::thread HoldTheTransaction(absl::Notification& release) {
    auto running = std::make_shared<absl::Notification>();
    std::thread holder([this, running, &release] {
      EXPECT_TRUE(Put("acme", "first", [&] {
                    running->Notify();
                    release.WaitForNotification();
                  }).ok());
    });
    running->WaitForNotification();
    return holder;
  }

  // Waits until `n` Updates wait for a group (the one running holds them).
  void AwaitWaiting(size_t n) {
    while (backend_->UpdatesWaitingForTesting() < n) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  idemkey::testing::TempDir dir_;
  std::string dsn_;
  std::unique_ptr<PostgresBackend> backend_;
};

TEST_P(GroupCommitTest, UpdatesThatWaitTogetherCommitInOneTransaction) {
  constexpr int kWaiting = 8;
  absl::Notification all_waiting;
  std::thread first = HoldTheTransaction(all_waiting);
  std::vector<std::thread> others;
  for (int i = 0; i < kWaiting; ++i) {
    others.emplace_back(
        [&, i] { EXPECT_TRUE(Put("acme", "g/" + std::to_string(i)).ok()); });
  }
  AwaitWaiting(kWaiting);
  all_waiting.Notify();
  first.join();
  for (std::thread& t : others) t.join();

  // Rows one transaction wrote carry its id (xmin).
  absl::StatusOr<std::vector<std::string>> writers = idemkey::testing::QuerySql(
      dsn_,
      "SELECT count(DISTINCT xmin::text) || ' ' || count(*) FROM "
      "idemkey_records WHERE key LIKE 'g/%'");
  ASSERT_TRUE(writers.ok()) << writers.status();
  EXPECT_EQ(writers->at(0), "1 " + std::to_string(kWaiting));
}

// One group's reads and writes go through arrays (one statement each):
// every kind of outcome in one group, with keys and bodies that hold every
// byte, must come out as if each Update had run alone.
TEST_P(GroupCommitTest, EveryOutcomeInOneGroupIsItsOwn) {
  std::string all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes.push_back(static_cast<char>(b));
  const std::string odd_key("k\0,\"{}\\ \xff", 9);  // NUL, quotes, 0xff
  ASSERT_TRUE(Put("acme", "to-complete").ok());
  ASSERT_TRUE(Put("acme", "to-delete").ok());
  ASSERT_TRUE(Put("acme", "to-keep").ok());

  absl::Notification all_waiting;
  std::thread first = HoldTheTransaction(all_waiting);
  std::vector<std::thread> group;
  absl::Status fresh, binary, completed, deleted, kept, refused, unknown;
  auto put = [&](absl::Status* out, std::string key) {
    group.emplace_back([&, out, key] { *out = Put("acme", key); });
  };
  put(&fresh, "fresh");
  put(&binary, odd_key);
  group.emplace_back([&] {
    completed = backend_->Update(
        "acme", "to-complete", {},
        [&](std::optional<Record>& r) -> absl::StatusOr<WriteAction> {
          if (!r) return absl::InternalError("to-complete was not read");
          r->state = RecordState::kCompleted;
          r->response.set_status_code(201);
          r->response.set_body(all_bytes);
          return WriteAction::kPut;
        });
  });
  group.emplace_back([&] {
    deleted = backend_->Update(
        "acme", "to-delete", {},
        [](std::optional<Record>& r) -> absl::StatusOr<WriteAction> {
          if (!r) return absl::InternalError("to-delete was not read");
          return WriteAction::kDelete;
        });
  });
  group.emplace_back([&] {
    kept = backend_->Update(
        "acme", "to-keep", {},
        [](std::optional<Record>& r) -> absl::StatusOr<WriteAction> {
          if (!r) return absl::InternalError("to-keep was not read");
          r->fingerprint = "changed, but not written";
          return WriteAction::kNone;
        });
  });
  group.emplace_back([&] {
    refused = backend_->Update(
        "acme", "refused", {},
        [](std::optional<Record>&) -> absl::StatusOr<WriteAction> {
          return absl::FailedPreconditionError("refused by its function");
        });
  });
  group.emplace_back([&] { unknown = Put("nobody", "k"); });
  AwaitWaiting(group.size());
  all_waiting.Notify();
  first.join();
  for (std::thread& t : group) t.join();

  EXPECT_TRUE(fresh.ok()) << fresh;
  EXPECT_TRUE(binary.ok()) << binary;
  EXPECT_TRUE(completed.ok()) << completed;
  EXPECT_TRUE(deleted.ok()) << deleted;
  EXPECT_TRUE(kept.ok()) << kept;
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_TRUE(IsUnknownTenant(unknown)) << unknown;

  auto get = [&](const std::string& key) {
    absl::StatusOr<std::optional<Record>> r = backend_->Get("acme", key, {});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : std::nullopt;
  };
  ASSERT_TRUE(get("fresh").has_value());
  EXPECT_EQ(get("fresh")->fingerprint, "fp");
  ASSERT_TRUE(get(odd_key).has_value());
  EXPECT_EQ(get(odd_key)->key, odd_key);
  ASSERT_TRUE(get("to-complete").has_value());
  EXPECT_EQ(get("to-complete")->state, RecordState::kCompleted);
  EXPECT_EQ(get("to-complete")->response.status_code(), 201);
  EXPECT_EQ(get("to-complete")->response.body(), all_bytes);
  EXPECT_FALSE(get("to-delete").has_value());
  ASSERT_TRUE(get("to-keep").has_value());
  EXPECT_EQ(get("to-keep")->fingerprint, "fp");
  EXPECT_FALSE(get("refused").has_value());
  // An in-progress record keeps no response (NULL in its array).
  absl::StatusOr<std::vector<std::string>> nulls = idemkey::testing::QuerySql(
      dsn_,
      "SELECT count(*) FROM idemkey_records WHERE response IS NULL AND key "
      "IN ('fresh', 'to-keep')");
  ASSERT_TRUE(nulls.ok()) << nulls.status();
  EXPECT_EQ(nulls->at(0), "2");
}

TEST_P(GroupCommitTest, DropTenantWaitsForTheGroupThatReadTheTenant) {
  absl::Notification drop_waits;
  absl::Notification in_update;
  absl::Status put;
  // An Update of the doomed tenant, held after its read, before its write.
  std::thread writer([&] {
    put = Put("doomed", "k", [&] {
      in_update.Notify();
      drop_waits.WaitForNotification();
    });
  });
  in_update.WaitForNotification();
  absl::Status dropped;
  std::thread dropper([&] { dropped = backend_->DropTenant("doomed", {}); });
  // The drop's DELETE waits for the tenant row the group's read locked.
  bool waiting = false;
  for (int i = 0; i < 1000 && !waiting; ++i) {
    absl::StatusOr<std::vector<std::string>> rows = idemkey::testing::QuerySql(
        dsn_,
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
        "'Lock' AND query LIKE 'DELETE FROM idemkey_tenants%'");
    ASSERT_TRUE(rows.ok()) << rows.status();
    waiting = rows->at(0) == "1";
    if (!waiting) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  drop_waits.Notify();
  writer.join();
  dropper.join();

  EXPECT_TRUE(waiting) << "DropTenant did not wait for the group";
  // The acknowledged write happened before the drop, which then removed it.
  EXPECT_TRUE(put.ok()) << put;
  EXPECT_TRUE(dropped.ok()) << dropped;
  EXPECT_TRUE(IsUnknownTenant(backend_->Get("doomed", "k", {}).status()));
}

INSTANTIATE_TEST_SUITE_P(Backends, GroupCommitTest, ::testing::Values(0),
                         [](const auto&) { return "Postgres"; });

}  // namespace
}  // namespace idemkey::store
