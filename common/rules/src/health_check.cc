#include "idemkey/rules/health_check.h"

namespace idemkey::rules {

std::string EncodeHealthCheckRequest(absl::string_view service) {
  // Field 1, length-delimited: 0x0a, a varint length, the bytes. An empty
  // string is the default value and is not encoded at all.
  std::string out;
  if (service.empty()) return out;
  out.push_back(0x0a);
  for (size_t n = service.size();; n >>= 7) {
    if (n < 0x80) {
      out.push_back(static_cast<char>(n));
      break;
    }
    out.push_back(static_cast<char>((n & 0x7f) | 0x80));
  }
  out.append(service.data(), service.size());
  return out;
}

absl::StatusOr<ServingStatus> DecodeHealthCheckResponse(
    absl::string_view bytes) {
  // Field 1 as a varint: 0x08 N; status 0 is the default and is omitted.
  if (bytes.empty()) return ServingStatus::kUnknown;
  if (bytes.size() != 2 || bytes[0] != 0x08 || bytes[1] < 0 || bytes[1] > 3) {
    return absl::DataLossError(
        "the grpc.health.v1 reply is not a HealthCheckResponse with a known "
        "status");
  }
  return static_cast<ServingStatus>(bytes[1]);
}

}  // namespace idemkey::rules
