// exit_codes.h — idemctl's exit codes and how service errors map to them.
//
//   absl::Status s = client->DeleteRecord("acme", "k1");
//   return ExitCodeFor(s);  // 0, or 1 for NOT_FOUND, 3 for UNAVAILABLE, ...

#ifndef IDEMKEY_CLIENT_IDEMCTL_EXIT_CODES_H_
#define IDEMKEY_CLIENT_IDEMCTL_EXIT_CODES_H_

#include "absl/status/status.h"

namespace idemkey::idemctl {

enum ExitCode {
  kExitOk = 0,
  kExitNotFound = 1,          // NOT_FOUND: no such record or tenant
  kExitUsage = 2,             // bad command line, or INVALID_ARGUMENT
  kExitUnreachable = 3,       // UNAVAILABLE or DEADLINE_EXCEEDED
  kExitPermissionDenied = 4,  // PERMISSION_DENIED or UNAUTHENTICATED
  kExitServiceError = 5,      // any other error status of idemkeyd
};

inline ExitCode ExitCodeFor(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kNotFound:
      return kExitNotFound;
    case absl::StatusCode::kInvalidArgument:
      return kExitUsage;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return kExitUnreachable;
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
      return kExitPermissionDenied;
    default:
      return kExitServiceError;
  }
}

}  // namespace idemkey::idemctl

#endif  // IDEMKEY_CLIENT_IDEMCTL_EXIT_CODES_H_
