#include "idemkey/middleware/core.h"

#include <algorithm>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "idemkey/client/client.h"
#include "idemkey/rules/fingerprint.h"
#include "idemkey/rules/limits.h"
#include "idemkey/rules/validation.h"
#include "idemkey/sync/mutex.h"

namespace idemkey::middleware {
namespace {

google::protobuf::Duration ToProto(absl::Duration d) {
  google::protobuf::Duration out;
  out.set_seconds(absl::ToInt64Seconds(d));
  out.set_nanos(static_cast<int32_t>(
      absl::ToInt64Nanoseconds(d - absl::Seconds(out.seconds()))));
  return out;
}

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

Decision Reject(RejectReason reason, std::string title, std::string detail,
                int64_t retry_after_seconds = 0) {
  Decision d;
  d.action = Action::kReject;
  d.rejection = {reason, std::move(title), std::move(detail),
                 retry_after_seconds};
  return d;
}

// The service's verdicts on a call; any other status means it gave no
// answer (docs/semantics.md, "Key service errors"): unreachable, timed out,
// cancelled by a draining server, the connection lost or reset (gRPC says
// UNKNOWN or INTERNAL for some), a request gRPC could not parse
// (UNIMPLEMENTED), a record it could not read (DATA_LOSS). The Go, Python
// and Node cores draw the same line.
bool IsNoAnswer(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kOutOfRange:
      return false;
    default:
      return true;
  }
}

absl::Duration Since(absl::Time start) { return absl::Now() - start; }

}  // namespace

// Renews the leases of running handlers from `heartbeat_threads` background
// threads that share one schedule: each beats the lease due first that no
// other is beating, so a beat the service is slow to answer holds up one
// thread, not every other lease (beaten one after another, N leases each
// waited for N beats' latency, and past `lease` they lapsed).
class IdempotencyCore::Heartbeats {
 public:
  Heartbeats(client::KeyServiceClient* keys, const MiddlewareOptions& options)
      : keys_(keys), options_(options) {
    const int n = std::max(options_.heartbeat_threads, 1);
    for (int i = 0; i < n; ++i) threads_.emplace_back([this] { Run(); });
  }

  ~Heartbeats() {
    {
      sync::MutexLock lock(&mu_);
      stopping_ = true;
    }
    cv_.SignalAll();
    for (std::thread& t : threads_) t.join();
  }

  // Call right after the Reserve that issued `token` answered.
  void Add(uint64_t token, const std::string& tenant, const std::string& key) {
    sync::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    auto [it, added] = leases_.try_emplace(token);
    Lease& lease = it->second;
    // The same token again (a retried Reserve): a beat in flight puts it
    // back in the schedule when it ends.
    if (!added && !lease.beating) schedule_.erase(Due(it));
    lease.tenant = tenant;
    lease.key = key;
    lease.due = now + options_.heartbeat_interval;
    lease.held_until = HeldUntil(now);
    if (lease.beating) return;
    schedule_.insert(Due(it));
    // Only a new first due time changes what a waiting thread waits for.
    if (*schedule_.begin() == Due(it)) cv_.Signal();
  }

  // True when the service has surely let the lease of `token` lapse, or a
  // heartbeat found it lost: a Complete with it could only be refused. The
  // lease is then no longer renewed. One heartbeat interval of slack covers
  // replicas whose clocks differ a little.
  bool ForgetIfLapsed(uint64_t token) ABSL_LOCKS_EXCLUDED(mu_) {
    sync::MutexLock lock(&mu_);
    auto it = leases_.find(token);
    if (it == leases_.end()) return true;
    if (absl::Now() <= it->second.held_until + options_.heartbeat_interval) {
      return false;
    }
    EraseLocked(it);
    return true;
  }

  void Remove(uint64_t token) ABSL_LOCKS_EXCLUDED(mu_) {
    sync::MutexLock lock(&mu_);
    if (auto it = leases_.find(token); it != leases_.end()) EraseLocked(it);
  }

 private:
  struct Lease {
    std::string tenant;
    std::string key;
    absl::Time due;  // of the next heartbeat
    // The service's lease ends before this: the last Reserve or Heartbeat
    // that renewed it answered before then.
    absl::Time held_until;
    // A thread is beating it; it is out of schedule_ until the beat ends.
    bool beating = false;
  };
  using Leases = std::map<uint64_t, Lease>;  // by token

  static std::pair<absl::Time, uint64_t> Due(Leases::const_iterator it) {
    return {it->second.due, it->first};
  }

  void EraseLocked(Leases::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!it->second.beating) schedule_.erase(Due(it));
    leases_.erase(it);
  }

  // The end of a lease renewed by a call that answered at `answered`. A
  // zero lease asks for the service's default, of unknown length here.
  absl::Time HeldUntil(absl::Time answered) const {
    return options_.lease > absl::ZeroDuration() ? answered + options_.lease
                                                 : absl::InfiniteFuture();
  }

  void Run() ABSL_LOCKS_EXCLUDED(mu_) {
    mu_.Lock();
    while (!stopping_) {
      if (schedule_.empty()) {
        cv_.Wait(&mu_);
        continue;
      }
      const auto [due, token] = *schedule_.begin();
      if (due > absl::Now()) {
        cv_.WaitFor(&mu_, due - absl::Now());
        continue;
      }
      schedule_.erase(schedule_.begin());
      Lease& lease = leases_.at(token);
      lease.beating = true;
      // The next beat is due an interval after this one began.
      lease.due = absl::Now() + options_.heartbeat_interval;
      idemkey::v1::HeartbeatRequest req;
      req.set_tenant(lease.tenant);
      req.set_key(lease.key);
      req.set_fencing_token(token);
      *req.mutable_lease() = ToProto(options_.lease);
      // Another lease due now goes to another thread at once.
      if (!schedule_.empty() && schedule_.begin()->first <= absl::Now()) {
        cv_.Signal();
      }
      mu_.Unlock();
      const absl::Time start = absl::Now();
      const absl::Status s = keys_->Heartbeat(req).status();
      // A lease that is gone (taken over, finished) needs no more beats;
      // a transient error is retried at the next beat.
      const bool gone = absl::IsAborted(s) || absl::IsNotFound(s) ||
                        absl::IsFailedPrecondition(s);
      if (gone && options_.observer != nullptr &&
          !absl::IsFailedPrecondition(s)) {
        options_.observer->OnEvent(
            {EventKind::kLeaseLost, req.tenant(), "", absl::Now() - start, s});
      }
      mu_.Lock();
      // Removed while it was beaten (its handler finished): nothing to do.
      auto it = leases_.find(token);
      if (it == leases_.end()) continue;
      it->second.beating = false;
      if (gone) {
        leases_.erase(it);
        continue;
      }
      if (s.ok()) it->second.held_until = HeldUntil(absl::Now());
      schedule_.insert(Due(it));
    }
    mu_.Unlock();
  }

  client::KeyServiceClient* const keys_;
  const MiddlewareOptions& options_;
  sync::Mutex mu_;
  sync::CondVar cv_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  Leases leases_ ABSL_GUARDED_BY(mu_);
  // (due, token) of every lease no thread is beating, soonest first.
  std::set<std::pair<absl::Time, uint64_t>> schedule_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;  // last: start after the members above
};

// A bounded LRU of completed responses, by (tenant, key).
class IdempotencyCore::ReplayCache {
 public:
  explicit ReplayCache(size_t capacity) : capacity_(capacity) {}

  struct Entry {
    std::string fingerprint;
    idemkey::v1::StoredResponse response;
    absl::Time expires;
  };

  // The live entry for (tenant, key), if any.
  std::optional<Entry> Get(absl::string_view tenant, absl::string_view key) {
    sync::MutexLock lock(&mu_);
    auto it = index_.find(Id(tenant, key));
    if (it == index_.end()) return std::nullopt;
    if (it->second->second.expires <= absl::Now()) {
      order_.erase(it->second);
      index_.erase(it);
      return std::nullopt;
    }
    order_.splice(order_.begin(), order_, it->second);
    return it->second->second;
  }

  void Put(absl::string_view tenant, absl::string_view key, Entry entry) {
    sync::MutexLock lock(&mu_);
    const std::string id = Id(tenant, key);
    if (auto it = index_.find(id); it != index_.end()) {
      order_.erase(it->second);
      index_.erase(it);
    }
    order_.emplace_front(id, std::move(entry));
    index_[id] = order_.begin();
    if (order_.size() > capacity_) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
  }

 private:
  static std::string Id(absl::string_view tenant, absl::string_view key) {
    return absl::StrCat(tenant, "\n", key);  // '\n' is in neither
  }

  const size_t capacity_;
  sync::Mutex mu_;
  // Most recent first.
  std::list<std::pair<std::string, Entry>> order_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<std::string,
                     std::list<std::pair<std::string, Entry>>::iterator>
      index_ ABSL_GUARDED_BY(mu_);
};

// The stores of store_after_response, made by a few threads of its own:
// each store is a blocking Complete, and the queue lets Finish return while
// it is in flight. Heartbeats renew a queued store's lease until its store
// starts; a store whose lease lapsed meanwhile (the service unanswering) is
// dropped, since its Complete could only be refused. Stopping stores (or
// drops) everything still queued.
class IdempotencyCore::QueuedStores {
 public:
  QueuedStores(IdempotencyCore* core, int threads, size_t max_queued)
      : core_(core), max_queued_(max_queued) {
    for (int i = 0; i < std::max(1, threads); ++i) {
      threads_.emplace_back([this] { Run(); });
    }
  }

  ~QueuedStores() {
    {
      sync::MutexLock lock(&mu_);
      stopping_ = true;
    }
    cv_.SignalAll();
    for (std::thread& t : threads_) t.join();
  }

  // Takes `*response` and queues its store; false (and `*response` left
  // alone) when the queue is full.
  bool TryQueue(const Attempt& attempt, idemkey::v1::StoredResponse* response,
                absl::Time start) ABSL_LOCKS_EXCLUDED(mu_) {
    {
      sync::MutexLock lock(&mu_);
      if (queue_.size() >= max_queued_) return false;
      queue_.push_back({attempt, {}, start});
      queue_.back().response.Swap(response);
    }
    cv_.Signal();
    return true;
  }

 private:
  struct Queued {
    Attempt attempt;
    idemkey::v1::StoredResponse response;
    absl::Time start;
  };

  void Run() ABSL_LOCKS_EXCLUDED(mu_) {
    mu_.Lock();
    for (;;) {
      while (queue_.empty() && !stopping_) cv_.Wait(&mu_);
      if (queue_.empty()) break;  // stopping, and everything is stored
      Queued next = std::move(queue_.front());
      queue_.pop_front();
      mu_.Unlock();
      // The Observer hears how it went; nobody else is waiting for it.
      if (core_->heartbeats_->ForgetIfLapsed(next.attempt.token)) {
        core_->Notify(EventKind::kLeaseLost, next.attempt, Since(next.start),
                      absl::AbortedError(
                          "not stored: the lease was lost, or lapsed with no "
                          "heartbeat answered, while the store was queued; "
                          "the key service would refuse it, and a retry runs "
                          "the handler again"));
      } else {
        core_->Store(next.attempt, &next.response, next.start).IgnoreError();
      }
      mu_.Lock();
    }
    mu_.Unlock();
  }

  IdempotencyCore* const core_;
  const size_t max_queued_;
  sync::Mutex mu_;
  sync::CondVar cv_;
  std::deque<Queued> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;  // last: start after the members above
};

IdempotencyCore::IdempotencyCore(std::shared_ptr<client::KeyServiceClient> keys,
                                 MiddlewareOptions options)
    : keys_(std::move(keys)), options_(std::move(options)) {
  heartbeats_ = std::make_unique<Heartbeats>(keys_.get(), options_);
  if (options_.replay_cache_entries > 0) {
    cache_ = std::make_unique<ReplayCache>(options_.replay_cache_entries);
  }
  if (options_.store_after_response) {
    queued_stores_ = std::make_unique<QueuedStores>(
        this, options_.store_threads, options_.max_queued_stores);
  }
}

IdempotencyCore::~IdempotencyCore() = default;

void IdempotencyCore::Notify(EventKind kind, const IncomingRequest& request,
                             absl::Duration elapsed,
                             absl::Status status) const {
  if (options_.observer == nullptr) return;
  options_.observer->OnEvent(
      {kind, request.tenant, request.route, elapsed, std::move(status)});
}

void IdempotencyCore::Notify(EventKind kind, const Attempt& attempt,
                             absl::Duration elapsed,
                             absl::Status status) const {
  if (options_.observer == nullptr) return;
  options_.observer->OnEvent(
      {kind, attempt.tenant, attempt.route, elapsed, std::move(status)});
}

Decision IdempotencyCore::Begin(const IncomingRequest& request) {
  const absl::Time start = absl::Now();
  const std::string method_route =
      absl::StrCat(request.method, " ", request.route);
  if (options_.covered_methods.count(std::string(request.method)) == 0 ||
      options_.excluded_routes.count(method_route) > 0) {
    Notify(EventKind::kBypass, request, absl::ZeroDuration());
    return Decision{};
  }
  if (request.tenant.empty()) {
    if (!options_.require_tenant) {
      Notify(EventKind::kBypass, request, absl::ZeroDuration());
      return Decision{};
    }
    Notify(EventKind::kMissingTenant, request, absl::ZeroDuration());
    return Reject(RejectReason::kMissingTenant, "Tenant required",
                  absl::StrCat(method_route,
                               " needs the caller's account (tenant); "
                               "authenticate and send the request again"));
  }
  if (!request.has_key) {
    if (!options_.require_key) {
      Notify(EventKind::kBypass, request, absl::ZeroDuration());
      return Decision{};
    }
    Notify(EventKind::kRejectedKey, request, absl::ZeroDuration());
    return Reject(RejectReason::kMissingKey, "Idempotency key required",
                  absl::StrCat(method_route,
                               " requires an Idempotency-Key; send a unique "
                               "value (a UUID) and reuse it on retries"));
  }
  rules::Limits limits;
  limits.max_key_bytes = options_.max_key_bytes;
  if (absl::Status s = rules::ValidateKey(limits, request.key); !s.ok()) {
    Notify(EventKind::kRejectedKey, request, absl::ZeroDuration());
    return Reject(RejectReason::kMalformedKey, "Malformed idempotency key",
                  absl::StrCat("Idempotency-Key: ", s.message()));
  }

  const std::string fingerprint = rules::Fingerprint(
      request.method, request.target.empty() ? request.route : request.target,
      request.body);
  if (cache_ != nullptr) {
    if (auto hit = cache_->Get(request.tenant, request.key)) {
      if (hit->fingerprint == fingerprint) {
        Notify(EventKind::kReplay, request, absl::ZeroDuration());
        Decision d;
        d.action = Action::kReplay;
        d.replay = std::move(hit->response);
        return d;
      }
    }
  }

  idemkey::v1::ReserveRequest reserve;
  reserve.set_tenant(std::string(request.tenant));
  reserve.set_key(std::string(request.key));
  reserve.set_fingerprint(fingerprint);
  reserve.set_attempt_id(client::NewAttemptId());
  *reserve.mutable_lease() = ToProto(options_.lease);
  if (options_.ttl > absl::ZeroDuration()) {
    *reserve.mutable_ttl() = ToProto(options_.ttl);
  }
  const absl::Time wait_until = absl::Now() + options_.wait_for_result;
  for (;;) {
    absl::StatusOr<idemkey::v1::ReserveResponse> r = keys_->Reserve(reserve);
    if (!r.ok()) {
      if (IsNoAnswer(r.status())) {
        if (options_.fail_open) {
          Notify(EventKind::kFailOpenRun, request, Since(start), r.status());
          return Decision{};
        }
        Notify(EventKind::kUnavailable, request, Since(start), r.status());
        return Reject(RejectReason::kUnavailable,
                      "Idempotency service unavailable",
                      "the request was not run because its idempotency key "
                      "could not be checked; retry with the same key");
      }
      // The service's own message (an auth failure, the tenant cap, a full
      // disk) is for the app's operators: the observer gets it.
      Notify(EventKind::kServiceError, request, Since(start), r.status());
      if (absl::IsResourceExhausted(r.status())) {
        return Reject(RejectReason::kUnavailable,
                      "Idempotency service unavailable",
                      "the request was not run because the idempotency "
                      "service cannot take it now; retry later with the "
                      "same key");
      }
      return Reject(RejectReason::kInternal, "Idempotency check failed",
                    "the request was not run because its idempotency key "
                    "could not be checked; the server's operators have been "
                    "told");
    }
    switch (r->outcome()) {
      case idemkey::v1::OUTCOME_OWNER: {
        Notify(EventKind::kRun, request, Since(start));
        Decision d;
        d.action = Action::kRun;
        d.execution.reset(new Execution(
            this, {reserve.tenant(), std::string(request.route), reserve.key(),
                   fingerprint, r->fencing_token()}));
        heartbeats_->Add(r->fencing_token(), reserve.tenant(), reserve.key());
        return d;
      }
      case idemkey::v1::OUTCOME_COMPLETED: {
        Notify(EventKind::kReplay, request, Since(start));
        if (cache_ != nullptr) {
          cache_->Put(request.tenant, request.key,
                      {fingerprint, r->response(), FromProto(r->expires_at())});
        }
        Decision d;
        d.action = Action::kReplay;
        d.replay = std::move(*r->mutable_response());
        return d;
      }
      case idemkey::v1::OUTCOME_MISMATCH:
        Notify(EventKind::kMismatch, request, Since(start));
        return Reject(RejectReason::kMismatch,
                      "Idempotency key reused for another request",
                      "this Idempotency-Key was first used with a different "
                      "method, target or body; use a new key for a new "
                      "request");
      default: {  // IN_PROGRESS
        const absl::Time now = absl::Now();
        const absl::Time lease_end = FromProto(r->lease_expires_at());
        if (now + options_.wait_poll_interval <= wait_until) {
          absl::SleepFor(
              std::max(absl::ZeroDuration(),
                       std::min(options_.wait_poll_interval, lease_end - now)));
          continue;  // same attempt id: if the lease lapses, we take over
        }
        Notify(EventKind::kInProgress, request, Since(start));
        const int64_t retry_after =
            std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(
                                     lease_end - now, absl::Seconds(1))));
        return Reject(RejectReason::kInProgress, "Request in progress",
                      "a request with this Idempotency-Key is still running; "
                      "retry after it finishes",
                      retry_after);
      }
    }
  }
}

Execution::Execution(IdempotencyCore* core, Attempt attempt)
    : core_(core), attempt_(std::move(attempt)) {}

Execution::~Execution() {
  if (done_) return;
  // Unfinished: the handler threw or the adapter gave up on it.
  const absl::Time start = absl::Now();
  absl::Status released = Release();
  core_->Notify(EventKind::kReleased, attempt_, Since(start), released);
}

absl::StatusOr<idemkey::v1::CompleteResponse> IdempotencyCore::Complete(
    const Attempt& attempt, idemkey::v1::StoredResponse* response,
    bool* omitted) {
  idemkey::v1::CompleteRequest req;
  req.set_tenant(attempt.tenant);
  req.set_key(attempt.key);
  req.set_fencing_token(attempt.token);
  *omitted = false;
  // Moved, not copied (it may be 4 MiB), and moved back for the caller.
  req.mutable_response()->Swap(response);
  absl::StatusOr<idemkey::v1::CompleteResponse> r;
  for (int step = 0;; ++step) {
    r = keys_->Complete(req);
    // Too large for the service (or for its receive limit): at most once
    // still holds, so store what fits rather than release the key.
    if (!absl::IsResourceExhausted(r.status()) || step == 2) break;
    idemkey::v1::StoredResponse* stored = req.mutable_response();
    if (step == 0) {
      stored->clear_body();
    } else {
      stored->clear_headers();
    }
    stored->set_body_omitted(true);
    *omitted = true;
  }
  req.mutable_response()->Swap(response);
  return r;
}

absl::Status IdempotencyCore::Store(const Attempt& attempt,
                                    idemkey::v1::StoredResponse* response,
                                    absl::Time start) {
  heartbeats_->Remove(attempt.token);
  bool omitted = false;
  absl::StatusOr<idemkey::v1::CompleteResponse> r =
      Complete(attempt, response, &omitted);
  if (!r.ok()) {
    // Not released: the handler ran, so a retry must not run it again
    // before the lease lapses.
    Notify(absl::IsAborted(r.status()) || absl::IsNotFound(r.status())
               ? EventKind::kLeaseLost
               : EventKind::kFinishFailed,
           attempt, Since(start), r.status());
    return r.status();
  }
  Notify(omitted ? EventKind::kBodyOmitted : EventKind::kStored, attempt,
         Since(start));
  if (cache_ != nullptr) {
    cache_->Put(attempt.tenant, attempt.key,
                {attempt.fingerprint, std::move(*response),
                 FromProto(r->expires_at())});
  }
  return absl::OkStatus();
}

absl::Status Execution::Finish(idemkey::v1::StoredResponse response) {
  const absl::Time start = absl::Now();
  if (core_->options_.not_final_statuses.count(response.status_code()) > 0) {
    absl::Status released = Release();
    core_->Notify(EventKind::kReleased, attempt_, Since(start), released);
    return released;
  }
  done_ = true;
  if (core_->queued_stores_ != nullptr &&
      core_->queued_stores_->TryQueue(attempt_, &response, start)) {
    return absl::OkStatus();
  }
  return core_->Store(attempt_, &response, start);
}

absl::Status Execution::Release() {
  done_ = true;
  core_->heartbeats_->Remove(attempt_.token);
  idemkey::v1::ReleaseRequest req;
  req.set_tenant(attempt_.tenant);
  req.set_key(attempt_.key);
  req.set_fencing_token(attempt_.token);
  return core_->keys_->Release(req);
}

}  // namespace idemkey::middleware
