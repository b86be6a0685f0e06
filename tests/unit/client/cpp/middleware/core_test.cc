// The framework-free middleware core over the in-process key service: the
// decisions of docs/semantics.md, "Middleware" without any network.

#include "idemkey/middleware/core.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "idemkey/middleware/prometheus_observer.h"
#include "idemkey/sync/mutex.h"
#include "idemkey/testing/in_process_key_service.h"

namespace idemkey::middleware {
namespace {

IncomingRequest Post(absl::string_view key, absl::string_view body = "{}") {
  return {.method = "POST",
          .route = "/v1/charges",
          .tenant = "acme",
          .key = key,
          .has_key = true,
          .body = body};
}

idemkey::v1::StoredResponse Response(int32_t status, const std::string& body) {
  idemkey::v1::StoredResponse r;
  r.set_status_code(status);
  r.set_body(body);
  return r;
}

class CoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<IdempotencyCore> NewCore(MiddlewareOptions options = {}) {
    return std::make_unique<IdempotencyCore>(keys_, std::move(options));
  }

  std::shared_ptr<idemkey::testing::InProcessKeyService> keys_ =
      std::make_shared<idemkey::testing::InProcessKeyService>();
};

TEST_F(CoreTest, FirstRequestRunsAndRetryReplays) {
  auto core = NewCore();
  Decision first = core->Begin(Post("k"));
  ASSERT_EQ(first.action, Action::kRun);
  ASSERT_TRUE(first.execution->Finish(Response(201, "created")).ok());
  Decision retry = core->Begin(Post("k"));
  ASSERT_EQ(retry.action, Action::kReplay);
  EXPECT_EQ(retry.replay.status_code(), 201);
  EXPECT_EQ(retry.replay.body(), "created");
}

TEST_F(CoreTest, BypassRules) {
  MiddlewareOptions options;
  options.excluded_routes = {"POST /v1/login"};
  auto core = NewCore(options);
  IncomingRequest get = Post("k");
  get.method = "GET";
  EXPECT_EQ(core->Begin(get).action, Action::kBypass);
  IncomingRequest login = Post("k");
  login.route = "/v1/login";
  EXPECT_EQ(core->Begin(login).action, Action::kBypass);
  IncomingRequest no_tenant = Post("k");
  no_tenant.tenant = "";
  EXPECT_EQ(core->Begin(no_tenant).action, Action::kBypass);
  IncomingRequest no_key = Post("");
  no_key.has_key = false;
  EXPECT_EQ(core->Begin(no_key).action, Action::kBypass);  // key optional
}

TEST_F(CoreTest, KeyRulesReject) {
  MiddlewareOptions options;
  options.require_key = true;
  auto core = NewCore(options);
  IncomingRequest no_key = Post("");
  no_key.has_key = false;
  Decision missing = core->Begin(no_key);
  ASSERT_EQ(missing.action, Action::kReject);
  EXPECT_EQ(missing.rejection.reason, RejectReason::kMissingKey);
  for (const std::string& bad :
       {std::string(""), std::string(257, 'k'), std::string("a b"),
        std::string("caf\xc3\xa9")}) {
    Decision d = core->Begin(Post(bad));
    ASSERT_EQ(d.action, Action::kReject) << bad;
    EXPECT_EQ(d.rejection.reason, RejectReason::kMalformedKey) << bad;
  }
}

TEST_F(CoreTest, OtherBodyIsMismatchAndConcurrentIsInProgress) {
  auto core = NewCore();
  Decision owner = core->Begin(Post("k", "a"));
  ASSERT_EQ(owner.action, Action::kRun);
  Decision concurrent = core->Begin(Post("k", "a"));
  ASSERT_EQ(concurrent.action, Action::kReject);
  EXPECT_EQ(concurrent.rejection.reason, RejectReason::kInProgress);
  EXPECT_GE(concurrent.rejection.retry_after_seconds, 29);
  Decision other = core->Begin(Post("k", "b"));
  ASSERT_EQ(other.action, Action::kReject);
  EXPECT_EQ(other.rejection.reason, RejectReason::kMismatch);
}

TEST_F(CoreTest, UnfinishedExecutionReleasesTheKey) {
  auto core = NewCore();
  {
    Decision d = core->Begin(Post("k"));
    ASSERT_EQ(d.action, Action::kRun);
    // The handler threw: the Decision goes out of scope unfinished.
  }
  EXPECT_EQ(core->Begin(Post("k")).action, Action::kRun);
}

TEST_F(CoreTest, NotFinalStatusIsReleased) {
  MiddlewareOptions options;
  options.not_final_statuses = {503};
  auto core = NewCore(options);
  Decision d = core->Begin(Post("k"));
  ASSERT_TRUE(d.execution->Finish(Response(503, "busy")).ok());
  EXPECT_EQ(core->Begin(Post("k")).action, Action::kRun);
}

TEST_F(CoreTest, UnreachableServiceFailsClosedOrOpen) {
  keys_->SetUnavailable(true);
  Decision closed = NewCore()->Begin(Post("k"));
  ASSERT_EQ(closed.action, Action::kReject);
  EXPECT_EQ(closed.rejection.reason, RejectReason::kUnavailable);
  MiddlewareOptions open;
  open.fail_open = true;
  EXPECT_EQ(NewCore(open)->Begin(Post("k")).action, Action::kBypass);
}

TEST_F(CoreTest, ReplayCacheServesWithoutTheService) {
  MiddlewareOptions options;
  options.replay_cache_entries = 2;
  auto core = NewCore(options);
  ASSERT_TRUE(
      core->Begin(Post("k")).execution->Finish(Response(200, "x")).ok());
  keys_->SetUnavailable(true);
  Decision cached = core->Begin(Post("k"));
  ASSERT_EQ(cached.action, Action::kReplay);
  EXPECT_EQ(cached.replay.body(), "x");
  // Another body is not served from the cache: the service must decide.
  EXPECT_EQ(core->Begin(Post("k", "other")).action, Action::kReject);
}

TEST_F(CoreTest, LapsedLeaseOfACrashedOwnerIsTakenOver) {
  auto core = NewCore();
  Decision crashed = core->Begin(Post("k"));
  const uint64_t dead_token = crashed.execution->fencing_token();
  keys_->AdvanceClock(absl::Seconds(31));
  Decision retry = core->Begin(Post("k"));
  ASSERT_EQ(retry.action, Action::kRun);
  EXPECT_GT(retry.execution->fencing_token(), dead_token);
  ASSERT_TRUE(retry.execution->Finish(Response(201, "second")).ok());
  EXPECT_EQ(crashed.execution->Finish(Response(201, "late")).code(),
            absl::StatusCode::kAborted);
}

// Many threads start at once and each runs `body(thread_index)`.
template <typename Body>
void RunTogether(int threads, Body body) {
  std::atomic<int> ready{0};
  std::vector<std::thread> running;
  for (int t = 0; t < threads; ++t) {
    running.emplace_back([&, t] {
      ++ready;
      while (ready < threads) std::this_thread::yield();
      body(t);
    });
  }
  for (std::thread& t : running) t.join();
}

TEST_F(CoreTest, ConcurrentRequestsOnOneKeyRunTheHandlerOnce) {
  constexpr int kThreads = 16;
  constexpr int kRounds = 20;
  auto core = NewCore();
  for (int round = 0; round < kRounds; ++round) {
    const std::string key = "race-" + std::to_string(round);
    std::atomic<int> decided{0}, runs{0}, in_progress{0};
    RunTogether(kThreads, [&](int) {
      Decision d = core->Begin(Post(key));
      ++decided;
      if (d.action == Action::kRun) {
        ++runs;
        // The handler is still running when every other request is answered.
        while (decided < kThreads) std::this_thread::yield();
        EXPECT_TRUE(d.execution->Finish(Response(201, key)).ok());
      } else if (d.action == Action::kReject &&
                 d.rejection.reason == RejectReason::kInProgress) {
        ++in_progress;
      }
    });
    ASSERT_EQ(runs, 1) << key;
    ASSERT_EQ(in_progress, kThreads - 1) << key;
    Decision retry = core->Begin(Post(key));
    ASSERT_EQ(retry.action, Action::kReplay) << key;
    EXPECT_EQ(retry.replay.body(), key);
  }
}

TEST_F(CoreTest, ConcurrentWaitingRetriesReplayTheOneRun) {
  constexpr int kThreads = 16;
  MiddlewareOptions options;
  options.wait_for_result = absl::Seconds(60);
  options.wait_poll_interval = absl::Milliseconds(1);
  options.replay_cache_entries = 4;
  auto core = NewCore(options);
  std::atomic<int> runs{0}, replays{0};
  RunTogether(kThreads, [&](int) {
    Decision d = core->Begin(Post("k"));
    if (d.action == Action::kRun) {
      ++runs;
      absl::SleepFor(absl::Milliseconds(20));  // the others start waiting
      EXPECT_TRUE(d.execution->Finish(Response(201, "the one run")).ok());
    } else if (d.action == Action::kReplay) {
      ++replays;
      EXPECT_EQ(d.replay.status_code(), 201);
      EXPECT_EQ(d.replay.body(), "the one run");
    }
  });
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(replays, kThreads - 1);
}

// The heartbeat thread renews every running handler's lease while service
// time passes well beyond one lease; the results then replay from a cache
// smaller than the number of keys, used by every thread at once.
// Advances the service's clock past `lease` in four steps of a third of
// it, and after each waits until the lease of every one of `keys` (tenant
// acme) was renewed from the new time: what heartbeats must do for
// handlers that outlive their lease.
::testing::AssertionResult LeasesRenewedPastTheirEnd(
    idemkey::testing::InProcessKeyService& service, absl::Duration lease,
    const std::vector<std::string>& keys) {
  for (int step = 0; step < 4; ++step) {
    service.AdvanceClock(lease / 3);
    const absl::Time renewed = service.Now() + lease;
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    for (const std::string& key : keys) {
      for (;;) {
        idemkey::v1::LookupRequest lookup;
        lookup.set_tenant("acme");
        lookup.set_key(key);
        absl::StatusOr<idemkey::v1::LookupResponse> r = service.Lookup(lookup);
        if (!r.ok()) return ::testing::AssertionFailure() << r.status();
        const auto& expiry = r->record().lease_expires_at();
        if (absl::FromUnixSeconds(expiry.seconds()) +
                absl::Nanoseconds(expiry.nanos()) >=
            renewed) {
          break;
        }
        if (absl::Now() > deadline) {
          return ::testing::AssertionFailure()
                 << key << "'s lease was not renewed in step " << step;
        }
        absl::SleepFor(absl::Milliseconds(1));
      }
    }
  }
  return ::testing::AssertionSuccess();
}

TEST_F(CoreTest, ConcurrentHandlersKeepTheirLeasesThroughHeartbeats) {
  constexpr int kThreads = 8;
  MiddlewareOptions options;
  options.heartbeat_interval = absl::Milliseconds(1);
  options.replay_cache_entries = kThreads / 2;
  auto core = NewCore(options);
  std::atomic<int> running{0};
  std::atomic<bool> lease_outlived{false};
  std::thread handlers([&] {
    RunTogether(kThreads, [&](int t) {
      const std::string key = "k" + std::to_string(t);
      Decision d = core->Begin(Post(key));
      ++running;
      ASSERT_EQ(d.action, Action::kRun) << key;
      while (!lease_outlived) std::this_thread::yield();
      // ABORTED here would mean the lease lapsed.
      ASSERT_TRUE(d.execution->Finish(Response(200, key)).ok()) << key;
      for (int i = 0; i < 50; ++i) {
        Decision replay = core->Begin(Post(key));
        ASSERT_EQ(replay.action, Action::kReplay) << key;
        EXPECT_EQ(replay.replay.body(), key);
      }
    });
  });
  while (running < kThreads) std::this_thread::yield();
  std::vector<std::string> keys;
  for (int t = 0; t < kThreads; ++t) keys.push_back("k" + std::to_string(t));
  const ::testing::AssertionResult outlived =
      LeasesRenewedPastTheirEnd(*keys_, core->options().lease, keys);
  lease_outlived = true;
  handlers.join();
  EXPECT_TRUE(outlived);
}

// "No answer" is any status that is not the service's verdict: a call
// cancelled by a draining idemkeyd, a lost connection, a timeout. Each is
// 503 (fail closed) or runs unprotected (fail open), never a 500.
TEST_F(CoreTest, EveryKindOfNoAnswerIsUnavailableOrFailOpen) {
  auto closed = NewCore();
  MiddlewareOptions open_options;
  open_options.fail_open = true;
  auto open = NewCore(open_options);
  for (absl::Status no_answer :
       {absl::CancelledError("Cancelled"),
        absl::UnavailableError("Socket closed"),
        absl::DeadlineExceededError("Deadline Exceeded"),
        absl::UnknownError("Stream removed"),
        absl::InternalError("Received RST_STREAM with error code 2"),
        absl::UnimplementedError("unknown method Reserve"),
        absl::DataLossError("corrupted record")}) {
    keys_->SetFailure(no_answer);
    Decision d = closed->Begin(Post("k"));
    ASSERT_EQ(d.action, Action::kReject) << no_answer;
    EXPECT_EQ(d.rejection.reason, RejectReason::kUnavailable) << no_answer;
    EXPECT_EQ(open->Begin(Post("k")).action, Action::kBypass) << no_answer;
  }
}

// The service's own messages are for the app's operators (the observer),
// never its clients.
TEST_F(CoreTest, TheServicesMessageReachesTheObserverNotTheClient) {
  MiddlewareOptions options;
  auto metrics = std::make_shared<PrometheusObserver>();
  struct Recorder : Observer {
    void OnEvent(const Event& e) override {
      if (!e.service_status.ok()) seen.push_back(e.service_status);
    }
    std::vector<absl::Status> seen;
  };
  auto recorder = std::make_shared<Recorder>();
  options.observer = recorder;
  auto core = NewCore(options);
  const std::string secret =
      "this token belongs to tenant \"globex\", not \"acme\"";
  keys_->SetFailure(absl::PermissionDeniedError(secret));
  Decision denied = core->Begin(Post("k"));
  ASSERT_EQ(denied.action, Action::kReject);
  EXPECT_EQ(denied.rejection.reason, RejectReason::kInternal);
  EXPECT_EQ(denied.rejection.detail.find("globex"), std::string::npos)
      << denied.rejection.detail;
  const std::string cap =
      "cannot create tenant \"acme\": the server holds its maximum of 3 "
      "tenants";
  keys_->SetFailure(absl::ResourceExhaustedError(cap));
  Decision full = core->Begin(Post("k"));
  ASSERT_EQ(full.action, Action::kReject);
  EXPECT_EQ(full.rejection.reason, RejectReason::kUnavailable);
  EXPECT_EQ(full.rejection.detail.find("maximum"), std::string::npos);
  ASSERT_EQ(recorder->seen.size(), 2u);
  EXPECT_EQ(recorder->seen[0].message(), secret);
  EXPECT_EQ(recorder->seen[1].message(), cap);
}

TEST_F(CoreTest, RequireTenantRejectsARequestWithoutOne) {
  MiddlewareOptions options;
  options.require_tenant = true;
  auto core = NewCore(options);
  IncomingRequest anonymous = Post("k");
  anonymous.tenant = "";
  Decision d = core->Begin(anonymous);
  ASSERT_EQ(d.action, Action::kReject);
  EXPECT_EQ(d.rejection.reason, RejectReason::kMissingTenant);
  // Methods that are not covered still bypass, tenant or not.
  anonymous.method = "GET";
  EXPECT_EQ(core->Begin(anonymous).action, Action::kBypass);
}

TEST_F(CoreTest, TheTargetIsFingerprintedNotOnlyTheRoute) {
  auto core = NewCore();
  IncomingRequest small = Post("k");
  small.target = "/v1/charges?amount=1";
  Decision first = core->Begin(small);
  ASSERT_EQ(first.action, Action::kRun);
  ASSERT_TRUE(first.execution->Finish(Response(201, "ch_1")).ok());
  IncomingRequest large = small;
  large.target = "/v1/charges?amount=999";
  Decision other = core->Begin(large);
  ASSERT_EQ(other.action, Action::kReject);
  EXPECT_EQ(other.rejection.reason, RejectReason::kMismatch);
  EXPECT_EQ(core->Begin(small).action, Action::kReplay);
}

// At most once: a response too large to store is stored without its body;
// the retry replays the status and headers, flagged, and never runs again.
TEST_F(CoreTest, AResponseTooLargeToStoreIsStoredWithoutItsBody) {
  auto metrics = std::make_shared<PrometheusObserver>();
  MiddlewareOptions options;
  options.observer = metrics;
  auto core = NewCore(options);
  Decision first = core->Begin(Post("big"));
  ASSERT_EQ(first.action, Action::kRun);
  idemkey::v1::StoredResponse huge = Response(201, std::string(5 << 20, 'x'));
  idemkey::v1::Header* location = huge.add_headers();
  location->set_name("Location");
  location->set_value("/v1/charges/ch_6267");
  ASSERT_TRUE(first.execution->Finish(huge).ok());
  Decision retry = core->Begin(Post("big"));
  ASSERT_EQ(retry.action, Action::kReplay);
  EXPECT_EQ(retry.replay.status_code(), 201);
  EXPECT_TRUE(retry.replay.body_omitted());
  EXPECT_TRUE(retry.replay.body().empty());
  ASSERT_EQ(retry.replay.headers_size(), 1);
  EXPECT_EQ(retry.replay.headers(0).value(), "/v1/charges/ch_6267");
  EXPECT_EQ(metrics->Count(EventKind::kBodyOmitted), 1u);
}

TEST_F(CoreTest, PrometheusObserverCountsAKnownSequence) {
  auto metrics = std::make_shared<PrometheusObserver>();
  MiddlewareOptions options;
  options.observer = metrics;
  options.not_final_statuses = {503};
  auto core = NewCore(options);
  IncomingRequest get = Post("k");
  get.method = "GET";
  EXPECT_EQ(core->Begin(get).action, Action::kBypass);  // bypass
  Decision run = core->Begin(Post("k", "a"));           // run
  EXPECT_EQ(core->Begin(Post("k", "a")).action,
            Action::kReject);                                    // in progress
  ASSERT_TRUE(run.execution->Finish(Response(201, "ok")).ok());  // stored
  EXPECT_EQ(core->Begin(Post("k", "a")).action, Action::kReplay);  // replay
  EXPECT_EQ(core->Begin(Post("k", "b")).action, Action::kReject);  // mismatch
  Decision flaky = core->Begin(Post("k2"));                        // run
  ASSERT_TRUE(flaky.execution->Finish(Response(503, "")).ok());    // released
  keys_->SetUnavailable(true);
  EXPECT_EQ(core->Begin(Post("k3")).action, Action::kReject);  // unavailable

  EXPECT_EQ(metrics->Count(EventKind::kBypass), 1u);
  EXPECT_EQ(metrics->Count(EventKind::kRun), 2u);
  EXPECT_EQ(metrics->Count(EventKind::kInProgress), 1u);
  EXPECT_EQ(metrics->Count(EventKind::kStored), 1u);
  EXPECT_EQ(metrics->Count(EventKind::kReplay), 1u);
  EXPECT_EQ(metrics->Count(EventKind::kMismatch), 1u);
  EXPECT_EQ(metrics->Count(EventKind::kReleased), 1u);
  EXPECT_EQ(metrics->Count(EventKind::kUnavailable), 1u);
  const std::string text = metrics->Text();
  EXPECT_NE(text.find("idemkey_middleware_events_total{event=\"replay\"} 1\n"),
            std::string::npos)
      << text;
  // Every step that asked the service is in a histogram: 6 decisions, 2
  // finishes (bypass asks nothing).
  EXPECT_NE(text.find("idemkey_middleware_decision_seconds_count 6\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("idemkey_middleware_finish_seconds_count 2\n"),
            std::string::npos)
      << text;
}

// The in-process service whose Completes wait until Open(): a key service
// slow to store, to see what the handler's thread waits for.
// Passes every call to `keys`; tests override the calls they hold up.
class ForwardingKeys : public client::KeyServiceClient {
 public:
  explicit ForwardingKeys(std::shared_ptr<client::KeyServiceClient> keys)
      : keys_(std::move(keys)) {}

  absl::StatusOr<idemkey::v1::ReserveResponse> Reserve(
      const idemkey::v1::ReserveRequest& request) override {
    return keys_->Reserve(request);
  }
  absl::StatusOr<idemkey::v1::CompleteResponse> Complete(
      const idemkey::v1::CompleteRequest& request) override {
    return keys_->Complete(request);
  }
  absl::Status Release(const idemkey::v1::ReleaseRequest& request) override {
    return keys_->Release(request);
  }
  absl::StatusOr<idemkey::v1::HeartbeatResponse> Heartbeat(
      const idemkey::v1::HeartbeatRequest& request) override {
    return keys_->Heartbeat(request);
  }

 private:
  const std::shared_ptr<client::KeyServiceClient> keys_;
};

class GatedCompletes final : public ForwardingKeys {
 public:
  using ForwardingKeys::ForwardingKeys;

  absl::StatusOr<idemkey::v1::CompleteResponse> Complete(
      const idemkey::v1::CompleteRequest& request) override {
    absl::Duration delay;
    {
      sync::MutexLock lock(&mu_);
      ++entered_;
      changed_.SignalAll();
      while (!open_) changed_.Wait(&mu_);
      delay = delay_;
    }
    absl::SleepFor(delay);
    return ForwardingKeys::Complete(request);
  }

  void Open() {
    sync::MutexLock lock(&mu_);
    open_ = true;
    changed_.SignalAll();
  }
  // Each open Complete takes `delay` more: a slow service.
  void DelayEach(absl::Duration delay) {
    sync::MutexLock lock(&mu_);
    delay_ = delay;
  }
  // Waits until `n` Completes have been called in all.
  void AwaitEntered(int n) {
    sync::MutexLock lock(&mu_);
    while (entered_ < n) changed_.Wait(&mu_);
  }
  int entered() {
    sync::MutexLock lock(&mu_);
    return entered_;
  }

 private:
  sync::Mutex mu_;
  sync::CondVar changed_;
  int entered_ ABSL_GUARDED_BY(mu_) = 0;
  bool open_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration delay_ ABSL_GUARDED_BY(mu_);
};

MiddlewareOptions StoreAfterResponse(std::shared_ptr<Observer> observer) {
  MiddlewareOptions options;
  options.store_after_response = true;
  options.observer = std::move(observer);
  return options;
}

// StoreAfterResponse with one store thread and a 1 s lease renewed every
// 100 ms: stores wait in the queue, and leases lapse within a test.
MiddlewareOptions OneStoreThreadShortLease(std::shared_ptr<Observer> observer) {
  MiddlewareOptions options = StoreAfterResponse(std::move(observer));
  options.store_threads = 1;
  options.lease = absl::Seconds(1);
  options.heartbeat_interval = absl::Milliseconds(100);
  return options;
}

// Runs requests for keys k0 .. k<n-1> and finishes each with its number as
// the body.
void RunAndFinish(IdempotencyCore& core, int n) {
  for (int i = 0; i < n; ++i) {
    Decision d = core.Begin(Post("k" + std::to_string(i)));
    ASSERT_EQ(d.action, Action::kRun);
    ASSERT_TRUE(d.execution->Finish(Response(200, std::to_string(i))).ok());
  }
}

TEST_F(CoreTest, StoreAfterResponseFinishesWhileTheCompleteWaits) {
  auto gated = std::make_shared<GatedCompletes>(keys_);
  auto metrics = std::make_shared<PrometheusObserver>();
  auto core =
      std::make_unique<IdempotencyCore>(gated, StoreAfterResponse(metrics));
  Decision first = core->Begin(Post("k"));
  ASSERT_EQ(first.action, Action::kRun);
  std::atomic<bool> returned{false};
  std::thread handler([&] {
    EXPECT_TRUE(first.execution->Finish(Response(201, "created")).ok());
    first.execution.reset();  // as an adapter does once the response is out
    returned = true;
  });
  // Finish returns with the Complete still waiting: the response may go
  // out now. (Storing in Finish would keep it waiting until Open.)
  gated->AwaitEntered(1);
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (!returned && absl::Now() < give_up)
    absl::SleepFor(absl::Milliseconds(1));
  if (!returned) gated->Open();
  handler.join();
  ASSERT_TRUE(returned) << "Finish waited for its Complete";
  // Until the store lands the key is still held, never run again.
  Decision early = core->Begin(Post("k"));
  ASSERT_EQ(early.action, Action::kReject);
  EXPECT_EQ(early.rejection.reason, RejectReason::kInProgress);
  EXPECT_EQ(metrics->Count(EventKind::kStored), 0u);
  gated->Open();
  core.reset();  // stores what is queued or in flight before it returns
  EXPECT_EQ(metrics->Count(EventKind::kStored), 1u);
  Decision retry = NewCore()->Begin(Post("k"));
  ASSERT_EQ(retry.action, Action::kReplay);
  EXPECT_EQ(retry.replay.body(), "created");
}

TEST_F(CoreTest, StoreAfterResponseStoresEverythingQueuedBeforeTheCoreGoes) {
  auto gated = std::make_shared<GatedCompletes>(keys_);
  auto metrics = std::make_shared<PrometheusObserver>();
  auto core =
      std::make_unique<IdempotencyCore>(gated, StoreAfterResponse(metrics));
  constexpr int kRequests = 40;  // more than the store threads
  ASSERT_NO_FATAL_FAILURE(RunAndFinish(*core, kRequests));
  std::thread opener([&] {
    gated->AwaitEntered(1);
    gated->Open();
  });
  core.reset();
  opener.join();
  EXPECT_EQ(metrics->Count(EventKind::kStored), uint64_t{kRequests});
  auto after = NewCore();
  for (int i = 0; i < kRequests; ++i) {
    Decision d = after->Begin(Post("k" + std::to_string(i)));
    ASSERT_EQ(d.action, Action::kReplay) << i;
    EXPECT_EQ(d.replay.body(), std::to_string(i));
  }
}

TEST_F(CoreTest, StoreAfterResponseStoresInFinishWhenTheQueueIsFull) {
  auto gated = std::make_shared<GatedCompletes>(keys_);
  MiddlewareOptions options = StoreAfterResponse(nullptr);
  options.store_threads = 2;
  options.max_queued_stores = 1;
  auto core = std::make_unique<IdempotencyCore>(gated, options);
  std::vector<Decision> runs;
  for (int i = 0; i < 4; ++i) {
    runs.push_back(core->Begin(Post("k" + std::to_string(i))));
    ASSERT_EQ(runs.back().action, Action::kRun);
  }
  // Each store thread takes one and waits in its Complete; one more fills
  // the queue. Each of these Finishes returns at once.
  ASSERT_TRUE(runs[0].execution->Finish(Response(200, "0")).ok());
  gated->AwaitEntered(1);
  ASSERT_TRUE(runs[1].execution->Finish(Response(200, "1")).ok());
  gated->AwaitEntered(2);
  ASSERT_TRUE(runs[2].execution->Finish(Response(200, "2")).ok());
  std::atomic<bool> returned{false};
  std::thread full([&] {
    EXPECT_TRUE(runs[3].execution->Finish(Response(200, "3")).ok());
    returned = true;
  });
  // The full queue sends this Finish into a Complete of its own, on its
  // own thread, where it waits like the others.
  gated->AwaitEntered(3);
  EXPECT_FALSE(returned);
  gated->Open();
  full.join();
  // Stored when it returned, not later.
  EXPECT_EQ(core->Begin(Post("k3")).action, Action::kReplay);
  runs.clear();
  core.reset();
  for (int i = 0; i < 4; ++i) {
    Decision d = NewCore()->Begin(Post("k" + std::to_string(i)));
    ASSERT_EQ(d.action, Action::kReplay) << i;
    EXPECT_EQ(d.replay.body(), std::to_string(i));
  }
}

// One store thread, held in the first Complete while the service stops
// answering: the queued stores' leases lapse unrenewed, and their Completes
// could only be refused. Sending them anyway would keep a stopping app
// server waiting a retry budget for each.
TEST_F(CoreTest, StoreAfterResponseDropsStoresWhoseLeaseLapsedInTheQueue) {
  auto gated = std::make_shared<GatedCompletes>(keys_);
  auto metrics = std::make_shared<PrometheusObserver>();
  const MiddlewareOptions options = OneStoreThreadShortLease(metrics);
  auto core = std::make_unique<IdempotencyCore>(gated, options);
  ASSERT_NO_FATAL_FAILURE(RunAndFinish(*core, 3));
  gated->AwaitEntered(1);
  keys_->SetUnavailable(true);
  absl::SleepFor(options.lease + 5 * options.heartbeat_interval);
  gated->Open();
  core.reset();
  EXPECT_EQ(gated->entered(), 1) << "stores sent after their leases lapsed";
  EXPECT_EQ(metrics->Count(EventKind::kFinishFailed), 1u);  // k0, unanswered
  EXPECT_EQ(metrics->Count(EventKind::kLeaseLost), 2u);     // k1, k2 dropped
  EXPECT_EQ(metrics->Count(EventKind::kStored), 0u);
  // Nothing was stored: once the service's leases lapse, a retry runs.
  keys_->SetUnavailable(false);
  keys_->AdvanceClock(options.lease + absl::Seconds(1));
  EXPECT_EQ(NewCore()->Begin(Post("k1")).action, Action::kRun);
}

// A slow service: each Complete takes 400 ms, so the last of five stores
// waits in the queue longer than its 1 s lease. The heartbeats answer and
// renew it, so it is stored, not dropped.
TEST_F(CoreTest, StoreAfterResponseKeepsTheLeasesOfQueuedStores) {
  auto slow = std::make_shared<GatedCompletes>(keys_);
  slow->DelayEach(absl::Milliseconds(400));
  slow->Open();
  auto metrics = std::make_shared<PrometheusObserver>();
  auto core = std::make_unique<IdempotencyCore>(
      slow, OneStoreThreadShortLease(metrics));
  constexpr int kRequests = 5;
  ASSERT_NO_FATAL_FAILURE(RunAndFinish(*core, kRequests));
  core.reset();
  EXPECT_EQ(metrics->Count(EventKind::kStored), uint64_t{kRequests});
  EXPECT_EQ(metrics->Count(EventKind::kLeaseLost), 0u);
}

// A service that never answers the Heartbeats of one key (until Open()).
class HeldHeartbeats final : public ForwardingKeys {
 public:
  HeldHeartbeats(std::shared_ptr<client::KeyServiceClient> keys,
                 std::string key)
      : ForwardingKeys(std::move(keys)), key_(std::move(key)) {}

  absl::StatusOr<idemkey::v1::HeartbeatResponse> Heartbeat(
      const idemkey::v1::HeartbeatRequest& request) override {
    if (request.key() == key_) {
      sync::MutexLock lock(&mu_);
      held_ = true;
      changed_.SignalAll();
      while (!open_) changed_.Wait(&mu_);
    }
    return ForwardingKeys::Heartbeat(request);
  }

  void AwaitHeld() {
    sync::MutexLock lock(&mu_);
    while (!held_) changed_.Wait(&mu_);
  }
  void Open() {
    sync::MutexLock lock(&mu_);
    open_ = true;
    changed_.SignalAll();
  }

 private:
  const std::string key_;
  sync::Mutex mu_;
  sync::CondVar changed_;
  bool held_ ABSL_GUARDED_BY(mu_) = false;
  bool open_ ABSL_GUARDED_BY(mu_) = false;
};

// One lease's heartbeat hangs; the other running handlers keep theirs.
TEST_F(CoreTest, AHeartbeatThatHangsDoesNotHoldUpTheOtherLeases) {
  auto held = std::make_shared<HeldHeartbeats>(keys_, "stuck");
  MiddlewareOptions options;
  options.heartbeat_interval = absl::Milliseconds(1);
  IdempotencyCore core(held, options);
  Decision stuck = core.Begin(Post("stuck"));
  ASSERT_EQ(stuck.action, Action::kRun);
  held->AwaitHeld();
  const std::vector<std::string> keys = {"k0", "k1", "k2"};
  std::vector<Decision> running;
  for (const std::string& key : keys) {
    running.push_back(core.Begin(Post(key)));
    ASSERT_EQ(running.back().action, Action::kRun) << key;
  }
  const ::testing::AssertionResult renewed =
      LeasesRenewedPastTheirEnd(*keys_, options.lease, keys);
  held->Open();
  ASSERT_TRUE(renewed);
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_TRUE(running[i].execution->Finish(Response(200, keys[i])).ok())
        << keys[i];
  }
  // The unanswered lease did lapse: its Complete is refused.
  EXPECT_FALSE(stuck.execution->Finish(Response(200, "stuck")).ok());
}

}  // namespace
}  // namespace idemkey::middleware
