// CallBatcher: each caller gets its own op's result, concurrent calls share
// batches, a lone call is not held back, limits hold, and a failed Batch RPC
// reaches every op it carried.

#include "client/cpp/client/src/call_batcher.h"

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace idemkey::client {
namespace {

using idemkey::v1::BatchOp;
using idemkey::v1::BatchRequest;
using idemkey::v1::BatchResponse;

BatchOp LookupOp(const std::string& key) {
  BatchOp op;
  op.mutable_lookup()->set_tenant("acme");
  op.mutable_lookup()->set_key(key);
  return op;
}

// A pretend idemkeyd: answers each lookup with its own key as the record
// key, after `delay`, and remembers the largest batch it saw.
struct EchoServer {
  std::chrono::microseconds delay{0};
  std::atomic<int> largest{0};
  std::atomic<int> ops{0};

  CallBatcher::SendFn Send() {
    return [this](const BatchRequest& req, BatchResponse* resp) {
      std::this_thread::sleep_for(delay);
      int seen = largest.load();
      while (req.ops_size() > seen &&
             !largest.compare_exchange_weak(seen, req.ops_size())) {
      }
      ops += req.ops_size();
      for (const BatchOp& op : req.ops()) {
        resp->add_results()->mutable_lookup()->mutable_record()->set_key(
            op.lookup().key());
      }
      return absl::OkStatus();
    };
  }
};

TEST(CallBatcherTest, ALoneCallGoesAtOnce) {
  EchoServer server;
  CallBatcher batcher(server.Send(), {});
  absl::StatusOr<idemkey::v1::BatchResult> r = batcher.Run(LookupOp("k1"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->lookup().record().key(), "k1");
  EXPECT_EQ(batcher.batches_sent(), 1u);
}

TEST(CallBatcherTest, ConcurrentCallsShareBatchesAndGetTheirOwnResults) {
  EchoServer server;
  server.delay = std::chrono::milliseconds(1);
  CallBatcher batcher(server.Send(), {.max_ops = 16, .max_in_flight = 2});
  constexpr int kThreads = 64;
  constexpr int kCallsEach = 40;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCallsEach; ++i) {
        const std::string key = absl::StrCat("t", t, "-", i);
        absl::StatusOr<idemkey::v1::BatchResult> r = batcher.Run(LookupOp(key));
        if (!r.ok() || r->lookup().record().key() != key) ++wrong;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(server.ops, kThreads * kCallsEach);
  EXPECT_LE(server.largest, 16);
  EXPECT_GT(server.largest, 1);
  // One RPC per call would be kThreads * kCallsEach.
  EXPECT_LT(batcher.batches_sent(), kThreads * kCallsEach / 4u);
}

TEST(CallBatcherTest, AnOpLargerThanTheByteLimitGoesAlone) {
  EchoServer server;
  server.delay = std::chrono::milliseconds(20);
  CallBatcher batcher(server.Send(),
                      {.max_ops = 100, .max_bytes = 64, .max_in_flight = 1});
  // The first call occupies the one slot; the next two queue behind it and
  // together exceed 64 bytes, so they go in separate batches.
  std::thread first([&] { EXPECT_TRUE(batcher.Run(LookupOp("a")).ok()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const std::string big(60, 'b');
  std::thread second([&] { EXPECT_TRUE(batcher.Run(LookupOp(big)).ok()); });
  std::thread third([&] { EXPECT_TRUE(batcher.Run(LookupOp(big)).ok()); });
  first.join();
  second.join();
  third.join();
  EXPECT_EQ(server.largest, 1);
  EXPECT_EQ(batcher.batches_sent(), 3u);
}

TEST(CallBatcherTest, AFailedBatchReachesEveryOpInIt) {
  std::atomic<int> sent{0};
  CallBatcher batcher(
      [&](const BatchRequest&, BatchResponse*) {
        ++sent;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        return absl::UnavailableError("idemkeyd is gone");
      },
      {.max_in_flight = 1});
  std::vector<std::thread> threads;
  std::atomic<int> unavailable{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      absl::Status s = batcher.Run(LookupOp("k")).status();
      if (s.code() == absl::StatusCode::kUnavailable &&
          s.message() == "idemkeyd is gone") {
        ++unavailable;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(unavailable, 8);
  EXPECT_LE(sent, 8);
}

TEST(CallBatcherTest, AShortAnswerIsAnErrorForEveryOp) {
  CallBatcher batcher(
      [](const BatchRequest&, BatchResponse*) { return absl::OkStatus(); }, {});
  absl::Status s = batcher.Run(LookupOp("k")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(s.message(), "idemkeyd answered a batch of 1 ops with 0 results");
}

}  // namespace
}  // namespace idemkey::client
