// --max_connection_age: idemkeyd asks an aged connection to go, and the
// client library's calls carry on over the next one without a failure.

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "idemkey/client/client.h"
#include "tests/support/server_test.h"

namespace idemkey::testing {
namespace {

class ConnectionAgeTest : public ServerTest {
 protected:
  std::vector<std::string> ServerFlags() const override {
    return {"--max_connection_age=1s", "--drain_timeout=1s"};
  }
};

TEST_F(ConnectionAgeTest, AnAgedConnectionIsAskedToGo) {
  std::shared_ptr<grpc::Channel> channel = server().NewChannel();
  ASSERT_TRUE(channel->WaitForConnected(
      absl::ToChronoTime(absl::Now() + absl::Seconds(10))));
  // The GOAWAY after about a second takes the channel out of READY; a
  // connection that never ages stays READY (loopback, nothing else closes
  // it).
  EXPECT_TRUE(channel->WaitForStateChange(
      GRPC_CHANNEL_READY, absl::ToChronoTime(absl::Now() + absl::Seconds(8))));
}

TEST_F(ConnectionAgeTest, ClientCallsCarryOnAcrossAges) {
  client::ClientOptions options;
  options.address = server().address();
  options.stream_calls = StreamTransport();
  std::shared_ptr<client::Client> keys = client::Client::Create(options);
  constexpr int kThreads = 4;
  std::atomic<int> pairs{0}, failures{0};
  std::string first_failure;
  std::mutex mu;
  const absl::Time until = absl::Now() + absl::Seconds(4);  // several ages
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; absl::Now() < until; ++i) {
        const std::string key =
            "age-" + std::to_string(t) + "-" + std::to_string(i);
        auto reserved = keys->Reserve(ReserveReq("acme", key, "body", key));
        absl::Status s = reserved.status();
        if (s.ok()) {
          idemkey::v1::CompleteRequest complete;
          complete.set_tenant("acme");
          complete.set_key(key);
          complete.set_fencing_token(reserved->fencing_token());
          complete.mutable_response()->set_status_code(200);
          s = keys->Complete(complete).status();
        }
        if (s.ok()) {
          ++pairs;
          continue;
        }
        std::lock_guard<std::mutex> lock(mu);
        if (failures++ == 0) first_failure = s.ToString();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures, 0) << first_failure;
  EXPECT_GT(pairs, 0);
}

}  // namespace
}  // namespace idemkey::testing
