#include "server/auth/token_table.h"

#include <openssl/crypto.h>

#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "idemkey/rules/tokens_file.h"

namespace idemkey::auth {

std::string TokenDigestHex(absl::string_view token) {
  return absl::BytesToHexString(rules::TokenDigest(token));
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
    absl::StatusOr<std::optional<rules::TokensFileEntry>> parsed =
        rules::ParseTokensFileLine(line);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, " line ", number, ": ", parsed.status().message()));
    }
    if (!parsed->has_value()) continue;
    Entry e;
    e.digest = std::move((*parsed)->digest);
    if ((*parsed)->principal == rules::kAdminPrincipal) {
      e.principal.admin = true;
    } else {
      e.principal.tenant = std::move((*parsed)->principal);
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
  sync::MutexLock lock(&mu_);
  entries_ = *std::move(parsed);
  return absl::OkStatus();
}

std::optional<Principal> TokenTable::Find(absl::string_view token) const {
  std::shared_ptr<const Entries> entries;
  {
    sync::MutexLock lock(&mu_);
    entries = entries_;
  }
  const std::string digest = rules::TokenDigest(token);
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
  sync::MutexLock lock(&mu_);
  return entries_->size();
}

}  // namespace idemkey::auth
