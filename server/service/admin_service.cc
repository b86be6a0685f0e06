#include "server/service/admin_service.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/api/convert.h"
#include "server/service/authorized.h"
#include "server/service/store_call.h"

namespace idemkey::service {
namespace {

idemkey::v1::Tenant ToProto(const store::TenantInfo& info) {
  idemkey::v1::Tenant t;
  t.set_name(info.name);
  *t.mutable_created_at() = api::ToTimestamp(info.created_ms);
  return t;
}

}  // namespace

AdminServiceImpl::AdminServiceImpl(store::KeyStore* store,
                                   util::ThreadPool* pool,
                                   const auth::Authorizer* auth)
    : store_(store), pool_(pool), auth_(auth), started_(absl::Now()) {}

grpc::ServerUnaryReactor* AdminServiceImpl::ListRecords(
    grpc::CallbackServerContext* ctx,
    const idemkey::v1::ListRecordsRequest* req,
    idemkey::v1::ListRecordsResponse* resp) {
  return RunOnPool(
      ctx, pool_, store_, ForAdmin(auth_, ctx, [this, req, resp] {
        std::optional<store::RecordState> state;
        switch (req->state()) {
          case idemkey::v1::STATE_UNSPECIFIED:
            break;
          case idemkey::v1::STATE_IN_PROGRESS:
            state = store::RecordState::kInProgress;
            break;
          case idemkey::v1::STATE_COMPLETED:
            state = store::RecordState::kCompleted;
            break;
          default:
            return absl::InvalidArgumentError(
                absl::StrCat("state ", req->state(),
                             " is unknown; use STATE_IN_PROGRESS, "
                             "STATE_COMPLETED or leave it unset for every "
                             "state"));
        }
        absl::StatusOr<store::RecordPage> page = store_->ListRecords({
            .tenant = req->tenant(),
            .key_prefix = req->key_prefix(),
            .state = state,
            .page_size = req->page_size(),
            .page_token = req->page_token(),
            .include_responses = req->include_responses(),
        });
        if (!page.ok()) return page.status();
        for (store::Record& r : page->records) {
          idemkey::v1::Record* out = resp->add_records();
          *out = api::ToProto(std::move(r));
          if (!req->include_responses()) out->clear_response();
        }
        resp->set_next_page_token(std::move(page->next_page_token));
        return absl::OkStatus();
      }));
}

grpc::ServerUnaryReactor* AdminServiceImpl::DeleteRecord(
    grpc::CallbackServerContext* ctx,
    const idemkey::v1::DeleteRecordRequest* req,
    idemkey::v1::DeleteRecordResponse* /*resp*/) {
  return RunOnPool(ctx, pool_, store_, ForAdmin(auth_, ctx, [this, req] {
                     return store_->DeleteRecord(req->tenant(), req->key());
                   }));
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListTenants(
    grpc::CallbackServerContext* ctx,
    const idemkey::v1::ListTenantsRequest* /*req*/,
    idemkey::v1::ListTenantsResponse* resp) {
  return RunOnPool(ctx, pool_, store_, ForAdmin(auth_, ctx, [this, resp] {
                     for (const store::TenantInfo& t : store_->ListTenants()) {
                       *resp->add_tenants() = ToProto(t);
                     }
                     return absl::OkStatus();
                   }));
}

grpc::ServerUnaryReactor* AdminServiceImpl::CreateTenant(
    grpc::CallbackServerContext* ctx,
    const idemkey::v1::CreateTenantRequest* req, idemkey::v1::Tenant* resp) {
  return RunOnPool(ctx, pool_, store_, ForAdmin(auth_, ctx, [this, req, resp] {
                     absl::StatusOr<store::TenantInfo> created =
                         store_->CreateTenant(req->name());
                     if (!created.ok()) return created.status();
                     *resp = ToProto(*created);
                     return absl::OkStatus();
                   }));
}

grpc::ServerUnaryReactor* AdminServiceImpl::DropTenant(
    grpc::CallbackServerContext* ctx, const idemkey::v1::DropTenantRequest* req,
    idemkey::v1::DropTenantResponse* /*resp*/) {
  return RunOnPool(ctx, pool_, store_, ForAdmin(auth_, ctx, [this, req] {
                     return store_->DropTenant(req->name());
                   }));
}

grpc::ServerUnaryReactor* AdminServiceImpl::GetStats(
    grpc::CallbackServerContext* ctx,
    const idemkey::v1::GetStatsRequest* /*req*/,
    idemkey::v1::GetStatsResponse* resp) {
  return RunOnPool(
      ctx, pool_, store_, ForAdmin(auth_, ctx, [this, resp] {
        absl::StatusOr<store::BackendStats> stats = store_->Stats();
        if (!stats.ok()) return stats.status();
        uint64_t disk = 0, memtables = 0;
        for (const store::TenantStats& t : stats->tenants) {
          idemkey::v1::TenantStats* out = resp->add_tenants();
          out->set_name(t.name);
          out->set_estimated_records(t.estimated_records);
          out->set_disk_bytes(t.disk_bytes);
          out->set_memtable_bytes(t.memtable_bytes);
          disk += t.disk_bytes;
          memtables += t.memtable_bytes;
        }
        resp->set_tenant_count(static_cast<uint32_t>(stats->tenants.size()));
        resp->set_max_tenants(static_cast<uint32_t>(stats->max_tenants));
        resp->set_total_disk_bytes(disk);
        resp->set_wal_bytes(stats->wal_bytes);
        resp->set_block_cache_usage_bytes(stats->block_cache_usage_bytes);
        resp->set_block_cache_capacity_bytes(stats->block_cache_capacity_bytes);
        resp->set_memtable_bytes(memtables);
        resp->set_compaction_pending(stats->compaction_pending);
        resp->set_pending_compaction_bytes(stats->pending_compaction_bytes);
        resp->set_expired_records_dropped(stats->expired_records_dropped);
        resp->set_uptime_seconds(static_cast<uint64_t>(
            absl::ToInt64Seconds(absl::Now() - started_)));
        return absl::OkStatus();
      }));
}

grpc::ServerUnaryReactor* AdminServiceImpl::Checkpoint(
    grpc::CallbackServerContext* ctx, const idemkey::v1::CheckpointRequest* req,
    idemkey::v1::CheckpointResponse* resp) {
  return RunOnPool(
      ctx, pool_, store_, ForAdmin(auth_, ctx, [this, req, resp] {
        absl::StatusOr<uint64_t> bytes = store_->Checkpoint(req->directory());
        if (!bytes.ok()) return bytes.status();
        resp->set_directory(req->directory());
        resp->set_bytes(*bytes);
        resp->set_tenants(static_cast<uint32_t>(store_->ListTenants().size()));
        return absl::OkStatus();
      }));
}

grpc::ServerUnaryReactor* AdminServiceImpl::Compact(
    grpc::CallbackServerContext* ctx, const idemkey::v1::CompactRequest* req,
    idemkey::v1::CompactResponse* resp) {
  return RunOnPool(
      ctx, pool_, store_, ForAdmin(auth_, ctx, [this, req, resp] {
        absl::StatusOr<store::CompactionResult> r =
            store_->Compact(req->tenant());
        if (!r.ok()) return r.status();
        resp->set_tenants(r->tenants);
        resp->set_disk_bytes_before(r->disk_bytes_before);
        resp->set_disk_bytes_after(r->disk_bytes_after);
        resp->set_expired_records_dropped(r->expired_records_dropped);
        return absl::OkStatus();
      }));
}

}  // namespace idemkey::service
