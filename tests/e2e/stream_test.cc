// KeyService/Stream against a real idemkeyd: ops answered once each, by id;
// one OWNER among concurrent Reserves over several streams; a kill -9 in the
// middle of a stream loses no acknowledged op, answers none twice, and a
// resent Reserve gets its token back. (The whole e2e suite also runs over
// the stream: support/test_client.h.)

#include <signal.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "idemkey/client/client.h"
#include "tests/support/server_test.h"

namespace idemkey::testing {
namespace {

using idemkey::v1::StreamRequest;
using idemkey::v1::StreamResponse;

class StreamTest : public ServerTest {
 protected:
  std::shared_ptr<client::Client> StreamingClient(int max_attempts = 4) {
    client::ClientOptions options;
    options.address = server().address();
    options.stream_calls = true;
    options.max_attempts = max_attempts;
    return client::Client::Create(options);
  }
};

StreamRequest ReserveOps(uint64_t first_id, int n, const std::string& prefix) {
  StreamRequest request;
  for (int i = 0; i < n; ++i) {
    const uint64_t id = first_id + i;
    auto* op = request.add_ops();
    op->set_id(id);
    *op->mutable_op()->mutable_reserve() = ReserveReq(
        "acme", absl::StrCat(prefix, id), "body", absl::StrCat("a", id));
  }
  return request;
}

TEST_F(StreamTest, AnswersEachOpOnceByItsIdThenEndsOk) {
  auto stub = idemkey::v1::KeyService::NewStub(server().NewChannel());
  grpc::ClientContext ctx;
  auto stream = stub->Stream(&ctx);
  ASSERT_TRUE(stream->Write(ReserveOps(1, 40, "once-")));
  ASSERT_TRUE(stream->Write(ReserveOps(41, 40, "once-")));
  // An op with no call is answered like a Batch op without one.
  StreamRequest empty;
  empty.add_ops()->set_id(81);
  ASSERT_TRUE(stream->Write(empty));
  ASSERT_TRUE(stream->WritesDone());
  std::map<uint64_t, idemkey::v1::BatchResult> answers;
  int duplicates = 0;
  StreamResponse response;
  while (stream->Read(&response)) {
    for (const auto& r : response.results()) {
      if (!answers.emplace(r.id(), r.result()).second) ++duplicates;
    }
  }
  const grpc::Status end = stream->Finish();
  EXPECT_TRUE(end.ok()) << end.error_message();
  EXPECT_EQ(duplicates, 0);
  ASSERT_EQ(answers.size(), 81u);
  for (uint64_t id = 1; id <= 80; ++id) {
    EXPECT_EQ(answers[id].code(), 0) << id << " " << answers[id].message();
    EXPECT_EQ(answers[id].reserve().outcome(), idemkey::v1::OUTCOME_OWNER);
  }
  EXPECT_EQ(answers[81].code(), grpc::StatusCode::INVALID_ARGUMENT);
  // Each answer is what the unary call says of the record now.
  auto again = client().Reserve(ReserveReq("acme", "once-7", "body", "a7"));
  ASSERT_TRUE(again.status.ok());
  EXPECT_EQ(again.reply.fencing_token(), answers[7].reserve().fencing_token());
}

// An op whose timeout passed before idemkeyd could start it is answered
// DEADLINE_EXCEEDED and not applied.
TEST_F(StreamTest, OpWhoseTimeoutPassedIsNotApplied) {
  auto stub = idemkey::v1::KeyService::NewStub(server().NewChannel());
  grpc::ClientContext ctx;
  auto stream = stub->Stream(&ctx);
  StreamRequest request = ReserveOps(1, 2, "late-");
  request.mutable_ops(1)->mutable_timeout()->set_nanos(1);  // over at once
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->WritesDone());
  std::map<uint64_t, idemkey::v1::BatchResult> answers;
  StreamResponse response;
  while (stream->Read(&response)) {
    for (const auto& r : response.results()) answers[r.id()] = r.result();
  }
  EXPECT_TRUE(stream->Finish().ok());
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[1].code(), grpc::StatusCode::OK);
  EXPECT_EQ(answers[2].code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(client().Lookup("acme", "late-1").status.ok());
  EXPECT_EQ(client().Lookup("acme", "late-2").status.error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(StreamTest, MessageOverTheOpLimitEndsTheStreamAndAppliesNothing) {
  auto stub = idemkey::v1::KeyService::NewStub(server().NewChannel());
  grpc::ClientContext ctx;
  auto stream = stub->Stream(&ctx);
  ASSERT_TRUE(stream->Write(ReserveOps(1, 1001, "over-")));
  stream->WritesDone();
  StreamResponse response;
  while (stream->Read(&response)) {
  }
  const grpc::Status end = stream->Finish();
  EXPECT_EQ(end.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(end.error_message().find("at most 1000"), std::string::npos)
      << end.error_message();
  EXPECT_EQ(client().Lookup("acme", "over-1").status.error_code(),
            grpc::StatusCode::NOT_FOUND);
}

// Exactly one OWNER among 64 threads Reserving one key with their own
// attempt ids, over 4 clients (4 streams), round after round.
TEST_F(StreamTest, ConcurrentReservesOverStreamsHaveOneOwner) {
  std::vector<std::shared_ptr<client::Client>> clients;
  for (int i = 0; i < 4; ++i) clients.push_back(StreamingClient());
  constexpr int kThreads = 64;
  for (int round = 0; round < 20; ++round) {
    std::atomic<int> owners{0};
    std::atomic<int> errors{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        auto r = clients[t % clients.size()]->Reserve(
            ReserveReq("acme", absl::StrCat("race-", round), "body",
                       absl::StrCat("r", round, "-t", t)));
        if (!r.ok()) {
          ++errors;
        } else if (r->outcome() == idemkey::v1::OUTCOME_OWNER) {
          ++owners;
        }
      });
    }
    for (auto& t : threads) t.join();
    ASSERT_EQ(errors.load(), 0) << "round " << round;
    ASSERT_EQ(owners.load(), 1) << "round " << round;
  }
}

TEST_F(StreamTest, ClientCallsOverTheStreamKeepTheirAnswers) {
  std::shared_ptr<client::Client> keys = StreamingClient();
  auto r = keys->Reserve(ReserveReq("acme", "lib-1", "body", "a1"));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->outcome(), idemkey::v1::OUTCOME_OWNER);
  idemkey::v1::CompleteRequest complete;
  complete.set_tenant("acme");
  complete.set_key("lib-1");
  complete.set_fencing_token(r->fencing_token());
  *complete.mutable_response() = SampleResponse("lib");
  ASSERT_TRUE(keys->Complete(complete).ok());
  auto replay = keys->Reserve(ReserveReq("acme", "lib-1", "body", "a2"));
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->outcome(), idemkey::v1::OUTCOME_COMPLETED);
  EXPECT_EQ(replay->response().SerializeAsString(),
            SampleResponse("lib").SerializeAsString());
  // A service error is the op's, not the stream's.
  EXPECT_TRUE(absl::IsNotFound(keys->Lookup("acme", "absent").status()));
  EXPECT_TRUE(keys->Lookup("acme", "lib-1").ok());
}

// The server dies (kill -9) with ops of a stream in flight. Every op is
// answered at most once; every acknowledged Reserve is there after the
// restart, and resending it (same attempt id) gives back its token; an op
// in doubt (unanswered) resent gives OWNER too, applied once.
TEST_F(StreamTest, KillMidStreamLosesNoAcknowledgedOpAndResendKeepsTheToken) {
  auto stub = idemkey::v1::KeyService::NewStub(server().NewChannel());
  grpc::ClientContext ctx;
  auto stream = stub->Stream(&ctx);
  // The writer goes on until the kill (at most kMaxOps).
  constexpr uint64_t kMaxOps = 50000;
  std::atomic<bool> killed{false};
  std::mutex mu;
  std::map<uint64_t, uint64_t> tokens;  // acknowledged: id -> token
  int duplicates = 0;
  int failed = 0;
  std::thread reader([&] {
    StreamResponse response;
    while (stream->Read(&response)) {
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& r : response.results()) {
        if (r.result().code() != 0) {
          ++failed;
          continue;
        }
        if (!tokens.emplace(r.id(), r.result().reserve().fencing_token())
                 .second) {
          ++duplicates;
        }
      }
    }
  });
  std::thread killer([&] {
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (tokens.size() >= 300) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    server().Kill9();
    killed = true;
  });
  // At most kWindow ops in flight, so the ops written stay few whatever
  // the scheduling, and some are in flight at the kill.
  constexpr uint64_t kWindow = 500;
  uint64_t written = 0;
  while (!killed && written < kMaxOps) {
    bool wait;
    {
      std::lock_guard<std::mutex> lock(mu);
      wait = written - tokens.size() - failed >= kWindow;
    }
    if (wait) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      continue;
    }
    if (!stream->Write(ReserveOps(written + 1, 10, "kill-"))) break;
    written += 10;
  }
  killer.join();
  ctx.TryCancel();
  reader.join();
  stream->Finish();
  EXPECT_EQ(duplicates, 0);
  EXPECT_EQ(failed, 0);
  ASSERT_GE(tokens.size(), 300u);
  ASSERT_LT(tokens.size(), written)
      << "every op was answered before the kill; the test proves nothing";

  StartAgain();
  for (uint64_t id = 1; id <= written; ++id) {
    auto r = client().Reserve(ReserveReq("acme", absl::StrCat("kill-", id),
                                         "body", absl::StrCat("a", id)));
    ASSERT_TRUE(r.status.ok()) << id << " " << r.status.error_message();
    ASSERT_EQ(r.reply.outcome(), idemkey::v1::OUTCOME_OWNER) << id;
    auto acked = tokens.find(id);
    if (acked != tokens.end()) {
      ASSERT_EQ(r.reply.fencing_token(), acked->second)
          << "acknowledged op " << id << " came back with another token";
    }
  }
}

// An idemkeyd restarted under a streaming client: the calls in flight fail
// UNAVAILABLE or are retried on a new stream, and calls work again after.
TEST_F(StreamTest, ClientOpensANewStreamAfterTheServerRestarts) {
  std::shared_ptr<client::Client> keys = StreamingClient();
  ASSERT_TRUE(keys->Reserve(ReserveReq("acme", "re-1", "body", "a1")).ok());
  CrashAndRestartServer();
  absl::Status last;
  for (int i = 0; i < 100; ++i) {
    auto r = keys->Lookup("acme", "re-1");
    last = r.status();
    if (r.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(last.ok()) << last;
}

// A stopping idemkeyd ends open streams once their ops are answered
// instead of waiting for its --drain_timeout (60 s here): the stop takes
// far less, and the client goes on over a new stream after the restart.
class StreamDrainTest : public StreamTest {
 protected:
  std::vector<std::string> ServerFlags() const override {
    return {"--drain_timeout=60s"};
  }
};

TEST_F(StreamDrainTest, StopEndsOpenStreamsWithoutWaitingForTheDrainTimeout) {
  std::shared_ptr<client::Client> keys = StreamingClient();
  ASSERT_TRUE(keys->Reserve(ReserveReq("acme", "drain-1", "body", "a1")).ok());
  const absl::Time stop_started = absl::Now();
  StopServer();
  const absl::Duration stop_took = absl::Now() - stop_started;
  EXPECT_LT(stop_took, absl::Seconds(30))
      << "the open stream held the stop until the drain timeout";
  StartAgain();
  absl::Status last;
  for (int i = 0; i < 100; ++i) {
    auto r = keys->Lookup("acme", "drain-1");
    last = r.status();
    if (r.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(last.ok()) << last;
}

// A stop that lands while streams are busy reading (one op per message, so
// a read ends every few microseconds) ends each stream between two reads
// and exits 0: no read is started on a stream that has finished. Several
// rounds, as the window is a few instructions wide.
TEST_F(StreamDrainTest, StopWhileStreamsKeepReadingExitsCleanly) {
  constexpr int kRounds = 6;
  constexpr int kStreams = 8;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    std::atomic<int64_t> answered{0};
    std::vector<std::thread> threads;
    for (int s = 0; s < kStreams; ++s) {
      threads.emplace_back([&, s] {
        auto stub = idemkey::v1::KeyService::NewStub(server().NewChannel());
        grpc::ClientContext ctx;
        auto stream = stub->Stream(&ctx);
        std::thread reader([&] {
          StreamResponse response;
          while (stream->Read(&response)) answered += response.results_size();
        });
        for (uint64_t id = 1;; ++id) {
          StreamRequest request;
          auto* op = request.add_ops();
          op->set_id(id);
          op->mutable_op()->mutable_lookup()->set_tenant("acme");
          op->mutable_op()->mutable_lookup()->set_key(
              absl::StrCat("absent-", s, "-", id));
          if (!stream->Write(request)) break;
        }
        ctx.TryCancel();  // the server ended the stream: stop reading
        reader.join();
        (void)stream->Finish();
      });
    }
    const absl::Time give_up = absl::Now() + absl::Seconds(30);
    while (answered.load() < 2000 && absl::Now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_GE(answered.load(), 2000) << "the streams were not answered";
    StopServer();
    for (auto& t : threads) t.join();
    StartAgain();
  }
}

}  // namespace
}  // namespace idemkey::testing
