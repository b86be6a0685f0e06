#include "idemkey/middleware/observer.h"

namespace idemkey::middleware {

absl::string_view EventName(EventKind kind) {
  switch (kind) {
    case EventKind::kBypass:
      return "bypass";
    case EventKind::kRun:
      return "run";
    case EventKind::kReplay:
      return "replay";
    case EventKind::kInProgress:
      return "in_progress";
    case EventKind::kMismatch:
      return "mismatch";
    case EventKind::kRejectedKey:
      return "rejected_key";
    case EventKind::kMissingTenant:
      return "missing_tenant";
    case EventKind::kUnavailable:
      return "unavailable";
    case EventKind::kFailOpenRun:
      return "fail_open_run";
    case EventKind::kServiceError:
      return "service_error";
    case EventKind::kStored:
      return "stored";
    case EventKind::kBodyOmitted:
      return "body_omitted";
    case EventKind::kReleased:
      return "released";
    case EventKind::kFinishFailed:
      return "finish_failed";
    case EventKind::kLeaseLost:
      return "lease_lost";
  }
  return "unknown";
}

}  // namespace idemkey::middleware
