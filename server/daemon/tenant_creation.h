// tenant_creation.h — who may create a tenant by Reserving in it.
//
// --auto_create_tenants=auto (the default) is safe wherever idemkeyd runs:
// with --tokens_file, a tenant token's first Reserve creates its own tenant
// (an admin token's does not: admins create tenants with `idemctl tenants
// create`); without tokens, only while idemkeyd listens on loopback, where
// every caller is on the machine. `true` lets any caller allowed on a
// tenant create it; `false` leaves it to admins.
//
//   absl::StatusOr<TenantCreation> c = ResolveTenantCreation(
//       "auto", /*auth_on=*/false, /*loopback=*/true);
//   // {.auto_create = true, .creators = TenantCreators::kAnyCaller}

#ifndef IDEMKEY_SERVER_DAEMON_TENANT_CREATION_H_
#define IDEMKEY_SERVER_DAEMON_TENANT_CREATION_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/service/key_service.h"

namespace idemkey {

struct TenantCreation {
  bool auto_create = false;  // KeyStoreOptions::auto_create_tenants
  service::TenantCreators creators = service::TenantCreators::kOwnTenantTokens;
};

// `flag` is "auto", "true" or "false"; INVALID_ARGUMENT otherwise.
absl::StatusOr<TenantCreation> ResolveTenantCreation(absl::string_view flag,
                                                     bool auth_on,
                                                     bool loopback);

}  // namespace idemkey

#endif  // IDEMKEY_SERVER_DAEMON_TENANT_CREATION_H_
