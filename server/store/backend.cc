#include "server/store/backend.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace idemkey::store {
namespace {

// Marks UnknownTenantError, so that a missing tenant is told from a missing
// record (both NOT_FOUND to the client).
constexpr char kUnknownTenantPayload[] = "idemkey.store/unknown-tenant";
constexpr char kTenantCapPayload[] = "idemkey.store/tenant-cap";

}  // namespace

absl::Status UnknownTenantError(absl::string_view tenant) {
  absl::Status s = absl::NotFoundError(absl::StrCat(
      "tenant \"", tenant,
      "\" does not exist; create it (admin CreateTenant, `idemctl tenants "
      "create`) or run idemkeyd with --auto_create_tenants"));
  s.SetPayload(kUnknownTenantPayload, absl::Cord());
  return s;
}

bool IsUnknownTenant(const absl::Status& status) {
  return status.GetPayload(kUnknownTenantPayload).has_value();
}

absl::Status TenantCapError(absl::string_view tenant, size_t max_tenants) {
  absl::Status s = absl::ResourceExhaustedError(absl::StrCat(
      "cannot create tenant \"", tenant, "\": the server holds its maximum of ",
      max_tenants,
      " tenants; drop unused tenants or raise --max_tenants (see README, "
      "\"Tenants\")"));
  s.SetPayload(kTenantCapPayload, absl::Cord());
  return s;
}

bool IsTenantCap(const absl::Status& status) {
  return status.GetPayload(kTenantCapPayload).has_value();
}

}  // namespace idemkey::store
