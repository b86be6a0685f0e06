#include "server/store/backend.h"

#include "absl/strings/str_cat.h"

namespace idemkey::store {

absl::Status UnknownTenantError(absl::string_view tenant) {
  return absl::NotFoundError(absl::StrCat(
      "tenant \"", tenant,
      "\" does not exist; create it (admin CreateTenant, `idemctl tenants "
      "create`) or run idemkeyd with --auto_create_tenants"));
}

absl::Status TenantCapError(absl::string_view tenant, size_t max_tenants) {
  return absl::ResourceExhaustedError(absl::StrCat(
      "cannot create tenant \"", tenant, "\": the server holds its maximum of ",
      max_tenants,
      " tenants; drop unused tenants or raise --max_tenants (see README, "
      "\"Tenants\")"));
}

}  // namespace idemkey::store
