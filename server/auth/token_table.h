// token_table.h — bearer tokens and who they speak for.
//
// The tokens file holds one line per token: the hex SHA-256 of the token and
// either a tenant name or the word "admin"; '#' starts a comment. Only hashes
// are stored, so the file reveals no token. `idemctl token new TENANT` prints
// a fresh token and its line.
//
//   # tokens for idemkeyd
//   9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 acme
//   60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752 admin
//
//   absl::StatusOr<std::unique_ptr<TokenTable>> table =
//       TokenTable::Load("/etc/idemkey/tokens");
//   std::optional<Principal> who = (*table)->Find(presented_token);
//
// Thread-safe; Reload swaps the whole table at once. Every lookup compares
// against every entry with CRYPTO_memcmp, so its time does not depend on
// where, or whether, the token matches.

#ifndef IDEMKEY_SERVER_AUTH_TOKEN_TABLE_H_
#define IDEMKEY_SERVER_AUTH_TOKEN_TABLE_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "idemkey/sync/mutex.h"

namespace idemkey::auth {

struct Principal {
  bool admin = false;
  std::string tenant;  // empty for admin
};

class TokenTable {
 public:
  // Reads `path`; INVALID_ARGUMENT names the first bad line (never its hash).
  static absl::StatusOr<std::unique_ptr<TokenTable>> Load(std::string path);

  // Re-reads the file; on error the current table stays in force.
  absl::Status Reload();

  // Who `token` speaks for, or nullopt.
  std::optional<Principal> Find(absl::string_view token) const;

  size_t size() const;
  const std::string& path() const { return path_; }

 private:
  struct Entry {
    std::string digest;  // 32 raw bytes
    Principal principal;
  };
  using Entries = std::vector<Entry>;

  explicit TokenTable(std::string path) : path_(std::move(path)) {}
  static absl::StatusOr<std::shared_ptr<const Entries>> Parse(
      const std::string& path);

  const std::string path_;
  mutable sync::Mutex mu_;
  // The pointer is guarded; the table it points to never changes.
  std::shared_ptr<const Entries> entries_ ABSL_GUARDED_BY(mu_);
};

// Hex SHA-256 of `token`: what a tokens-file line holds.
std::string TokenDigestHex(absl::string_view token);

}  // namespace idemkey::auth

#endif  // IDEMKEY_SERVER_AUTH_TOKEN_TABLE_H_
