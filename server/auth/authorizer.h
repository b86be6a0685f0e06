// authorizer.h — who may make a call, decided from its bearer token.
//
// With no token table (auth off) every call is allowed. With one, the
// `authorization: Bearer TOKEN` metadata names a principal: a tenant token
// may touch only its tenant's records; an admin token may call everything.
// The check runs before the store is touched, so a refused caller learns
// nothing about another tenant's keys.
//
//   Authorizer auth(table.get());  // nullptr: auth off
//   absl::Status s = auth.ForTenant(ctx->client_metadata(), req->tenant());
//   absl::Status a = auth.ForAdmin(ctx->client_metadata());

#ifndef IDEMKEY_SERVER_AUTH_AUTHORIZER_H_
#define IDEMKEY_SERVER_AUTH_AUTHORIZER_H_

#include <map>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/support/string_ref.h"
#include "server/auth/token_table.h"

namespace idemkey::auth {

using ClientMetadata = std::multimap<grpc::string_ref, grpc::string_ref>;

// Thread-safe (it only reads the TokenTable, which is).
class Authorizer {
 public:
  // `tokens` is not owned; nullptr turns auth off.
  explicit Authorizer(const TokenTable* tokens) : tokens_(tokens) {}

  // UNAUTHENTICATED without a known token; PERMISSION_DENIED when the token
  // is another tenant's.
  absl::Status ForTenant(const ClientMetadata& metadata,
                         absl::string_view tenant) const;
  // PERMISSION_DENIED for a tenant token.
  absl::Status ForAdmin(const ClientMetadata& metadata) const;
  // Whether the caller's token names `tenant` itself (not an admin token,
  // which reaches every tenant): only such a caller's first Reserve creates
  // the tenant when auth is on. True when auth is off.
  bool NamesTenant(const ClientMetadata& metadata,
                   absl::string_view tenant) const;

 private:
  absl::StatusOr<Principal> Identify(const ClientMetadata& metadata) const;

  const TokenTable* const tokens_;
};

}  // namespace idemkey::auth

#endif  // IDEMKEY_SERVER_AUTH_AUTHORIZER_H_
