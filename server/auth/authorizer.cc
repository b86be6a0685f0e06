#include "server/auth/authorizer.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace idemkey::auth {

absl::StatusOr<Principal> Authorizer::Identify(
    const ClientMetadata& metadata) const {
  auto it = metadata.find("authorization");
  const absl::string_view value =
      it == metadata.end()
          ? absl::string_view()
          : absl::string_view(it->second.data(), it->second.size());
  constexpr absl::string_view kBearer = "Bearer ";
  if (!absl::StartsWith(value, kBearer)) {
    return absl::UnauthenticatedError(
        "this server requires \"authorization: Bearer TOKEN\" metadata");
  }
  std::optional<Principal> who = tokens_->Find(value.substr(kBearer.size()));
  if (!who) {
    return absl::UnauthenticatedError(
        "the bearer token is not known to this server (revoked or mistyped)");
  }
  return *who;
}

absl::Status Authorizer::ForTenant(const ClientMetadata& metadata,
                                   absl::string_view tenant) const {
  if (tokens_ == nullptr) return absl::OkStatus();
  absl::StatusOr<Principal> who = Identify(metadata);
  if (!who.ok()) return who.status();
  if (who->admin || who->tenant == tenant) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat("this token belongs to tenant \"", who->tenant,
                   "\" and cannot access another tenant's records"));
}

bool Authorizer::NamesTenant(const ClientMetadata& metadata,
                             absl::string_view tenant) const {
  if (tokens_ == nullptr) return true;
  absl::StatusOr<Principal> who = Identify(metadata);
  return who.ok() && !who->admin && who->tenant == tenant;
}

absl::Status Authorizer::ForAdmin(const ClientMetadata& metadata) const {
  if (tokens_ == nullptr) return absl::OkStatus();
  absl::StatusOr<Principal> who = Identify(metadata);
  if (!who.ok()) return who.status();
  if (who->admin) return absl::OkStatus();
  return absl::PermissionDeniedError(
      "admin calls need an admin token; this one belongs to a tenant");
}

}  // namespace idemkey::auth
