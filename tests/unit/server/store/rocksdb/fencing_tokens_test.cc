#include "server/store/rocksdb/fencing_tokens.h"

#include <memory>
#include <set>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/store/call_options.h"
#include "server/store/clock.h"
#include "tests/unit/server/store/rocksdb/rocksdb_fixture.h"

namespace idemkey::store {
namespace {

constexpr int64_t kStartMs = 1'700'000'000'000;
constexpr uint64_t kBlock = 100;
const CallOptions kMayWait;
const CallOptions kNoWait{.may_wait_for_io = false};

class FencingTokensTest : public RocksDbFixture {
 protected:
  std::unique_ptr<FencingTokens> Load() {
    auto tokens = FencingTokens::Load(db(), extra_cf(), &clock_, kBlock);
    EXPECT_TRUE(tokens.ok()) << tokens.status();
    return tokens.ok() ? std::move(*tokens) : nullptr;
  }

  ManualClock clock_{kStartMs};
};

TEST_F(FencingTokensTest, StartAtTheClockInMicrosecondsAndGrow) {
  std::unique_ptr<FencingTokens> tokens = Load();
  uint64_t last = 0;
  for (int i = 0; i < 3 * static_cast<int>(kBlock); ++i) {
    const uint64_t t = *tokens->Next(kMayWait);
    EXPECT_GT(t, last);
    last = t;
  }
  EXPECT_GT(last, static_cast<uint64_t>(kStartMs) * 1000);
}

TEST_F(FencingTokensTest, EveryTokenHandedOutIsBelowTheStoredWatermark) {
  std::unique_ptr<FencingTokens> tokens = Load();
  for (int i = 0; i < 250; ++i) {
    const uint64_t t = *tokens->Next(kMayWait);
    EXPECT_LT(t, tokens->watermark());
  }
}

TEST_F(FencingTokensTest, AfterAReopenEveryTokenIsLarger) {
  // The clock does not move: only the watermark keeps the tokens apart.
  std::unique_ptr<FencingTokens> tokens = Load();
  uint64_t last = 0;
  for (int i = 0; i < 5; ++i) last = *tokens->Next(kMayWait);
  tokens.reset();
  Reopen();
  tokens = Load();
  EXPECT_GT(*tokens->Next(kMayWait), last);
}

TEST_F(FencingTokensTest, AStoreRestoredFromAnOldWatermarkFollowsTheClock) {
  // A watermark far below the tokens handed out since (a backup of long
  // ago): the clock, a second later, is above all of them.
  std::unique_ptr<FencingTokens> tokens = Load();
  uint64_t last = 0;
  for (int i = 0; i < 10 * static_cast<int>(kBlock); ++i) {
    last = *tokens->Next(kMayWait);
  }
  tokens.reset();
  ASSERT_TRUE(db()->Delete(rocksdb::WriteOptions(), extra_cf(),
                           "fencing_token_watermark")
                  .ok());
  clock_.Advance(absl::Seconds(1));
  tokens = Load();
  EXPECT_GT(*tokens->Next(kMayWait), last);
}

TEST_F(FencingTokensTest, ACallThatMayNotWaitIsRefusedOnlyForAWatermarkWrite) {
  std::unique_ptr<FencingTokens> tokens = Load();
  // The first token needs a watermark first: a synced write.
  EXPECT_TRUE(IsWouldBlock(tokens->Next(kNoWait).status()));
  const uint64_t first = *tokens->Next(kMayWait);
  // The rest of the block (kBlock tokens per watermark write) comes from
  // memory.
  std::set<uint64_t> seen = {first};
  for (uint64_t i = 1; i < kBlock; ++i) {
    absl::StatusOr<uint64_t> t = tokens->Next(kNoWait);
    ASSERT_TRUE(t.ok()) << "token " << i << ": " << t.status();
    EXPECT_TRUE(seen.insert(*t).second);
  }
  EXPECT_TRUE(IsWouldBlock(tokens->Next(kNoWait).status()));
  EXPECT_TRUE(tokens->Next(kMayWait).ok());
}

}  // namespace
}  // namespace idemkey::store
