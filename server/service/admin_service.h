// admin_service.h — idemkey.v1.AdminService over a KeyStore (callback API).
//
//   AdminServiceImpl admin(&key_store, &pool, &authorizer);
//   builder.RegisterService(&admin);

#ifndef IDEMKEY_SERVER_SERVICE_ADMIN_SERVICE_H_
#define IDEMKEY_SERVER_SERVICE_ADMIN_SERVICE_H_

#include "absl/time/time.h"
#include "idemkey/v1/admin.grpc.pb.h"
#include "server/auth/authorizer.h"
#include "server/store/key_store.h"
#include "server/util/thread_pool.h"

namespace idemkey::service {

class AdminServiceImpl final
    : public idemkey::v1::AdminService::CallbackService {
 public:
  // None is owned; all must outlive the service. Every call needs an admin
  // token when auth is on.
  AdminServiceImpl(store::KeyStore* store, util::ThreadPool* pool,
                   const auth::Authorizer* auth);

  grpc::ServerUnaryReactor* ListRecords(
      grpc::CallbackServerContext* ctx,
      const idemkey::v1::ListRecordsRequest* req,
      idemkey::v1::ListRecordsResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteRecord(
      grpc::CallbackServerContext* ctx,
      const idemkey::v1::DeleteRecordRequest* req,
      idemkey::v1::DeleteRecordResponse* resp) override;
  grpc::ServerUnaryReactor* ListTenants(
      grpc::CallbackServerContext* ctx,
      const idemkey::v1::ListTenantsRequest* req,
      idemkey::v1::ListTenantsResponse* resp) override;
  grpc::ServerUnaryReactor* CreateTenant(
      grpc::CallbackServerContext* ctx,
      const idemkey::v1::CreateTenantRequest* req,
      idemkey::v1::Tenant* resp) override;
  grpc::ServerUnaryReactor* DropTenant(
      grpc::CallbackServerContext* ctx,
      const idemkey::v1::DropTenantRequest* req,
      idemkey::v1::DropTenantResponse* resp) override;
  grpc::ServerUnaryReactor* GetStats(
      grpc::CallbackServerContext* ctx, const idemkey::v1::GetStatsRequest* req,
      idemkey::v1::GetStatsResponse* resp) override;
  grpc::ServerUnaryReactor* Compact(
      grpc::CallbackServerContext* ctx, const idemkey::v1::CompactRequest* req,
      idemkey::v1::CompactResponse* resp) override;
  grpc::ServerUnaryReactor* Checkpoint(
      grpc::CallbackServerContext* ctx,
      const idemkey::v1::CheckpointRequest* req,
      idemkey::v1::CheckpointResponse* resp) override;

 private:
  store::KeyStore* const store_;
  util::ThreadPool* const pool_;
  const auth::Authorizer* const auth_;
  const absl::Time started_;
};

}  // namespace idemkey::service

#endif  // IDEMKEY_SERVER_SERVICE_ADMIN_SERVICE_H_
