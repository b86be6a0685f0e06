#include "server/store/transitions.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace idemkey::store {
namespace {

std::string Rfc3339(int64_t unix_ms) {
  return absl::FormatTime(absl::RFC3339_full, absl::FromUnixMillis(unix_ms),
                          absl::UTCTimeZone());
}

std::string Where(RecordId id) {
  return absl::StrCat("key \"", id.key, "\" of tenant \"", id.tenant, "\"");
}

template <typename Answer>
Transition<Answer> Fail(absl::Status status) {
  Transition<Answer> t;
  t.status = std::move(status);
  return t;
}

// OK when `token` holds the live lease of the in-progress record `r`.
absl::Status CheckLeaseHolder(const std::optional<Record>& r, RecordId id,
                              uint64_t token, int64_t now_ms) {
  if (!r) return NoLiveRecordError(id);
  if (r->fencing_token != token) {
    // Never the holder's token: it is a capability that only its holder may
    // know (docs/semantics.md, "Fencing tokens").
    return absl::AbortedError(
        absl::StrCat("fencing token ", token, " no longer holds the lease of ",
                     Where(id), ": another attempt took over"));
  }
  if (r->state == RecordState::kCompleted) {
    return absl::FailedPreconditionError(absl::StrCat(
        Where(id),
        " is already completed; its response is final (an admin can "
        "DeleteRecord it)"));
  }
  if (!r->LeaseLiveAt(now_ms)) {
    return absl::AbortedError(
        absl::StrCat("the lease of fencing token ", token, " on ", Where(id),
                     " expired at ", Rfc3339(r->lease_expires_ms),
                     "; Reserve again (and Heartbeat during long requests)"));
  }
  return absl::OkStatus();
}

// The owner's answer for the in-progress record `r`.
ReserveResult OwnerResult(const Record& r) {
  ReserveResult result;
  result.outcome = ReserveOutcome::kOwner;
  result.fencing_token = r.fencing_token;
  result.lease_expires_ms = r.lease_expires_ms;
  result.expires_ms = r.expires_ms;
  return result;
}

// `r` leased to this attempt from now on, under the token it already has
// (IssueFencingToken replaces it when the lease changes hands).
Transition<ReserveDecision> TakeLease(Record r, const ReserveIntent& intent,
                                      int64_t now_ms, bool needs_new_token) {
  r.attempt_id = std::string(intent.attempt_id);
  r.lease_expires_ms = now_ms + intent.lease_ms;
  r.expires_ms = std::max(r.expires_ms, r.lease_expires_ms);
  Transition<ReserveDecision> t;
  t.write = WriteAction::kPut;
  t.answer.result = OwnerResult(r);
  t.answer.needs_new_token = needs_new_token;
  t.record = std::move(r);
  return t;
}

}  // namespace

absl::Status NoLiveRecordError(RecordId id) {
  return absl::NotFoundError(absl::StrCat(
      "no record for ", Where(id),
      ": it was never reserved, was released or deleted, or has expired"));
}

std::optional<Record> LiveRecord(std::optional<Record> stored, int64_t now_ms) {
  if (stored && stored->ExpiredAt(now_ms)) stored.reset();
  return stored;
}

Transition<ReserveDecision> DecideReserve(std::optional<Record> stored,
                                          const ReserveIntent& intent,
                                          int64_t now_ms) {
  stored = LiveRecord(std::move(stored), now_ms);
  if (!stored) {
    Record r;
    r.state = RecordState::kInProgress;
    r.fingerprint = std::string(intent.fingerprint);
    r.created_ms = now_ms;
    r.ttl_ms = intent.ttl_ms;
    r.expires_ms = now_ms + intent.ttl_ms;
    return TakeLease(std::move(r), intent, now_ms, /*needs_new_token=*/true);
  }
  Transition<ReserveDecision> t;
  ReserveResult& result = t.answer.result;
  if (stored->fingerprint != intent.fingerprint) {
    result.outcome = ReserveOutcome::kMismatch;
    return t;
  }
  if (stored->state == RecordState::kCompleted) {
    result.outcome = ReserveOutcome::kCompleted;
    result.expires_ms = stored->expires_ms;
    result.response = std::move(stored->response);
    return t;
  }
  if (stored->attempt_id == intent.attempt_id) {
    // The same attempt again: its first reply was lost. Same token; a lapsed
    // lease is renewed since nobody else took it meanwhile.
    if (stored->LeaseLiveAt(now_ms)) {
      result = OwnerResult(*stored);
      return t;
    }
    return TakeLease(std::move(*stored), intent, now_ms,
                     /*needs_new_token=*/false);
  }
  if (stored->LeaseLiveAt(now_ms)) {
    result.outcome = ReserveOutcome::kInProgress;
    result.lease_expires_ms = stored->lease_expires_ms;
    result.expires_ms = stored->expires_ms;
    return t;
  }
  // The holder's lease lapsed: this attempt takes over with a larger token.
  return TakeLease(std::move(*stored), intent, now_ms,
                   /*needs_new_token=*/true);
}

void IssueFencingToken(Transition<ReserveDecision>& t, uint64_t token) {
  t.record->fencing_token = token;
  t.answer.result.fencing_token = token;
  t.answer.needs_new_token = false;
}

Transition<int64_t> DecideComplete(std::optional<Record> stored, RecordId id,
                                   uint64_t fencing_token,
                                   idemkey::v1::StoredResponse response,
                                   bool response_over_limit, int64_t now_ms) {
  stored = LiveRecord(std::move(stored), now_ms);
  Transition<int64_t> t;
  if (stored && stored->state == RecordState::kCompleted &&
      stored->fencing_token == fencing_token) {
    t.answer = stored->expires_ms;  // a retried Complete: already stored
    return t;
  }
  if (absl::Status held = CheckLeaseHolder(stored, id, fencing_token, now_ms);
      !held.ok()) {
    return Fail<int64_t>(std::move(held));
  }
  // Never half-written, and never released for it: the handler has run,
  // so the caller completes again without the body (at most once).
  if (response_over_limit)
    return Fail<int64_t>(absl::ResourceExhaustedError(""));
  Record& r = *stored;
  r.state = RecordState::kCompleted;
  r.response = std::move(response);
  r.completed_ms = now_ms;
  r.lease_expires_ms = 0;
  r.expires_ms = now_ms + r.ttl_ms;
  t.answer = r.expires_ms;
  t.write = WriteAction::kPut;
  t.record = std::move(stored);
  return t;
}

Transition<Released> DecideRelease(std::optional<Record> stored, RecordId id,
                                   uint64_t fencing_token, int64_t now_ms) {
  stored = LiveRecord(std::move(stored), now_ms);
  if (absl::Status held = CheckLeaseHolder(stored, id, fencing_token, now_ms);
      !held.ok()) {
    return Fail<Released>(std::move(held));
  }
  Transition<Released> t;
  t.write = WriteAction::kDelete;
  return t;
}

Transition<int64_t> DecideHeartbeat(std::optional<Record> stored, RecordId id,
                                    uint64_t fencing_token, int64_t lease_ms,
                                    int64_t now_ms) {
  stored = LiveRecord(std::move(stored), now_ms);
  if (absl::Status held = CheckLeaseHolder(stored, id, fencing_token, now_ms);
      !held.ok()) {
    return Fail<int64_t>(std::move(held));
  }
  Record& r = *stored;
  r.lease_expires_ms = now_ms + lease_ms;
  r.expires_ms = std::max(r.expires_ms, r.lease_expires_ms);
  Transition<int64_t> t;
  t.answer = r.lease_expires_ms;
  t.write = WriteAction::kPut;
  t.record = std::move(stored);
  return t;
}

Transition<Deleted> DecideDelete(std::optional<Record> stored, RecordId id,
                                 int64_t now_ms) {
  stored = LiveRecord(std::move(stored), now_ms);
  if (!stored) return Fail<Deleted>(NoLiveRecordError(id));
  Transition<Deleted> t;
  t.write = WriteAction::kDelete;
  return t;
}

}  // namespace idemkey::store
