// Many threads, one key: docs/semantics.md's "exactly one OWNER" under real
// concurrency, through gRPC to a real idemkeyd. Over PostgreSQL (the pg.*
// run) the threads are spread over three idemkeyd replicas of one database,
// so the one OWNER is decided across processes.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/server_test.h"

namespace idemkey::testing {
namespace {

constexpr int kThreads = 64;
constexpr int kPostgresReplicas = 3;

// Releases all waiting threads at once, as close together as threads allow.
class StartGate {
 public:
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return open_; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

struct RaceTally {
  int owners = 0;
  int in_progress = 0;
  int completed = 0;
  int other = 0;
  std::string first_error;  // of a failed call, for the assertion message
  uint64_t owner_token = 0;
};

class RaceTest : public ServerTest {
 protected:
  std::vector<std::string> ServerFlags() const override {
    return {"--store_threads=64"};
  }

  void SetUp() override {
    ServerTest::SetUp();
    if (UsingPostgres()) {
      for (int i = 1; i < kPostgresReplicas; ++i) {
        replicas_.push_back(std::make_unique<IdemkeydProcess>(
            dir().path() + "/replica-" + std::to_string(i), ServerFlags(),
            /*database_of=*/dir().path() + "/data"));
        ASSERT_TRUE(replicas_.back()->Start());
      }
    }
    // Connected before any race: a connection still being set up when the
    // race starts could fail fast with UNAVAILABLE on a loaded machine, which
    // says nothing about the store.
    for (int i = 0; i < kThreads; ++i) {
      const size_t replica = i % (replicas_.size() + 1);
      std::shared_ptr<grpc::Channel> channel =
          replica == 0 ? server().NewChannel()
                       : replicas_[replica - 1]->NewChannel();
      ASSERT_TRUE(channel->WaitForConnected(std::chrono::system_clock::now() +
                                            std::chrono::seconds(30)));
      clients_.push_back(std::make_unique<TestClient>(channel));
    }
  }

  void TearDown() override {
    clients_.clear();
    for (auto& r : replicas_) EXPECT_TRUE(r->Stop());
    ServerTest::TearDown();
  }

  // Every thread, on its own connection, Reserves `key` at once with its own
  // attempt id (named after `race`) and `lease_seconds`.
  RaceTally Race(const std::string& key, const std::string& race,
                 int64_t lease_seconds = 0) {
    RaceTally tally;
    std::mutex tally_mu;
    StartGate gate;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        auto req = ReserveReq("acme", key, "body",
                              race + "/attempt-" + std::to_string(t));
        if (lease_seconds > 0) req.mutable_lease()->set_seconds(lease_seconds);
        gate.Wait();
        auto r = clients_[t]->Reserve(req);
        std::lock_guard<std::mutex> lock(tally_mu);
        if (!r.status.ok()) {
          ++tally.other;
          tally.first_error = r.status.error_message();
          return;
        }
        switch (r.reply.outcome()) {
          case idemkey::v1::OUTCOME_OWNER:
            ++tally.owners;
            tally.owner_token = r.reply.fencing_token();
            break;
          case idemkey::v1::OUTCOME_IN_PROGRESS:
            ++tally.in_progress;
            break;
          case idemkey::v1::OUTCOME_COMPLETED:
            ++tally.completed;
            break;
          default:
            ++tally.other;
        }
      });
    }
    gate.Open();
    for (auto& t : threads) t.join();
    return tally;
  }

  // Over PostgreSQL: the servers besides server(), on its database.
  std::vector<std::unique_ptr<IdemkeydProcess>> replicas_;
  std::vector<std::unique_ptr<TestClient>> clients_;
};

TEST_F(RaceTest, ExactlyOneOwnerAmong64ConcurrentReserves) {
  constexpr int kRounds = 40;
  for (int round = 0; round < kRounds; ++round) {
    const std::string key = "race-" + std::to_string(round);
    RaceTally t = Race(key, key + "/first");
    ASSERT_EQ(t.owners, 1) << "round " << round << ": " << t.first_error;
    ASSERT_EQ(t.in_progress, kThreads - 1)
        << "round " << round << ": " << t.first_error;
    ASSERT_EQ(t.other, 0) << "round " << round << ": " << t.first_error;

    // The owner completes; a second race finds only the stored response.
    ASSERT_TRUE(client()
                    .Complete("acme", key, t.owner_token, SampleResponse(key))
                    .status.ok());
    RaceTally replay = Race(key, key + "/replay");
    ASSERT_EQ(replay.completed, kThreads)
        << "round " << round << ": " << replay.first_error;
  }
}

TEST_F(RaceTest, ExactlyOneTakesOverALapsedLease) {
  constexpr int kRounds = 3;
  for (int round = 0; round < kRounds; ++round) {
    const std::string key = "takeover-" + std::to_string(round);
    RaceTally first = Race(key, key + "/first", /*lease_seconds=*/1);
    ASSERT_EQ(first.owners, 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    RaceTally takeover = Race(key, key + "/second");
    ASSERT_EQ(takeover.owners, 1)
        << "round " << round << ": " << takeover.first_error;
    ASSERT_EQ(takeover.in_progress, kThreads - 1)
        << "round " << round << ": " << takeover.first_error;
    EXPECT_GT(takeover.owner_token, first.owner_token);
    EXPECT_EQ(
        client()
            .Complete("acme", key, first.owner_token, SampleResponse("late"))
            .status.error_code(),
        grpc::StatusCode::ABORTED);
  }
}

// Each change of hands draws a token greater than every earlier one of the
// key, whichever replica draws it, and no token is ever handed out twice.
TEST_F(RaceTest, ReleasedKeyRacedAgainGetsAGreaterToken) {
  constexpr int kRounds = 20;
  uint64_t previous = 0;
  for (int round = 0; round < kRounds; ++round) {
    RaceTally t = Race("handover", "handover/" + std::to_string(round));
    ASSERT_EQ(t.owners, 1) << "round " << round << ": " << t.first_error;
    ASSERT_EQ(t.other, 0) << "round " << round << ": " << t.first_error;
    ASSERT_GT(t.owner_token, previous) << "round " << round;
    previous = t.owner_token;
    ASSERT_TRUE(
        client().Release("acme", "handover", t.owner_token).status.ok());
  }
}

}  // namespace
}  // namespace idemkey::testing
