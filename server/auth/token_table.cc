#include "server/auth/token_table.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/store/validation.h"

namespace idemkey::auth {
namespace {

std::string Digest(absl::string_view token) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), d);
  return std::string(reinterpret_cast<const char*>(d), sizeof d);
}

}  // namespace

std::string TokenDigestHex(absl::string_view token) {
  return absl::BytesToHexString(Digest(token));
}

absl::StatusOr<std::shared_ptr<const TokenTable::Entries>> TokenTable::Parse(
    const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read --tokens_file \"", path, "\""));
  }
  auto entries = std::make_shared<Entries>();
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    absl::string_view content = line;
    content = content.substr(0, content.find('#'));
    std::vector<absl::string_view> fields =
        absl::StrSplit(content, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.empty()) continue;
    const std::string where = absl::StrCat(path, " line ", number);
    if (fields.size() != 2 || fields[0].size() != 64 ||
        !std::all_of(fields[0].begin(), fields[0].end(),
                     [](char c) { return absl::ascii_isxdigit(c); })) {
      return absl::InvalidArgumentError(absl::StrCat(
          where,
          ": expected \"SHA256HEX TENANT\" or \"SHA256HEX admin\" (64 hex "
          "digits, a space, a name)"));
    }
    Entry e;
    e.digest = absl::HexStringToBytes(absl::AsciiStrToLower(fields[0]));
    if (fields[1] == "admin") {
      e.principal.admin = true;
    } else if (absl::Status s = store::ValidateTenantName(fields[1]); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", s.message()));
    } else {
      e.principal.tenant = std::string(fields[1]);
    }
    entries->push_back(std::move(e));
  }
  return std::shared_ptr<const Entries>(std::move(entries));
}

absl::StatusOr<std::unique_ptr<TokenTable>> TokenTable::Load(std::string path) {
  std::unique_ptr<TokenTable> table(new TokenTable(std::move(path)));
  if (absl::Status s = table->Reload(); !s.ok()) return s;
  return table;
}

absl::Status TokenTable::Reload() {
  absl::StatusOr<std::shared_ptr<const Entries>> parsed = Parse(path_);
  if (!parsed.ok()) return parsed.status();
  std::lock_guard<std::mutex> lock(mu_);
  entries_ = *std::move(parsed);
  return absl::OkStatus();
}

std::optional<Principal> TokenTable::Find(absl::string_view token) const {
  std::shared_ptr<const Entries> entries;
  {
    std::lock_guard<std::mutex> lock(mu_);
    entries = entries_;
  }
  const std::string digest = Digest(token);
  const Entry* match = nullptr;
  for (const Entry& e : *entries) {
    // No early exit: the time is the same wherever the match is.
    if (CRYPTO_memcmp(e.digest.data(), digest.data(), digest.size()) == 0) {
      match = &e;
    }
  }
  if (match == nullptr) return std::nullopt;
  return match->principal;
}

size_t TokenTable::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_->size();
}

}  // namespace idemkey::auth
