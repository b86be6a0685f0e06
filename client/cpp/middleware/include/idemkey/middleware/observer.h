// observer.h — what the middleware did with each request, for the app's own
// logs and metrics.
//
// The core calls its MiddlewareOptions::observer once per decision and once
// per finish. The key service's own messages (an auth failure, the tenant
// cap) reach the app here, in `service_status`, never its clients, who get a
// detail written for them (docs/semantics.md, "Middleware").
//
//   class LogObserver : public idemkey::middleware::Observer {
//     void OnEvent(const Event& e) override {
//       if (!e.service_status.ok()) LOG(WARNING) << e.route << ": "
//                                               << e.service_status;
//     }
//   };
//   options.observer = std::make_shared<LogObserver>();
//
// PrometheusObserver (prometheus_observer.h) is a ready one.

#ifndef IDEMKEY_MIDDLEWARE_OBSERVER_H_
#define IDEMKEY_MIDDLEWARE_OBSERVER_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace idemkey::middleware {

enum class EventKind {
  // Begin's decisions.
  kBypass,         // not covered, excluded, or no tenant: ran unprotected
  kRun,            // this attempt owns the key: the handler runs
  kReplay,         // a stored response was replayed
  kInProgress,     // another attempt holds the key: 409 / ABORTED
  kMismatch,       // the key was used for another request: 422
  kRejectedKey,    // missing or malformed key: 400
  kMissingTenant,  // require_tenant and no tenant: 401
  kUnavailable,    // the key service gave no answer: 503
  kFailOpenRun,    // ... and the handler ran unprotected (fail_open)
  kServiceError,   // the key service refused the check: 500 or 503
  // Finish's outcomes.
  kStored,        // the response was stored for replays
  kBodyOmitted,   // too large: stored without its body (at most once)
  kReleased,      // a "not final" status, or the handler failed: released
  kFinishFailed,  // the response could not be stored (the lease lapses)
  kLeaseLost,     // another attempt took over, or the lease lapsed
};

// A short name for metrics labels and logs ("replay", "body_omitted").
absl::string_view EventName(EventKind kind);

struct Event {
  EventKind kind;
  absl::string_view tenant;
  absl::string_view route;
  // Time spent in the key service for this step (Begin or Finish; with
  // store_after_response, from Finish to the end of its store, the time
  // queued included).
  absl::Duration elapsed;
  // The key service's answer, when it was an error.
  absl::Status service_status;
};

// Implementations must be thread-safe and quick: OnEvent runs on the
// request's thread (and on a heartbeat thread for kLeaseLost, on a store
// thread for Finish's outcomes with store_after_response).
class Observer {
 public:
  virtual ~Observer() = default;
  virtual void OnEvent(const Event& event) = 0;
};

}  // namespace idemkey::middleware

#endif  // IDEMKEY_MIDDLEWARE_OBSERVER_H_
