// limits.h — the bounds of every value a caller can send (docs/semantics.md,
// "Limits").
//
//   Limits limits;                        // the documented defaults
//   limits.max_response_bytes = 1 << 20;  // idemkeyd --max_response_bytes
//
// All durations are milliseconds.

#ifndef IDEMKEY_RULES_LIMITS_H_
#define IDEMKEY_RULES_LIMITS_H_

#include <cstddef>
#include <cstdint>

namespace idemkey::rules {

struct Limits {
  // Idempotency-Key length in bytes; every byte printable ASCII (0x21-0x7E).
  size_t max_key_bytes = 256;
  // Attempt id length in bytes; printable ASCII like keys.
  size_t max_attempt_id_bytes = 128;
  // Encoded size of a stored response (status, headers and body).
  size_t max_response_bytes = 4 << 20;

  // Retention after completion.
  int64_t default_ttl_ms = 24 * 3600 * 1000LL;
  int64_t min_ttl_ms = 60 * 1000LL;
  int64_t max_ttl_ms = 30 * 24 * 3600 * 1000LL;

  // Lease of one attempt, renewable by Heartbeat.
  int64_t default_lease_ms = 30 * 1000LL;
  int64_t min_lease_ms = 1000;
  int64_t max_lease_ms = 3600 * 1000LL;
};

// Length of a SHA-256 fingerprint.
inline constexpr size_t kFingerprintBytes = 32;

// Tenant names: 1-64 of [a-z0-9._-], starting with a letter or digit.
inline constexpr size_t kMaxTenantNameBytes = 64;

}  // namespace idemkey::rules

#endif  // IDEMKEY_RULES_LIMITS_H_
