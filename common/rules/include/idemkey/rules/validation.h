// validation.h — checks of caller-supplied values against Limits.
//
// Each check returns OK or INVALID_ARGUMENT with a message that names the
// field, shows (a printable excerpt of) the value and states the rule, so a
// person can fix the call without reading the source:
//
//   absl::Status s = ValidateKey(limits, key);
//   // INVALID_ARGUMENT: key is 257 bytes; it must be 1-256 bytes of
//   //   printable ASCII (0x21-0x7E)
//
// Resolve* turn an optional caller value (0 = unset) into the value to use.

#ifndef IDEMKEY_RULES_VALIDATION_H_
#define IDEMKEY_RULES_VALIDATION_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "idemkey/rules/limits.h"

namespace idemkey::rules {

absl::Status ValidateTenantName(absl::string_view tenant);
absl::Status ValidateKey(const Limits& limits, absl::string_view key);
// A key prefix for listing: like a key, but may be empty.
absl::Status ValidateKeyPrefix(const Limits& limits, absl::string_view prefix);
absl::Status ValidateFingerprint(absl::string_view fingerprint);
absl::Status ValidateAttemptId(const Limits& limits,
                               absl::string_view attempt_id);

// `requested_ms` 0 means the default; otherwise it must lie in the range.
absl::StatusOr<int64_t> ResolveTtl(const Limits& limits, int64_t requested_ms);
absl::StatusOr<int64_t> ResolveLease(const Limits& limits,
                                     int64_t requested_ms);

}  // namespace idemkey::rules

#endif  // IDEMKEY_RULES_VALIDATION_H_
