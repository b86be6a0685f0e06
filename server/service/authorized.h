// authorized.h — put the bearer-token check in front of a call's work.
//
//   return StartStoreCall(
//       ctx, pool_, store_,
//       ForTenantOf(auth_, ctx, req->tenant(),
//                   [=](const store::CallOptions& options) {
//                     return api::Reserve(*store_, *req, resp, options);
//                   }));
//
// The check runs first, as part of the call's work, so a refused call never
// reaches the store and is finished (and counted) like any other. The
// wrapper passes its arguments on to `work` (a store call's CallOptions).

#ifndef IDEMKEY_SERVER_SERVICE_AUTHORIZED_H_
#define IDEMKEY_SERVER_SERVICE_AUTHORIZED_H_

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"
#include "server/auth/authorizer.h"

namespace idemkey::service {

// `work` runs only if the caller may touch `tenant`'s records.
template <typename Work>
auto ForTenantOf(const auth::Authorizer* auth, grpc::CallbackServerContext* ctx,
                 const std::string& tenant, Work work) {
  return [auth, ctx, &tenant,
          work = std::move(work)](const auto&... args) mutable {
    if (absl::Status s = auth->ForTenant(ctx->client_metadata(), tenant);
        !s.ok()) {
      return s;
    }
    return absl::Status(work(args...));
  };
}

// `work` runs only for an admin caller.
template <typename Work>
auto ForAdmin(const auth::Authorizer* auth, grpc::CallbackServerContext* ctx,
              Work work) {
  return [auth, ctx, work = std::move(work)](const auto&... args) mutable {
    if (absl::Status s = auth->ForAdmin(ctx->client_metadata()); !s.ok()) {
      return s;
    }
    return absl::Status(work(args...));
  };
}

}  // namespace idemkey::service

#endif  // IDEMKEY_SERVER_SERVICE_AUTHORIZED_H_
