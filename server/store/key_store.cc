#include "server/store/key_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/store/validation.h"

namespace idemkey::store {
namespace {

constexpr int32_t kDefaultPageSize = 100;
constexpr int32_t kMaxPageSize = 1000;

std::string Rfc3339(int64_t unix_ms) {
  return absl::FormatTime(absl::RFC3339_full, absl::FromUnixMillis(unix_ms),
                          absl::UTCTimeZone());
}

std::string Where(absl::string_view tenant, absl::string_view key) {
  return absl::StrCat("key \"", key, "\" of tenant \"", tenant, "\"");
}

absl::Status NoLiveRecord(absl::string_view tenant, absl::string_view key) {
  return absl::NotFoundError(absl::StrCat(
      "no record for ", Where(tenant, key),
      ": it was never reserved, was released or deleted, or has expired"));
}

// OK when `token` holds the live lease of the in-progress record `r`.
absl::Status CheckLeaseHolder(const std::optional<Record>& r,
                              absl::string_view tenant, absl::string_view key,
                              uint64_t token, int64_t now_ms) {
  if (!r) return NoLiveRecord(tenant, key);
  if (r->fencing_token != token) {
    return absl::AbortedError(
        absl::StrCat("fencing token ", token, " no longer holds the lease of ",
                     Where(tenant, key), ": another attempt took over (token ",
                     r->fencing_token, ")"));
  }
  if (r->state == RecordState::kCompleted) {
    return absl::FailedPreconditionError(absl::StrCat(
        Where(tenant, key),
        " is already completed; its response is final (an admin can "
        "DeleteRecord it)"));
  }
  if (!r->LeaseLiveAt(now_ms)) {
    return absl::AbortedError(absl::StrCat(
        "the lease of fencing token ", token, " on ", Where(tenant, key),
        " expired at ", Rfc3339(r->lease_expires_ms),
        "; Reserve again (and Heartbeat during long requests)"));
  }
  return absl::OkStatus();
}

// Reads treat an expired record as absent at once, before compaction drops it.
void ForgetIfExpired(std::optional<Record>& r, int64_t now_ms) {
  if (r && r->ExpiredAt(now_ms)) r.reset();
}

}  // namespace

KeyStore::KeyStore(Backend* backend, KeyStoreOptions options)
    : backend_(backend), options_(std::move(options)) {}

absl::Status KeyStore::ValidateTenantAndKey(absl::string_view tenant,
                                            absl::string_view key) const {
  if (absl::Status s = ValidateTenantName(tenant); !s.ok()) return s;
  return ValidateKey(options_.limits, key);
}

absl::Status KeyStore::UpdateCreatingTenant(absl::string_view tenant,
                                            absl::string_view key,
                                            Backend::UpdateFn fn) {
  absl::Status s = backend_->Update(tenant, key, fn);
  // Update's callbacks in this file never answer NOT_FOUND for Reserve, so
  // NOT_FOUND here means the tenant is missing.
  if (!absl::IsNotFound(s) || !options_.auto_create_tenants) return s;
  absl::Status created = backend_->CreateTenant(tenant).status();
  if (!created.ok() && !absl::IsAlreadyExists(created)) return created;
  return backend_->Update(tenant, key, fn);
}

absl::StatusOr<ReserveResult> KeyStore::Reserve(const ReserveArgs& args) {
  const Limits& limits = options_.limits;
  if (absl::Status s = ValidateTenantAndKey(args.tenant, args.key); !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidateFingerprint(args.fingerprint); !s.ok()) return s;
  if (absl::Status s = ValidateAttemptId(limits, args.attempt_id); !s.ok()) {
    return s;
  }
  absl::StatusOr<int64_t> lease_ms = ResolveLease(limits, args.lease_ms);
  if (!lease_ms.ok()) return lease_ms.status();
  absl::StatusOr<int64_t> ttl_ms = ResolveTtl(limits, args.ttl_ms);
  if (!ttl_ms.ok()) return ttl_ms.status();

  ReserveResult result;
  auto decide = [&](std::optional<Record>& r) -> absl::StatusOr<WriteAction> {
    const int64_t now = options_.clock->NowMillis();
    ForgetIfExpired(r, now);
    // Takes the lease for this attempt; `r` is the record to write.
    auto take_lease = [&](uint64_t token) {
      r->fencing_token = token;
      r->attempt_id = std::string(args.attempt_id);
      r->lease_expires_ms = now + *lease_ms;
      r->expires_ms = std::max(r->expires_ms, r->lease_expires_ms);
      result.outcome = ReserveOutcome::kOwner;
      result.fencing_token = token;
      result.lease_expires_ms = r->lease_expires_ms;
      result.expires_ms = r->expires_ms;
    };

    if (!r) {
      absl::StatusOr<uint64_t> token = backend_->NextFencingToken();
      if (!token.ok()) return token.status();
      r.emplace();
      r->state = RecordState::kInProgress;
      r->fingerprint = std::string(args.fingerprint);
      r->created_ms = now;
      r->ttl_ms = *ttl_ms;
      r->expires_ms = now + *ttl_ms;
      take_lease(*token);
      return WriteAction::kPut;
    }
    if (r->fingerprint != args.fingerprint) {
      result.outcome = ReserveOutcome::kMismatch;
      return WriteAction::kNone;
    }
    if (r->state == RecordState::kCompleted) {
      result.outcome = ReserveOutcome::kCompleted;
      result.expires_ms = r->expires_ms;
      result.response = std::move(r->response);
      return WriteAction::kNone;
    }
    if (r->attempt_id == args.attempt_id) {
      // The same attempt again: its first reply was lost. Same token; a lapsed
      // lease is renewed since nobody else took it meanwhile.
      if (r->LeaseLiveAt(now)) {
        result.outcome = ReserveOutcome::kOwner;
        result.fencing_token = r->fencing_token;
        result.lease_expires_ms = r->lease_expires_ms;
        result.expires_ms = r->expires_ms;
        return WriteAction::kNone;
      }
      take_lease(r->fencing_token);
      return WriteAction::kPut;
    }
    if (r->LeaseLiveAt(now)) {
      result.outcome = ReserveOutcome::kInProgress;
      result.lease_expires_ms = r->lease_expires_ms;
      result.expires_ms = r->expires_ms;
      return WriteAction::kNone;
    }
    // The holder's lease lapsed: this attempt takes over with a larger token.
    absl::StatusOr<uint64_t> token = backend_->NextFencingToken();
    if (!token.ok()) return token.status();
    take_lease(*token);
    return WriteAction::kPut;
  };
  if (absl::Status s = UpdateCreatingTenant(args.tenant, args.key, decide);
      !s.ok()) {
    return s;
  }
  return result;
}

absl::StatusOr<int64_t> KeyStore::Complete(
    absl::string_view tenant, absl::string_view key, uint64_t fencing_token,
    idemkey::v1::StoredResponse response) {
  if (absl::Status s = ValidateTenantAndKey(tenant, key); !s.ok()) return s;
  const size_t response_bytes = response.ByteSizeLong();
  const bool too_large = response_bytes > options_.limits.max_response_bytes;

  int64_t expires_ms = 0;
  absl::Status s = backend_->Update(
      tenant, key,
      [&](std::optional<Record>& r) -> absl::StatusOr<WriteAction> {
        const int64_t now = options_.clock->NowMillis();
        ForgetIfExpired(r, now);
        if (r && r->state == RecordState::kCompleted &&
            r->fencing_token == fencing_token) {
          expires_ms = r->expires_ms;  // a retried Complete: already stored
          return WriteAction::kNone;
        }
        if (absl::Status held =
                CheckLeaseHolder(r, tenant, key, fencing_token, now);
            !held.ok()) {
          return held;
        }
        // Never half-written: an oversized response releases the key so a
        // retry can run the request again.
        if (too_large) return WriteAction::kDelete;
        r->state = RecordState::kCompleted;
        r->response = std::move(response);
        r->completed_ms = now;
        r->lease_expires_ms = 0;
        r->expires_ms = now + r->ttl_ms;
        expires_ms = r->expires_ms;
        return WriteAction::kPut;
      });
  if (!s.ok()) return s;
  if (too_large) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "response for ", Where(tenant, key), " is ", response_bytes,
        " bytes encoded; the limit is ", options_.limits.max_response_bytes,
        " bytes (status, headers and body); the reservation was released"));
  }
  return expires_ms;
}

absl::Status KeyStore::Release(absl::string_view tenant, absl::string_view key,
                               uint64_t fencing_token) {
  if (absl::Status s = ValidateTenantAndKey(tenant, key); !s.ok()) return s;
  return backend_->Update(
      tenant, key,
      [&](std::optional<Record>& r) -> absl::StatusOr<WriteAction> {
        const int64_t now = options_.clock->NowMillis();
        ForgetIfExpired(r, now);
        if (absl::Status held =
                CheckLeaseHolder(r, tenant, key, fencing_token, now);
            !held.ok()) {
          return held;
        }
        return WriteAction::kDelete;
      });
}

absl::StatusOr<int64_t> KeyStore::Heartbeat(absl::string_view tenant,
                                            absl::string_view key,
                                            uint64_t fencing_token,
                                            int64_t lease_ms) {
  if (absl::Status s = ValidateTenantAndKey(tenant, key); !s.ok()) return s;
  absl::StatusOr<int64_t> lease = ResolveLease(options_.limits, lease_ms);
  if (!lease.ok()) return lease.status();
  int64_t lease_expires_ms = 0;
  absl::Status s = backend_->Update(
      tenant, key,
      [&](std::optional<Record>& r) -> absl::StatusOr<WriteAction> {
        const int64_t now = options_.clock->NowMillis();
        ForgetIfExpired(r, now);
        if (absl::Status held =
                CheckLeaseHolder(r, tenant, key, fencing_token, now);
            !held.ok()) {
          return held;
        }
        r->lease_expires_ms = now + *lease;
        r->expires_ms = std::max(r->expires_ms, r->lease_expires_ms);
        lease_expires_ms = r->lease_expires_ms;
        return WriteAction::kPut;
      });
  if (!s.ok()) return s;
  return lease_expires_ms;
}

absl::StatusOr<Record> KeyStore::Lookup(absl::string_view tenant,
                                        absl::string_view key) {
  if (absl::Status s = ValidateTenantAndKey(tenant, key); !s.ok()) return s;
  absl::StatusOr<std::optional<Record>> r = backend_->Get(tenant, key);
  if (!r.ok()) return r.status();
  ForgetIfExpired(*r, options_.clock->NowMillis());
  if (!r->has_value()) return NoLiveRecord(tenant, key);
  return std::move(**r);
}

absl::StatusOr<RecordPage> KeyStore::ListRecords(const ListQuery& query) {
  if (absl::Status s = ValidateTenantName(query.tenant); !s.ok()) return s;
  if (absl::Status s = ValidateKeyPrefix(options_.limits, query.key_prefix);
      !s.ok()) {
    return s;
  }
  if (query.page_size < 0 || query.page_size > kMaxPageSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "page_size ", query.page_size, " is out of range; it must be 1-",
        kMaxPageSize, " (or 0 for ", kDefaultPageSize, ")"));
  }
  // The page token is the last key of the previous page.
  if (!query.page_token.empty() &&
      (!ValidateKey(options_.limits, query.page_token).ok() ||
       !absl::StartsWith(query.page_token, query.key_prefix))) {
    return absl::InvalidArgumentError(
        "page_token is not one this server returned for this key_prefix; "
        "pass next_page_token unchanged");
  }
  const size_t page_size =
      query.page_size == 0 ? kDefaultPageSize : query.page_size;
  const int64_t now = options_.clock->NowMillis();

  RecordPage page;
  bool more = false;
  const absl::string_view start =
      query.page_token.empty() ? query.key_prefix : query.page_token;
  absl::Status s =
      backend_->Scan(query.tenant, query.key_prefix, start, [&](Record&& r) {
        if (r.key == query.page_token || r.ExpiredAt(now) ||
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
  if (!s.ok()) return s;
  if (more) page.next_page_token = page.records.back().key;
  return page;
}

absl::Status KeyStore::DeleteRecord(absl::string_view tenant,
                                    absl::string_view key) {
  if (absl::Status s = ValidateTenantAndKey(tenant, key); !s.ok()) return s;
  return backend_->Update(
      tenant, key,
      [&](std::optional<Record>& r) -> absl::StatusOr<WriteAction> {
        ForgetIfExpired(r, options_.clock->NowMillis());
        if (!r) return NoLiveRecord(tenant, key);
        return WriteAction::kDelete;
      });
}

absl::StatusOr<TenantInfo> KeyStore::CreateTenant(absl::string_view name) {
  if (absl::Status s = ValidateTenantName(name); !s.ok()) return s;
  return backend_->CreateTenant(name);
}

absl::Status KeyStore::DropTenant(absl::string_view name) {
  if (absl::Status s = ValidateTenantName(name); !s.ok()) return s;
  return backend_->DropTenant(name);
}

std::vector<TenantInfo> KeyStore::ListTenants() {
  return backend_->ListTenants();
}

absl::StatusOr<BackendStats> KeyStore::Stats() { return backend_->Stats(); }

absl::StatusOr<CompactionResult> KeyStore::Compact(absl::string_view tenant) {
  if (!tenant.empty()) {
    if (absl::Status s = ValidateTenantName(tenant); !s.ok()) return s;
  }
  return backend_->Compact(tenant);
}

absl::StatusOr<uint64_t> KeyStore::Checkpoint(const std::string& dir) {
  return backend_->Checkpoint(dir);
}

}  // namespace idemkey::store
