// WalSyncer: a callback runs only after a sync that began after it was
// registered; concurrent writers share syncs; errors reach exactly the
// waiters the failed sync should have covered.

#include "server/store/rocksdb/wal_syncer.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace idemkey::store {
namespace {

// A pretend log: writes bump `written`; a sync copies it to `durable` after
// `sync_delay`, failing while `fail` is set.
struct FakeLog {
  std::atomic<uint64_t> written{0};
  std::atomic<uint64_t> durable{0};
  std::atomic<int> syncs{0};
  std::atomic<bool> fail{false};
  std::chrono::microseconds sync_delay{0};

  WalSyncer::Hooks Hooks() {
    return {
        .latest_sequence = [this] { return written.load(); },
        .sync =
            [this] {
              const uint64_t target = written.load();
              std::this_thread::sleep_for(sync_delay);
              ++syncs;
              if (fail) return absl::UnavailableError("disk on fire");
              durable = target;
              return absl::OkStatus();
            },
    };
  }
};

TEST(WalSyncerTest, CallbackRunsOnlyOnceItsWriteIsSynced) {
  FakeLog log;
  log.sync_delay = std::chrono::milliseconds(2);
  WalSyncer syncer(log.Hooks());
  for (int i = 0; i < 20; ++i) {
    const uint64_t mine = ++log.written;
    std::atomic<bool> done{false};
    syncer.WhenSynced([&](absl::Status s) {
      EXPECT_TRUE(s.ok()) << s;
      EXPECT_GE(log.durable.load(), mine);
      done = true;
    });
    while (!done) std::this_thread::yield();
  }
}

TEST(WalSyncerTest, NothingNewToSyncAnswersOnTheCallingThread) {
  FakeLog log;
  WalSyncer syncer(log.Hooks());
  ++log.written;
  std::atomic<bool> first{false};
  syncer.WhenSynced([&](absl::Status) { first = true; });
  while (!first) std::this_thread::yield();

  const int syncs_before = log.syncs;
  std::thread::id ran_on;
  syncer.WhenSynced([&](absl::Status s) {
    EXPECT_TRUE(s.ok());
    ran_on = std::this_thread::get_id();
  });
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  EXPECT_EQ(log.syncs, syncs_before);
}

TEST(WalSyncerTest, ConcurrentWritersShareSyncs) {
  FakeLog log;
  log.sync_delay = std::chrono::microseconds(500);
  WalSyncer syncer(log.Hooks());
  constexpr int kThreads = 32;
  constexpr int kWritesEach = 50;
  std::atomic<int> answered{0};
  std::atomic<int> early{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kWritesEach; ++i) {
        const uint64_t mine = ++log.written;
        std::atomic<bool> done{false};
        syncer.WhenSynced([&, mine](absl::Status s) {
          EXPECT_TRUE(s.ok());
          if (log.durable.load() < mine) ++early;
          ++answered;
          done = true;
        });
        while (!done) std::this_thread::yield();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(answered, kThreads * kWritesEach);
  EXPECT_EQ(early, 0);
  // One sync per write would be kThreads * kWritesEach.
  EXPECT_LT(log.syncs, kThreads * kWritesEach / 4);
  EXPECT_EQ(syncer.syncs(), static_cast<uint64_t>(log.syncs));
}

TEST(WalSyncerTest, AFailedSyncReachesItsWaitersAndTheNextOneSucceeds) {
  FakeLog log;
  WalSyncer syncer(log.Hooks());
  log.fail = true;
  ++log.written;
  std::atomic<bool> done{false};
  absl::Status failed;
  syncer.WhenSynced([&](absl::Status s) {
    failed = s;
    done = true;
  });
  while (!done) std::this_thread::yield();
  EXPECT_EQ(failed.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(failed.message(), "disk on fire");

  // Not marked synced: the same write waits for the next, good sync.
  log.fail = false;
  done = false;
  absl::Status retried = absl::UnknownError("not run");
  syncer.WhenSynced([&](absl::Status s) {
    retried = s;
    done = true;
  });
  while (!done) std::this_thread::yield();
  EXPECT_TRUE(retried.ok()) << retried;
  EXPECT_EQ(log.durable, 1u);
}

TEST(WalSyncerTest, StopAnswersEveryWaiterAndLaterCallsSyncInline) {
  FakeLog log;
  log.sync_delay = std::chrono::milliseconds(5);
  std::atomic<int> answered{0};
  {
    WalSyncer syncer(log.Hooks());
    for (int i = 0; i < 10; ++i) {
      ++log.written;
      syncer.WhenSynced([&](absl::Status s) {
        EXPECT_TRUE(s.ok());
        ++answered;
      });
    }
    syncer.Stop();
    EXPECT_EQ(answered, 10);
    EXPECT_EQ(log.durable, 10u);

    ++log.written;
    syncer.WhenSynced([&](absl::Status s) {
      EXPECT_TRUE(s.ok());
      ++answered;
    });
    EXPECT_EQ(answered, 11);
    EXPECT_EQ(log.durable, 11u);
  }
}

}  // namespace
}  // namespace idemkey::store
