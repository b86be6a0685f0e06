// libFuzzer target: validation of caller-supplied values.
//
// Never crashes, and each check accepts exactly what the rules of README.md
// "Errors" accept (checked against an independent statement of the rule):
// keys and attempt ids 1-N bytes of printable ASCII (0x21-0x7E), key prefixes
// the same but may be empty, tenants 1-64 of [a-z0-9._-] starting with a
// letter or digit, fingerprints 32 bytes; ResolveTtl/ResolveLease map 0 to
// the default and accept exactly the values in range. Rejections are
// INVALID_ARGUMENT with a message.

#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "idemkey/rules/limits.h"
#include "idemkey/rules/validation.h"

namespace {

using idemkey::rules::Limits;

void Fail(const char* what, const std::string& value) {
  std::fprintf(stderr, "validation_fuzz: %s (value of %zu bytes)\n", what,
               value.size());
  std::abort();
}

bool Printable(const std::string& s) {
  for (unsigned char c : s) {
    if (c < 0x21 || c > 0x7E) return false;
  }
  return true;
}

bool TenantRule(const std::string& s) {
  if (s.empty() || s.size() > idemkey::rules::kMaxTenantNameBytes) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) return false;
  }
  return true;
}

// OK, or INVALID_ARGUMENT with a message; and it agrees with `rule`.
void Check(const char* name, const absl::Status& s, bool rule,
           const std::string& value) {
  if (!s.ok() &&
      (s.code() != absl::StatusCode::kInvalidArgument || s.message().empty())) {
    Fail(name, value);
  }
  if (s.ok() != rule) Fail(name, value);
}

void CheckResolve(const char* name, const absl::StatusOr<int64_t>& r,
                  int64_t requested, int64_t def, int64_t lo, int64_t hi) {
  const bool rule = requested == 0 || (requested >= lo && requested <= hi);
  if (r.ok() != rule) Fail(name, std::to_string(requested));
  if (!r.ok()) {
    if (r.status().code() != absl::StatusCode::kInvalidArgument) {
      Fail(name, std::to_string(requested));
    }
    return;
  }
  if (*r != (requested == 0 ? def : requested)) {
    Fail(name, std::to_string(requested));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  Limits limits;
  if (in.ConsumeBool()) {
    limits.max_key_bytes = in.ConsumeIntegralInRange<size_t>(1, 512);
    limits.max_attempt_id_bytes = in.ConsumeIntegralInRange<size_t>(1, 256);
  }
  const int64_t ttl = in.ConsumeIntegral<int64_t>();
  const int64_t lease = in.ConsumeIntegral<int64_t>();
  const std::string a = in.ConsumeRandomLengthString(600);
  const std::string b = in.ConsumeRemainingBytesAsString();

  for (const std::string* s : {&a, &b}) {
    const bool printable = Printable(*s);
    Check("ValidateKey", idemkey::rules::ValidateKey(limits, *s),
          !s->empty() && s->size() <= limits.max_key_bytes && printable, *s);
    Check("ValidateKeyPrefix", idemkey::rules::ValidateKeyPrefix(limits, *s),
          s->size() <= limits.max_key_bytes && printable, *s);
    Check("ValidateAttemptId", idemkey::rules::ValidateAttemptId(limits, *s),
          !s->empty() && s->size() <= limits.max_attempt_id_bytes && printable,
          *s);
    Check("ValidateTenantName", idemkey::rules::ValidateTenantName(*s),
          TenantRule(*s), *s);
    Check("ValidateFingerprint", idemkey::rules::ValidateFingerprint(*s),
          s->size() == idemkey::rules::kFingerprintBytes, *s);
  }
  CheckResolve("ResolveTtl", idemkey::rules::ResolveTtl(limits, ttl), ttl,
               limits.default_ttl_ms, limits.min_ttl_ms, limits.max_ttl_ms);
  CheckResolve("ResolveLease", idemkey::rules::ResolveLease(limits, lease),
               lease, limits.default_lease_ms, limits.min_lease_ms,
               limits.max_lease_ms);
  return 0;
}
