#include "server/daemon/tenant_creation.h"

#include "absl/strings/str_cat.h"

namespace idemkey {

absl::StatusOr<TenantCreation> ResolveTenantCreation(absl::string_view flag,
                                                     bool auth_on,
                                                     bool loopback) {
  using service::TenantCreators;
  if (flag == "false") return TenantCreation{false, TenantCreators::kAnyCaller};
  if (flag == "true") return TenantCreation{true, TenantCreators::kAnyCaller};
  if (flag != "auto") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--auto_create_tenants is auto, true or false, not \"", flag, "\""));
  }
  if (auth_on) return TenantCreation{true, TenantCreators::kOwnTenantTokens};
  return TenantCreation{loopback, TenantCreators::kAnyCaller};
}

}  // namespace idemkey
