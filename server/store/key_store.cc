#include "server/store/key_store.h"

#include <algorithm>
#include <type_traits>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "idemkey/rules/validation.h"
#include "server/store/page_token.h"

namespace idemkey::store {
namespace {

constexpr int32_t kDefaultPageSize = 100;
constexpr int32_t kMaxPageSize = 1000;

}  // namespace

absl::Status KeyStore::ForReader(absl::Status s) const {
  if (!options_.auto_create_tenants || !IsUnknownTenant(s)) return s;
  // With auto-create on, "create it or turn auto-create on" is no advice:
  // the tenant simply has no records yet.
  return absl::NotFoundError(absl::StrCat(
      s.message().substr(0, s.message().find(';')),
      " yet: it holds no records, and its first Reserve creates it"));
}

KeyStore::KeyStore(Backend* backend, KeyStoreOptions options)
    : backend_(backend), options_(std::move(options)) {}

absl::Status KeyStore::ValidateTenantAndKey(absl::string_view tenant,
                                            absl::string_view key) const {
  if (absl::Status s = rules::ValidateTenantName(tenant); !s.ok()) return s;
  return rules::ValidateKey(options_.limits, key);
}

template <typename Answer, typename Decide>
absl::Status KeyStore::Apply(absl::string_view tenant, absl::string_view key,
                             const CallOptions& options, bool create_tenant,
                             Decide decide, Answer* answer) {
  auto update = [&](std::optional<Record>& r) -> absl::StatusOr<WriteAction> {
    Transition<Answer> t = decide(std::move(r), options_.clock->NowMillis());
    if (!t.status.ok()) return t.status;
    if constexpr (std::is_same_v<Answer, ReserveDecision>) {
      // Issued under the key's lock, so this key's tokens only grow.
      if (t.answer.needs_new_token) {
        absl::StatusOr<uint64_t> token = backend_->NextFencingToken(options);
        if (!token.ok()) return token.status();
        IssueFencingToken(t, *token);
      }
    }
    if (t.write == WriteAction::kPut) r = std::move(t.record);
    *answer = std::move(t.answer);
    return t.write;
  };
  absl::Status s = backend_->Update(tenant, key, options, update);
  if (!create_tenant || !IsUnknownTenant(s) || !options_.auto_create_tenants) {
    return s;
  }
  absl::Status created = backend_->CreateTenant(tenant, options).status();
  if (!created.ok() && !absl::IsAlreadyExists(created)) return created;
  return backend_->Update(tenant, key, options, update);
}

absl::StatusOr<ReserveResult> KeyStore::Reserve(const ReserveArgs& args,
                                                const CallOptions& options) {
  const rules::Limits& limits = options_.limits;
  if (absl::Status s = ValidateTenantAndKey(args.tenant, args.key); !s.ok()) {
    return s;
  }
  if (absl::Status s = rules::ValidateFingerprint(args.fingerprint); !s.ok()) {
    return s;
  }
  if (absl::Status s = rules::ValidateAttemptId(limits, args.attempt_id);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<int64_t> lease_ms = rules::ResolveLease(limits, args.lease_ms);
  if (!lease_ms.ok()) return lease_ms.status();
  absl::StatusOr<int64_t> ttl_ms = rules::ResolveTtl(limits, args.ttl_ms);
  if (!ttl_ms.ok()) return ttl_ms.status();

  const ReserveIntent intent{args.fingerprint, args.attempt_id, *lease_ms,
                             *ttl_ms};
  ReserveDecision decision;
  absl::Status s = Apply(
      args.tenant, args.key, options, args.may_create_tenant,
      [&](std::optional<Record> r, int64_t now) {
        return DecideReserve(std::move(r), intent, now);
      },
      &decision);
  if (!s.ok()) return s;
  return std::move(decision.result);
}

absl::StatusOr<int64_t> KeyStore::Complete(absl::string_view tenant,
                                           absl::string_view key,
                                           uint64_t fencing_token,
                                           idemkey::v1::StoredResponse response,
                                           const CallOptions& options) {
  if (absl::Status s = ValidateTenantAndKey(tenant, key); !s.ok()) return s;
  const size_t response_bytes = response.ByteSizeLong();
  const bool too_large = response_bytes > options_.limits.max_response_bytes;
  int64_t expires_ms = 0;
  absl::Status s = Apply(
      tenant, key, options, /*create_tenant=*/false,
      // Runs once: Complete never creates a tenant, so Apply calls
      // Backend::Update once, and Update runs its function once.
      [&](std::optional<Record> r, int64_t now) {
        return DecideComplete(std::move(r), {tenant, key}, fencing_token,
                              std::move(response), too_large, now);
      },
      &expires_ms);
  if (too_large && absl::IsResourceExhausted(s)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "response for key \"", key, "\" of tenant \"", tenant, "\" is ",
        response_bytes, " bytes encoded; the limit is ",
        options_.limits.max_response_bytes,
        " bytes (status, headers and body); nothing was stored and the "
        "lease still holds: Complete again without the body "
        "(StoredResponse.body_omitted)"));
  }
  if (!s.ok()) return s;
  return expires_ms;
}

absl::Status KeyStore::Release(absl::string_view tenant, absl::string_view key,
                               uint64_t fencing_token,
                               const CallOptions& options) {
  if (absl::Status s = ValidateTenantAndKey(tenant, key); !s.ok()) return s;
  Released released;
  return Apply(
      tenant, key, options, /*create_tenant=*/false,
      [&](std::optional<Record> r, int64_t now) {
        return DecideRelease(std::move(r), {tenant, key}, fencing_token, now);
      },
      &released);
}

absl::StatusOr<int64_t> KeyStore::Heartbeat(absl::string_view tenant,
                                            absl::string_view key,
                                            uint64_t fencing_token,
                                            int64_t lease_ms,
                                            const CallOptions& options) {
  if (absl::Status s = ValidateTenantAndKey(tenant, key); !s.ok()) return s;
  absl::StatusOr<int64_t> lease =
      rules::ResolveLease(options_.limits, lease_ms);
  if (!lease.ok()) return lease.status();
  int64_t lease_expires_ms = 0;
  absl::Status s = Apply(
      tenant, key, options, /*create_tenant=*/false,
      [&](std::optional<Record> r, int64_t now) {
        return DecideHeartbeat(std::move(r), {tenant, key}, fencing_token,
                               *lease, now);
      },
      &lease_expires_ms);
  if (!s.ok()) return s;
  return lease_expires_ms;
}

absl::StatusOr<Record> KeyStore::Lookup(absl::string_view tenant,
                                        absl::string_view key,
                                        const CallOptions& options) {
  if (absl::Status s = ValidateTenantAndKey(tenant, key); !s.ok()) return s;
  absl::StatusOr<std::optional<Record>> r = backend_->Get(tenant, key, options);
  if (!r.ok()) return ForReader(r.status());
  std::optional<Record> live =
      LiveRecord(std::move(*r), options_.clock->NowMillis());
  if (!live) return NoLiveRecordError({tenant, key});
  return std::move(*live);
}

absl::StatusOr<RecordPage> KeyStore::ListRecords(const ListQuery& query) {
  if (absl::Status s = rules::ValidateTenantName(query.tenant); !s.ok()) {
    return s;
  }
  if (absl::Status s =
          rules::ValidateKeyPrefix(options_.limits, query.key_prefix);
      !s.ok()) {
    return s;
  }
  if (query.page_size < 0 || query.page_size > kMaxPageSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "page_size ", query.page_size, " is out of range; it must be 1-",
        kMaxPageSize, " (or 0 for ", kDefaultPageSize, ")"));
  }
  // The page token holds the last key of the previous page.
  std::string after;
  if (!query.page_token.empty()) {
    absl::StatusOr<std::string> last =
        DecodePageToken(query.tenant, query.key_prefix, query.page_token);
    if (!last.ok()) return last.status();
    after = std::move(*last);
  }
  const size_t page_size =
      query.page_size == 0 ? kDefaultPageSize : query.page_size;
  const int64_t now = options_.clock->NowMillis();

  RecordPage page;
  bool more = false;
  const absl::string_view start = after.empty() ? query.key_prefix : after;
  absl::Status s =
      backend_->Scan(query.tenant, query.key_prefix, start, [&](Record&& r) {
        if ((!after.empty() && r.key == after) || r.ExpiredAt(now) ||
            (query.state && r.state != *query.state)) {
          return true;
        }
        if (page.records.size() == page_size) {
          more = true;  // one more exists: there is a next page
          return false;
        }
        if (!query.include_responses) r.response.Clear();
        page.records.push_back(std::move(r));
        return true;
      });
  if (!s.ok()) return ForReader(s);
  if (more) {
    page.next_page_token = EncodePageToken(query.tenant, query.key_prefix,
                                           page.records.back().key);
  }
  return page;
}

absl::Status KeyStore::DeleteRecord(absl::string_view tenant,
                                    absl::string_view key) {
  if (absl::Status s = ValidateTenantAndKey(tenant, key); !s.ok()) return s;
  Deleted deleted;
  return Apply(
      tenant, key, CallOptions(), /*create_tenant=*/false,
      [&](std::optional<Record> r, int64_t now) {
        return DecideDelete(std::move(r), {tenant, key}, now);
      },
      &deleted);
}

absl::StatusOr<TenantInfo> KeyStore::CreateTenant(absl::string_view name) {
  if (absl::Status s = rules::ValidateTenantName(name); !s.ok()) return s;
  return backend_->CreateTenant(name, CallOptions());
}

absl::Status KeyStore::DropTenant(absl::string_view name) {
  if (absl::Status s = rules::ValidateTenantName(name); !s.ok()) return s;
  return backend_->DropTenant(name, CallOptions());
}

std::vector<TenantInfo> KeyStore::ListTenants() {
  return backend_->ListTenants();
}

absl::StatusOr<BackendStats> KeyStore::Stats() { return backend_->Stats(); }

absl::StatusOr<CompactionResult> KeyStore::Compact(absl::string_view tenant) {
  if (!tenant.empty()) {
    if (absl::Status s = rules::ValidateTenantName(tenant); !s.ok()) return s;
  }
  return backend_->Compact(tenant);
}

absl::StatusOr<uint64_t> KeyStore::Checkpoint(const std::string& dir) {
  return backend_->Checkpoint(dir);
}

}  // namespace idemkey::store
