#include "idemkey/rules/tokens_file.h"

#include <openssl/sha.h>

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "idemkey/rules/validation.h"

namespace idemkey::rules {

std::string TokenDigest(absl::string_view token) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), d);
  return std::string(reinterpret_cast<const char*>(d), sizeof d);
}

std::string TokensFileLine(absl::string_view token,
                           absl::string_view principal) {
  return absl::StrCat(absl::BytesToHexString(TokenDigest(token)), " ",
                      principal);
}

absl::StatusOr<std::optional<TokensFileEntry>> ParseTokensFileLine(
    absl::string_view line) {
  const absl::string_view content = line.substr(0, line.find('#'));
  std::vector<absl::string_view> fields =
      absl::StrSplit(content, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (fields.empty()) return std::nullopt;
  if (fields.size() != 2 || fields[0].size() != 2 * SHA256_DIGEST_LENGTH ||
      !std::all_of(fields[0].begin(), fields[0].end(),
                   [](char c) { return absl::ascii_isxdigit(c); })) {
    return absl::InvalidArgumentError(
        "expected \"SHA256HEX TENANT\" or \"SHA256HEX admin\" (64 hex "
        "digits, a space, a name)");
  }
  TokensFileEntry entry;
  entry.digest = absl::HexStringToBytes(absl::AsciiStrToLower(fields[0]));
  if (fields[1] != kAdminPrincipal) {
    if (absl::Status s = ValidateTenantName(fields[1]); !s.ok()) return s;
  }
  entry.principal = std::string(fields[1]);
  return entry;
}

}  // namespace idemkey::rules
