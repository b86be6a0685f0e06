// core.h — the idempotency middleware, free of any HTTP or gRPC type.
//
// An adapter (idemkey/http/..., idemkey/grpc/...) turns its framework's request
// into an IncomingRequest, asks Begin() what to do, and acts on the Decision:
//
//   IdempotencyCore core(keys, MiddlewareOptions{});
//   Decision d = core.Begin({.method = "POST", .route = "/v1/charges",
//                            .tenant = org_id, .key = header_value,
//                            .has_key = true, .body = body});
//   switch (d.action) {
//     case Action::kBypass:  run the handler; nothing is recorded
//     case Action::kRun:     run the handler, then
//                            d.execution->Finish(stored_response);
//                            (destroying the Execution unfinished, e.g. when
//                            the handler throws, releases the key)
//     case Action::kReplay:  send d.replay (plus the replayed marker)
//     case Action::kReject:  send an error built from d.rejection
//   }
//
// The core owns the rules of docs/semantics.md, "Middleware": covered
// methods, excluded routes, required keys, key validation, the SHA-256
// fingerprint, lease heartbeats while a handler runs, "not final" statuses,
// fail-closed or fail-open, waiting for an in-progress result, and an
// optional cache of completed responses, and, with store_after_response,
// storing the response after it was sent.
//
// IdempotencyCore is thread-safe: one core serves every request of a route
// group at once. Each Decision's Execution belongs to one handler.

#ifndef IDEMKEY_MIDDLEWARE_CORE_H_
#define IDEMKEY_MIDDLEWARE_CORE_H_

#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "idemkey/client/key_service_client.h"
#include "idemkey/middleware/observer.h"
#include "idemkey/v1/idemkey.pb.h"

namespace idemkey::middleware {

struct MiddlewareOptions {
  // Requests with other methods bypass the middleware.
  std::set<std::string> covered_methods = {"POST", "PUT", "PATCH", "DELETE"};
  // "METHOD ROUTE" pairs that bypass it, e.g. "POST /v1/auth/login".
  std::set<std::string> excluded_routes;
  // A covered request without a key: rejected (true) or run unprotected.
  bool require_key = false;
  // A covered request without a tenant: rejected (true: HTTP 401, gRPC
  // UNAUTHENTICATED) or run unprotected.
  bool require_tenant = false;
  // Longest accepted key (docs/semantics.md: 256); keys are printable ASCII.
  // Keep it at most idemkeyd's --max_key_bytes: longer keys pass here and are
  // refused by the service (an Internal rejection, HTTP 500).
  size_t max_key_bytes = 256;
  // Lease asked for each attempt, and how often a running handler renews it.
  absl::Duration lease = absl::Seconds(30);
  absl::Duration heartbeat_interval = absl::Seconds(10);
  // Threads renewing leases; each beat blocks one for a call. A beat the
  // service is slow to answer (or never answers, until the client's deadline
  // and retries give up) occupies one thread while the others beat the
  // other leases; only as many hung beats as threads delay the rest.
  int heartbeat_threads = 4;
  // Retention of completed responses; zero: the service's default.
  absl::Duration ttl = absl::ZeroDuration();
  // Response statuses that are released instead of stored (a retry runs the
  // handler again), e.g. 429 and 503 for HTTP.
  std::set<int32_t> not_final_statuses;
  // When the key service gives no answer (unreachable, timed out, the call
  // cancelled by a draining server, the connection lost): reject (false,
  // the default: HTTP 503, gRPC UNAVAILABLE) or run the handler unprotected.
  bool fail_open = false;
  // When another attempt holds the key: wait up to this long for its result
  // and replay it (zero: answer "in progress" at once).
  absl::Duration wait_for_result = absl::ZeroDuration();
  absl::Duration wait_poll_interval = absl::Milliseconds(50);
  // When the response is stored. false (the default): Finish stores it
  // before returning, so the record is complete by the time the app's client
  // has the answer, and a retry that follows the answer is replayed. true:
  // Finish queues the Complete for a background thread and returns at once,
  // so the app's client does not wait for that second durable write. Until
  // the Complete lands (about one call's latency) a retry is answered "in
  // progress" (or waits, with wait_for_result); if the app server dies
  // first, nothing is stored and, once the lease lapses, a retry runs the
  // handler again: the window an app server dying right after its handler
  // has anyway (docs/semantics.md, "Storing after the response").
  bool store_after_response = false;
  // With store_after_response: the threads that make the queued Completes
  // (each blocks for one call), and the Completes queued at most. When the
  // queue is full (the key service is slower than the handlers), Finish
  // stores before returning, which slows the handlers down to the
  // service's pace. Heartbeats keep a queued store's lease; one whose lease
  // lapsed anyway (no heartbeat answered) is dropped, told as kLeaseLost.
  int store_threads = 8;
  size_t max_queued_stores = 1024;
  // Completed responses kept in this process, served without a round trip
  // (0: off). Entries expire with their records; an admin's DeleteRecord is
  // not seen by other processes' caches.
  size_t replay_cache_entries = 0;
  // Told of every decision and finish (observer.h); null: nobody.
  std::shared_ptr<Observer> observer;
};

// Views into the adapter's request, read only during Begin().
struct IncomingRequest {
  absl::string_view method;  // "POST", or "grpc"
  absl::string_view route;   // path or route pattern, for excluded_routes
  // What the fingerprint covers beside method and body: the HTTP request
  // target as sent (path and query string) or the gRPC full method name.
  // Empty: `route`.
  absl::string_view target = {};
  absl::string_view tenant;  // empty: no tenant, bypass
  absl::string_view key;     // the Idempotency-Key, if has_key
  bool has_key = false;
  absl::string_view body;  // raw body or serialized request message
};

enum class Action { kBypass, kRun, kReplay, kReject };

enum class RejectReason {
  kMissingTenant,  // HTTP 401, gRPC UNAUTHENTICATED
  kMissingKey,     // HTTP 400, gRPC INVALID_ARGUMENT
  kMalformedKey,   // HTTP 400, gRPC INVALID_ARGUMENT
  kInProgress,     // HTTP 409 + Retry-After, gRPC ABORTED
  kMismatch,       // HTTP 422, gRPC FAILED_PRECONDITION
  kUnavailable,    // HTTP 503, gRPC UNAVAILABLE: no answer, or the service
                   // could not take the request (tenant cap, full disk)
  kInternal,       // HTTP 500, gRPC INTERNAL: the service refused the call
};

struct Rejection {
  RejectReason reason = RejectReason::kInternal;
  std::string title;  // one line, e.g. "Request in progress"
  // What happened and what to do, written for the app's client: never the
  // key service's own message (the Observer gets that).
  std::string detail;
  int64_t retry_after_seconds = 0;  // kInProgress
};

class IdempotencyCore;

// The lease of one attempt while its handler runs. Heartbeats keep it alive
// until Finish or destruction; destroying it unfinished releases the key.
// It must not outlive the IdempotencyCore that made it (it calls the core's
// key service and heartbeats). Thread-compatible: one handler owns it.
class Execution {
 public:
  ~Execution();
  Execution(const Execution&) = delete;
  Execution& operator=(const Execution&) = delete;

  // Stores `response` for replays, or releases the key when its status is
  // "not final". A response too large to store is stored without its body
  // (then without its headers), flagged body_omitted: a retry never runs
  // the handler again (docs/semantics.md, "At most once"). Errors are the
  // key service's (e.g. ABORTED when the lease was lost); the response
  // should be sent either way. With store_after_response the store is
  // queued and Finish returns OK at once; the Observer hears how it ended.
  absl::Status Finish(idemkey::v1::StoredResponse response);
  // Forgets the reservation so that a retry runs the handler again.
  absl::Status Release();

  uint64_t fencing_token() const { return attempt_.token; }

 private:
  friend class IdempotencyCore;
  // What a store needs of the attempt, copied when it is queued.
  struct Attempt {
    std::string tenant;
    std::string route;
    std::string key;
    std::string fingerprint;
    uint64_t token = 0;
  };
  Execution(IdempotencyCore* core, Attempt attempt);

  IdempotencyCore* const core_;
  const Attempt attempt_;
  bool done_ = false;
};

struct Decision {
  Action action = Action::kBypass;
  std::unique_ptr<Execution> execution;  // kRun
  idemkey::v1::StoredResponse replay;    // kReplay
  Rejection rejection;                   // kReject
};

class IdempotencyCore {
 public:
  // `keys` is shared: one client per process serves every core.
  IdempotencyCore(std::shared_ptr<client::KeyServiceClient> keys,
                  MiddlewareOptions options);
  // Stores what store_after_response still has queued first, so that a
  // stopping app server does not drop the responses it has already sent.
  // With the service unreachable this lasts until the queued leases lapse
  // (lease plus heartbeat_interval after their last renewal) and the stores
  // then in flight give up (the client's deadlines and retries): a store
  // whose lease lapsed is dropped unsent (kLeaseLost), as the service could
  // only refuse it.
  ~IdempotencyCore();
  IdempotencyCore(const IdempotencyCore&) = delete;
  IdempotencyCore& operator=(const IdempotencyCore&) = delete;

  const MiddlewareOptions& options() const { return options_; }

  Decision Begin(const IncomingRequest& request);

 private:
  friend class Execution;
  class Heartbeats;
  class ReplayCache;
  class QueuedStores;
  using Attempt = Execution::Attempt;

  void Notify(EventKind kind, const IncomingRequest& request,
              absl::Duration elapsed,
              absl::Status status = absl::OkStatus()) const;
  void Notify(EventKind kind, const Attempt& attempt, absl::Duration elapsed,
              absl::Status status = absl::OkStatus()) const;
  // Stores `*response` (moved out and back) for `attempt`, whose Finish
  // began at `start`, and tells the Observer how it went.
  absl::Status Store(const Attempt& attempt,
                     idemkey::v1::StoredResponse* response, absl::Time start);
  // Complete with `response`; on RESOURCE_EXHAUSTED (too large for the
  // service or its receive limit) again without the body, then without the
  // headers. Sets `*omitted` when what was stored lacks the body.
  absl::StatusOr<idemkey::v1::CompleteResponse> Complete(
      const Attempt& attempt, idemkey::v1::StoredResponse* response,
      bool* omitted);

  const std::shared_ptr<client::KeyServiceClient> keys_;
  const MiddlewareOptions options_;
  std::unique_ptr<Heartbeats> heartbeats_;
  std::unique_ptr<ReplayCache> cache_;
  // With store_after_response. Last: destroyed first, storing what is
  // still queued while the members above still work.
  std::unique_ptr<QueuedStores> queued_stores_;
};

}  // namespace idemkey::middleware

#endif  // IDEMKEY_MIDDLEWARE_CORE_H_
