#include "idemkey/rules/validation.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"

namespace idemkey::rules {
namespace {

// Quotes at most 40 bytes of `value`, escaping what is not printable, so an
// error message stays short and safe to log.
std::string Excerpt(absl::string_view value) {
  constexpr size_t kMax = 40;
  std::string out = "\"";
  for (size_t i = 0; i < value.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      absl::StrAppendFormat(&out, "\\x%02x", c);
    }
  }
  out += value.size() > kMax ? "\"..." : "\"";
  return out;
}

bool IsPrintableAscii(absl::string_view s, size_t* bad_index) {
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x21 || c > 0x7e) {
      *bad_index = i;
      return false;
    }
  }
  return true;
}

absl::Status ValidatePrintable(absl::string_view field, absl::string_view value,
                               size_t min_bytes, size_t max_bytes) {
  const std::string rule =
      absl::StrFormat("it must be %d-%d bytes of printable ASCII (0x21-0x7E)",
                      min_bytes, max_bytes);
  if (value.size() < min_bytes || value.size() > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s is %d bytes; %s", field, value.size(), rule));
  }
  size_t bad = 0;
  if (!IsPrintableAscii(value, &bad)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s %s has byte 0x%02x at offset %d; %s", field, Excerpt(value),
        static_cast<unsigned char>(value[bad]), bad, rule));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ResolveDuration(absl::string_view field,
                                        int64_t requested_ms,
                                        int64_t default_ms, int64_t min_ms,
                                        int64_t max_ms) {
  if (requested_ms == 0) return default_ms;
  if (requested_ms < min_ms || requested_ms > max_ms) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " of ", absl::FormatDuration(absl::Milliseconds(requested_ms)),
        " is out of range; it must be between ",
        absl::FormatDuration(absl::Milliseconds(min_ms)), " and ",
        absl::FormatDuration(absl::Milliseconds(max_ms)),
        " (or unset for the default of ",
        absl::FormatDuration(absl::Milliseconds(default_ms)), ")"));
  }
  return requested_ms;
}

}  // namespace

absl::Status ValidateTenantName(absl::string_view tenant) {
  constexpr char kRule[] =
      "a tenant name is 1-64 characters of [a-z0-9._-] starting with a "
      "letter or digit";
  if (tenant.empty() || tenant.size() > kMaxTenantNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("tenant name is ", tenant.size(), " bytes; ", kRule));
  }
  if (!absl::ascii_islower(tenant[0]) && !absl::ascii_isdigit(tenant[0])) {
    return absl::InvalidArgumentError(
        absl::StrCat("tenant name ", Excerpt(tenant),
                     " starts with a bad character; ", kRule));
  }
  for (char c : tenant) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '.' &&
        c != '_' && c != '-') {
      return absl::InvalidArgumentError(absl::StrCat(
          "tenant name ", Excerpt(tenant), " has a bad character; ", kRule));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateKey(const Limits& limits, absl::string_view key) {
  return ValidatePrintable("key", key, 1, limits.max_key_bytes);
}

absl::Status ValidateKeyPrefix(const Limits& limits, absl::string_view prefix) {
  return ValidatePrintable("key prefix", prefix, 0, limits.max_key_bytes);
}

absl::Status ValidateFingerprint(absl::string_view fingerprint) {
  if (fingerprint.size() != kFingerprintBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "fingerprint is %d bytes; it must be the 32-byte SHA-256 of the "
        "request",
        fingerprint.size()));
  }
  return absl::OkStatus();
}

absl::Status ValidateAttemptId(const Limits& limits,
                               absl::string_view attempt_id) {
  return ValidatePrintable("attempt_id", attempt_id, 1,
                           limits.max_attempt_id_bytes);
}

absl::StatusOr<int64_t> ResolveTtl(const Limits& limits, int64_t requested_ms) {
  return ResolveDuration("ttl", requested_ms, limits.default_ttl_ms,
                         limits.min_ttl_ms, limits.max_ttl_ms);
}

absl::StatusOr<int64_t> ResolveLease(const Limits& limits,
                                     int64_t requested_ms) {
  return ResolveDuration("lease", requested_ms, limits.default_lease_ms,
                         limits.min_lease_ms, limits.max_lease_ms);
}

}  // namespace idemkey::rules
