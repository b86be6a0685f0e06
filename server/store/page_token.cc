#include "server/store/page_token.h"

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "idemkey/rules/tokens_file.h"

namespace idemkey::store {
namespace {

constexpr size_t kCheckBytes = 8;

std::string Check(absl::string_view tenant, absl::string_view prefix,
                  absl::string_view last_key) {
  // NUL separates the parts: no tenant, prefix or key contains one.
  return rules::TokenDigest(absl::StrCat("idemkey.page.v1",
                                         std::string(1, '\0'), tenant,
                                         std::string(1, '\0'), prefix,
                                         std::string(1, '\0'), last_key))
      .substr(0, kCheckBytes);
}

}  // namespace

std::string EncodePageToken(absl::string_view tenant, absl::string_view prefix,
                            absl::string_view last_key) {
  return absl::WebSafeBase64Escape(
      absl::StrCat(last_key, Check(tenant, prefix, last_key)));
}

absl::StatusOr<std::string> DecodePageToken(absl::string_view tenant,
                                            absl::string_view prefix,
                                            absl::string_view token) {
  std::string raw;
  if (absl::WebSafeBase64Unescape(token, &raw) && raw.size() > kCheckBytes) {
    const std::string key = raw.substr(0, raw.size() - kCheckBytes);
    if (absl::StartsWith(key, prefix) &&
        raw.substr(key.size()) == Check(tenant, prefix, key)) {
      return key;
    }
  }
  return absl::InvalidArgumentError(
      "page_token is not one this server returned for this tenant and "
      "key_prefix; pass next_page_token unchanged");
}

}  // namespace idemkey::store
