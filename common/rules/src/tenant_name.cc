#include "idemkey/rules/tenant_name.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "idemkey/rules/limits.h"
#include "idemkey/rules/tokens_file.h"
#include "idemkey/rules/validation.h"

namespace idemkey::rules {
namespace {

constexpr size_t kHashHex = 16;
// The readable part: room for "--" and the hash within the name limit.
constexpr size_t kMaxReadable = kMaxTenantNameBytes - 2 - kHashHex;

bool LooksMapped(absl::string_view name) {
  if (name.size() < kHashHex + 2) return false;
  const absl::string_view tail = name.substr(name.size() - kHashHex - 2);
  if (tail.substr(0, 2) != "--") return false;
  for (char c : tail.substr(2)) {
    if (!absl::ascii_isdigit(c) && !(c >= 'a' && c <= 'f')) return false;
  }
  return true;
}

}  // namespace

std::string TenantNameFor(absl::string_view org_id) {
  if (org_id.empty()) return "";  // no organisation, no tenant
  if (ValidateTenantName(org_id).ok() && !LooksMapped(org_id)) {
    return std::string(org_id);
  }
  // Lowercase letters and digits kept, every other run of bytes one '-'.
  std::string readable;
  for (char c : org_id) {
    const char lower = absl::ascii_tolower(c);
    if (absl::ascii_isalnum(static_cast<unsigned char>(lower)) &&
        static_cast<unsigned char>(c) < 0x80) {
      readable += lower;
    } else if (!readable.empty() && readable.back() != '-') {
      readable += '-';
    }
    if (readable.size() == kMaxReadable) break;
  }
  while (!readable.empty() && readable.back() == '-') readable.pop_back();
  if (readable.empty()) readable = "org";  // nothing readable: "   ", "☕"
  const std::string hash =
      absl::BytesToHexString(TokenDigest(org_id)).substr(0, kHashHex);
  return absl::StrCat(readable, "--", hash);
}

}  // namespace idemkey::rules
