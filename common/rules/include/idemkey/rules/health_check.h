// health_check.h — the two grpc.health.v1 messages, encoded by hand.
//
// Debian ships no health.proto, and both messages are one field each, so the
// client library, idemctl and the tests encode them here instead of carrying
// a copy of the proto:
//
//   std::string request = rules::EncodeHealthCheckRequest("");  // whole server
//   absl::StatusOr<rules::ServingStatus> status =
//       rules::DecodeHealthCheckResponse(reply_bytes);

#ifndef IDEMKEY_RULES_HEALTH_CHECK_H_
#define IDEMKEY_RULES_HEALTH_CHECK_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace idemkey::rules {

// The full method name of the check.
inline constexpr char kHealthCheckMethod[] = "/grpc.health.v1.Health/Check";

// HealthCheckResponse.ServingStatus, by number.
enum class ServingStatus {
  kUnknown = 0,
  kServing = 1,
  kNotServing = 2,
  kServiceUnknown = 3,
};

// HealthCheckRequest{service}: "" asks about the whole server.
std::string EncodeHealthCheckRequest(absl::string_view service);

// DATA_LOSS when `bytes` is not a HealthCheckResponse this file knows.
absl::StatusOr<ServingStatus> DecodeHealthCheckResponse(
    absl::string_view bytes);

}  // namespace idemkey::rules

#endif  // IDEMKEY_RULES_HEALTH_CHECK_H_
