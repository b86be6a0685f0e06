// RunStoreWork (store_call.h): a call first runs where it may not wait; when
// the store refuses for I/O it runs again, from the start, on the pool where
// it may; its answer goes out once. With a store whose "cold" keys are only
// on disk.
#include "server/service/store_call.h"

#include <atomic>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "server/api/key_calls.h"
#include "server/store/key_store.h"
#include "server/util/thread_pool.h"
#include "tests/support/cold_keys_backend.h"

namespace idemkey::service {
namespace {

class StoreCallTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(store_.CreateTenant("acme").ok()); }

  // Runs `work` as idemkeyd runs a call, and waits for its one answer.
  template <typename Work>
  absl::Status Run(Work work, std::thread::id* answered_on = nullptr) {
    absl::Notification answered;
    absl::Status result;
    std::atomic<int> answers{0};
    RunStoreWork(
        &pool_, std::move(work),
        [&](absl::Status s) {
          result = std::move(s);
          if (answered_on != nullptr) *answered_on = std::this_thread::get_id();
          ++answers;
          answered.Notify();
        },
        [&] {
          result = absl::UnavailableError("refused");
          ++answers;
          answered.Notify();
        });
    answered.WaitForNotification();
    EXPECT_EQ(answers, 1);
    return result;
  }

  idemkey::v1::LookupRequest LookupOf(const std::string& key) {
    idemkey::v1::LookupRequest req;
    req.set_tenant("acme");
    req.set_key(key);
    return req;
  }

  idemkey::testing::ColdKeysBackend backend_;
  store::KeyStore store_{&backend_, store::KeyStoreOptions{}};
  util::ThreadPool pool_{2};
};

TEST_F(StoreCallTest, ACallThatNeedsNoIoIsAnsweredOnTheCallingThread) {
  std::thread::id answered_on;
  int runs = 0;
  const idemkey::v1::LookupRequest req = LookupOf("warm");
  absl::Status s = Run(
      [&](const store::CallOptions& options) {
        ++runs;
        EXPECT_FALSE(options.may_wait_for_io);
        idemkey::v1::LookupResponse resp;
        return api::Lookup(store_, req, &resp, options);
      },
      &answered_on);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);  // no record, an answer
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(answered_on, std::this_thread::get_id());
}

TEST_F(StoreCallTest, ACallRefusedForIoRunsAgainOnThePoolWhereItMayWait) {
  std::thread::id answered_on;
  std::vector<bool> may_wait;
  const idemkey::v1::LookupRequest req = LookupOf("cold");
  absl::Status s = Run(
      [&](const store::CallOptions& options) {
        may_wait.push_back(options.may_wait_for_io);
        idemkey::v1::LookupResponse resp;
        return api::Lookup(store_, req, &resp, options);
      },
      &answered_on);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(may_wait, (std::vector<bool>{false, true}));
  EXPECT_NE(answered_on, std::this_thread::get_id());
  EXPECT_EQ(backend_.refusals(), 1);
}

TEST_F(StoreCallTest, APoolThatNoLongerTakesWorkRefusesTheCall) {
  pool_.Shutdown();
  int runs = 0;
  absl::Status s = Run([&](const store::CallOptions&) {
    ++runs;
    return store::WouldBlockError();
  });
  EXPECT_EQ(s.message(), "refused");
  EXPECT_EQ(runs, 1);
}

}  // namespace
}  // namespace idemkey::service
