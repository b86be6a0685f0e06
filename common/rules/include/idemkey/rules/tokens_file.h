// tokens_file.h — the line format of idemkeyd's --tokens_file.
//
// One line per bearer token: the hex SHA-256 of the token, white space, and
// the principal it speaks for (a tenant name or the word "admin"); '#' starts
// a comment. Only digests are stored, so the file reveals no token. idemkeyd
// parses it (server/auth/token_table.h); `idemctl token new` writes lines.
//
//   std::string line = rules::TokensFileLine("idk_...", "acme");
//   // "9f86d0...0a08 acme"
//   absl::StatusOr<std::optional<rules::TokensFileEntry>> e =
//       rules::ParseTokensFileLine(line);

#ifndef IDEMKEY_RULES_TOKENS_FILE_H_
#define IDEMKEY_RULES_TOKENS_FILE_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace idemkey::rules {

// The principal that may call every tenant and the admin service.
inline constexpr absl::string_view kAdminPrincipal = "admin";

struct TokensFileEntry {
  std::string digest;     // SHA-256 of the token, 32 raw bytes
  std::string principal;  // a valid tenant name, or kAdminPrincipal
};

// SHA-256 of `token`, 32 raw bytes.
std::string TokenDigest(absl::string_view token);

// The line for `token`. `principal` must be a tenant name or "admin".
std::string TokensFileLine(absl::string_view token,
                           absl::string_view principal);

// nullopt for a blank or comment-only line; INVALID_ARGUMENT saying what is
// wrong otherwise (never echoing the digest, which is as good as secret).
absl::StatusOr<std::optional<TokensFileEntry>> ParseTokensFileLine(
    absl::string_view line);

}  // namespace idemkey::rules

#endif  // IDEMKEY_RULES_TOKENS_FILE_H_
