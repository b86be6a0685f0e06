// The state machine with an injected clock, run against every backend: the
// rules are the KeyStore's, so they must hold whatever stores the bytes.
// Memory and RocksDB run in the unit run; PostgreSQL (a database per test on
// the run's real server) in its pg.* copy, which CTest gives the server's
// DSN (IDEMKEY_TEST_POSTGRES_DSN_FILE, tests/support/test_postgres.h).

#include "server/store/key_store.h"

#include <atomic>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "server/store/memory_backend.h"
#include "server/store/postgres/postgres_backend.h"
#include "server/store/rocksdb/rocksdb_backend.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_postgres.h"

namespace idemkey::store {
namespace {

constexpr int64_t kStart = 1'700'000'000'000;
const std::string kFp(32, 'f');
const std::string kOtherFp(32, 'g');

enum class BackendKind { kMemory, kRocksDb, kPostgres };

class KeyStoreTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    if (GetParam() == BackendKind::kMemory) {
      backend_ = std::make_unique<MemoryBackend>(1000, &clock_);
    } else if (GetParam() == BackendKind::kPostgres) {
      if (!idemkey::testing::UsingPostgres()) {
        GTEST_SKIP() << "runs as pg.*, with the run's PostgreSQL server";
      }
      absl::StatusOr<std::string> dsn =
          idemkey::testing::TestDatabaseDsn(dir_.path());
      ASSERT_TRUE(dsn.ok()) << dsn.status();
      PostgresOptions options;
      options.dsn = *dsn;
      options.clock = &clock_;
      options.sweep_interval = absl::ZeroDuration();
      auto opened = PostgresBackend::Open(options);
      ASSERT_TRUE(opened.ok()) << opened.status();
      backend_ = std::move(*opened);
    } else {
      RocksDbOptions options;
      options.path = dir_.path() + "/db";
      options.clock = &clock_;
      options.sync = false;  // a unit test needs no fsync
      auto opened = RocksDbBackend::Open(options);
      ASSERT_TRUE(opened.ok()) << opened.status();
      backend_ = std::move(*opened);
    }
    KeyStoreOptions options;
    options.clock = &clock_;
    store_ = std::make_unique<KeyStore>(backend_.get(), options);
  }

  ReserveResult MustReserve(const std::string& key, const std::string& attempt,
                            const std::string& fp = kFp, int64_t lease_ms = 0) {
    absl::StatusOr<ReserveResult> r = store_->Reserve({.tenant = "acme",
                                                       .key = key,
                                                       .fingerprint = fp,
                                                       .attempt_id = attempt,
                                                       .lease_ms = lease_ms});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *std::move(r) : ReserveResult{};
  }

  static idemkey::v1::StoredResponse Response(const std::string& body) {
    idemkey::v1::StoredResponse r;
    r.set_status_code(200);
    r.set_body(body);
    return r;
  }

  idemkey::testing::TempDir dir_;
  ManualClock clock_{kStart};
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<KeyStore> store_;
};

TEST_P(KeyStoreTest, NewKeyIsOwnedWithDefaultLeaseAndTtl) {
  ReserveResult r = MustReserve("k", "a1");
  EXPECT_EQ(r.outcome, ReserveOutcome::kOwner);
  EXPECT_EQ(r.lease_expires_ms, kStart + 30'000);
  EXPECT_EQ(r.expires_ms, kStart + 86'400'000);
  absl::StatusOr<Record> rec = store_->Lookup("acme", "k");
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->state, RecordState::kInProgress);
  EXPECT_EQ(rec->created_ms, kStart);
}

TEST_P(KeyStoreTest, LeaseLapsesExactlyAtItsExpiry) {
  ReserveResult owner = MustReserve("k", "a1");
  clock_.Advance(absl::Milliseconds(29'999));
  EXPECT_EQ(MustReserve("k", "a2").outcome, ReserveOutcome::kInProgress);
  clock_.Advance(absl::Milliseconds(1));  // now == lease expiry: lapsed
  ReserveResult takeover = MustReserve("k", "a2");
  EXPECT_EQ(takeover.outcome, ReserveOutcome::kOwner);
  EXPECT_GT(takeover.fencing_token, owner.fencing_token);
  EXPECT_EQ(store_->Complete("acme", "k", owner.fencing_token, Response("x"))
                .status()
                .code(),
            absl::StatusCode::kAborted);
}

TEST_P(KeyStoreTest, HeartbeatAtTheBoundaryKeepsTheLease) {
  ReserveResult owner = MustReserve("k", "a1");
  clock_.Advance(absl::Milliseconds(29'999));
  absl::StatusOr<int64_t> lease =
      store_->Heartbeat("acme", "k", owner.fencing_token, 0);
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_EQ(*lease, kStart + 29'999 + 30'000);
  clock_.Advance(absl::Seconds(29));
  EXPECT_EQ(MustReserve("k", "a2").outcome, ReserveOutcome::kInProgress);
  // One millisecond late is too late: the lease is gone even untaken.
  clock_.Advance(absl::Seconds(1) + absl::Milliseconds(1));
  EXPECT_EQ(
      store_->Heartbeat("acme", "k", owner.fencing_token, 0).status().code(),
      absl::StatusCode::kAborted);
}

TEST_P(KeyStoreTest, HeartbeatPastRetentionExtendsTheRecordToo) {
  absl::StatusOr<ReserveResult> r = store_->Reserve({.tenant = "acme",
                                                     .key = "k",
                                                     .fingerprint = kFp,
                                                     .attempt_id = "a1",
                                                     .lease_ms = 30'000,
                                                     .ttl_ms = 60'000});
  ASSERT_TRUE(r.ok());
  for (int i = 0; i < 4; ++i) {
    clock_.Advance(absl::Seconds(25));
    ASSERT_TRUE(store_->Heartbeat("acme", "k", r->fencing_token, 0).ok());
  }
  // 100 s after Reserve, past its 60 s retention, the lease still holds it.
  absl::StatusOr<Record> rec = store_->Lookup("acme", "k");
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_GE(rec->expires_ms, rec->lease_expires_ms);
  EXPECT_TRUE(
      store_->Complete("acme", "k", r->fencing_token, Response("x")).ok());
}

TEST_P(KeyStoreTest, CompletedRecordExpiresAtOnceForReads) {
  ReserveResult owner = MustReserve("k", "a1");
  clock_.Advance(absl::Seconds(5));
  absl::StatusOr<int64_t> expires =
      store_->Complete("acme", "k", owner.fencing_token, Response("body"));
  ASSERT_TRUE(expires.ok());
  EXPECT_EQ(*expires, kStart + 5'000 + 86'400'000);
  clock_.Advance(absl::Hours(24) - absl::Milliseconds(1));
  EXPECT_EQ(MustReserve("k", "a2").outcome, ReserveOutcome::kCompleted);
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_EQ(store_->Lookup("acme", "k").status().code(),
            absl::StatusCode::kNotFound);
  idemkey::store::ListQuery q;
  q.tenant = "acme";
  EXPECT_TRUE(store_->ListRecords(q)->records.empty());
  // A new request may use the key again, even with another fingerprint.
  EXPECT_EQ(MustReserve("k", "a3", kOtherFp).outcome, ReserveOutcome::kOwner);
}

TEST_P(KeyStoreTest, ReplayReturnsTheStoredResponse) {
  ReserveResult owner = MustReserve("k", "a1");
  ASSERT_TRUE(
      store_->Complete("acme", "k", owner.fencing_token, Response("first"))
          .ok());
  ReserveResult replay = MustReserve("k", "a2");
  EXPECT_EQ(replay.outcome, ReserveOutcome::kCompleted);
  EXPECT_EQ(replay.response.body(), "first");
  EXPECT_EQ(MustReserve("k", "a3", kOtherFp).outcome,
            ReserveOutcome::kMismatch);
}

TEST_P(KeyStoreTest, StaleTokenOnACompletedRecordIsAbortedNotFinal) {
  ReserveResult stale = MustReserve("k", "a1");
  clock_.Advance(absl::Seconds(31));
  ReserveResult winner = MustReserve("k", "a2");
  ASSERT_TRUE(
      store_->Complete("acme", "k", winner.fencing_token, Response("w")).ok());
  EXPECT_EQ(store_->Complete("acme", "k", stale.fencing_token, Response("s"))
                .status()
                .code(),
            absl::StatusCode::kAborted);
  // The token that completed it learns the record is final instead.
  EXPECT_EQ(store_->Release("acme", "k", winner.fencing_token).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_P(KeyStoreTest, SameAttemptGetsSameTokenAndRenewsALapsedLease) {
  ReserveResult first = MustReserve("k", "a1");
  ReserveResult again = MustReserve("k", "a1");
  EXPECT_EQ(again.outcome, ReserveOutcome::kOwner);
  EXPECT_EQ(again.fencing_token, first.fencing_token);
  clock_.Advance(absl::Seconds(31));
  ReserveResult renewed = MustReserve("k", "a1");
  EXPECT_EQ(renewed.fencing_token, first.fencing_token);
  EXPECT_EQ(renewed.lease_expires_ms, kStart + 31'000 + 30'000);
}

TEST_P(KeyStoreTest, TokensNeverRepeatAcrossReleaseAndReReserve) {
  uint64_t last = 0;
  for (int i = 0; i < 20; ++i) {
    ReserveResult r = MustReserve("k", "a" + std::to_string(i));
    ASSERT_EQ(r.outcome, ReserveOutcome::kOwner);
    EXPECT_GT(r.fencing_token, last);
    ASSERT_TRUE(store_->Release("acme", "k", r.fencing_token).ok());
    // The released token is dead for every later reservation of the key.
    if (last != 0) {
      EXPECT_EQ(store_->Release("acme", "k", last).code(),
                absl::StatusCode::kNotFound);
    }
    last = r.fencing_token;
  }
}

// At most once: nothing of an oversized response is stored, and the key
// stays leased to the attempt that ran, so it can complete without the body.
TEST_P(KeyStoreTest, OversizedResponseIsRefusedAndTheLeaseStays) {
  ReserveResult owner = MustReserve("k", "a1");
  idemkey::v1::StoredResponse big = Response(std::string(4 << 20, 'x'));
  absl::StatusOr<int64_t> r =
      store_->Complete("acme", "k", owner.fencing_token, big);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  absl::StatusOr<Record> held = store_->Lookup("acme", "k");
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_EQ(held->state, RecordState::kInProgress);
  EXPECT_EQ(held->fencing_token, owner.fencing_token);
  idemkey::v1::StoredResponse omitted = Response("");
  omitted.set_body_omitted(true);
  ASSERT_TRUE(store_->Complete("acme", "k", owner.fencing_token, omitted).ok());
  EXPECT_TRUE(store_->Lookup("acme", "k")->response.body_omitted());
}

TEST_P(KeyStoreTest, AutoCreateCanBeTurnedOff) {
  KeyStoreOptions options;
  options.clock = &clock_;
  options.auto_create_tenants = false;
  KeyStore strict(backend_.get(), options);
  absl::StatusOr<ReserveResult> r = strict.Reserve(
      {.tenant = "new", .key = "k", .fingerprint = kFp, .attempt_id = "a"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(strict.CreateTenant("new").ok());
  EXPECT_TRUE(strict
                  .Reserve({.tenant = "new",
                            .key = "k",
                            .fingerprint = kFp,
                            .attempt_id = "a"})
                  .ok());
}

TEST_P(KeyStoreTest, ExactlyOneOwnerAmongConcurrentReserves) {
  constexpr int kThreads = 64;
  constexpr int kRounds = 100;
  for (int round = 0; round < kRounds; ++round) {
    const std::string key = "race-" + std::to_string(round);
    std::atomic<int> owners{0}, in_progress{0}, ready{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        ++ready;
        while (ready < kThreads) std::this_thread::yield();
        absl::StatusOr<ReserveResult> r =
            store_->Reserve({.tenant = "acme",
                             .key = key,
                             .fingerprint = kFp,
                             .attempt_id = "t" + std::to_string(t)});
        if (r.ok() && r->outcome == ReserveOutcome::kOwner) ++owners;
        if (r.ok() && r->outcome == ReserveOutcome::kInProgress) ++in_progress;
      });
    }
    for (auto& t : threads) t.join();
    ASSERT_EQ(owners, 1) << "round " << round;
    ASSERT_EQ(in_progress, kThreads - 1) << "round " << round;
  }
}

// Many keys at once (PostgresBackend then writes them in shared
// transactions): each key keeps its own decision, response and token.
TEST_P(KeyStoreTest, ConcurrentPairsOnManyKeysEachKeepTheirOwnRecord) {
  constexpr int kThreads = 16;
  constexpr int kKeysEach = 25;
  std::vector<std::vector<uint64_t>> tokens(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kKeysEach; ++i) {
        const std::string key =
            "many/" + std::to_string(t) + "/" + std::to_string(i);
        ReserveResult owner = MustReserve(key, "a");
        ASSERT_EQ(owner.outcome, ReserveOutcome::kOwner) << key;
        tokens[t].push_back(owner.fencing_token);
        ASSERT_TRUE(
            store_->Complete("acme", key, owner.fencing_token, Response(key))
                .ok())
            << key;
        ReserveResult replay = MustReserve(key, "b");
        EXPECT_EQ(replay.outcome, ReserveOutcome::kCompleted) << key;
        EXPECT_EQ(replay.response.body(), key);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<uint64_t> distinct;
  for (const auto& each : tokens) distinct.insert(each.begin(), each.end());
  EXPECT_EQ(distinct.size(), size_t{kThreads * kKeysEach});
}

INSTANTIATE_TEST_SUITE_P(Backends, KeyStoreTest,
                         ::testing::Values(BackendKind::kMemory,
                                           BackendKind::kRocksDb,
                                           BackendKind::kPostgres),
                         [](const auto& info) {
                           switch (info.param) {
                             case BackendKind::kMemory:
                               return "Memory";
                             case BackendKind::kRocksDb:
                               return "RocksDb";
                             case BackendKind::kPostgres:
                               break;
                           }
                           return "Postgres";
                         });

}  // namespace
}  // namespace idemkey::store
