// transitions.h — the record life as pure functions: what each call does to
// the stored record of its key (docs/semantics.md, "Record life").
//
// Each Decide* function takes the stored record (nullopt when there is none;
// expired records count as none), the call's arguments and the time, and
// returns a Transition: the answer, or the error to give, and what to write.
// They read no clock and touch no storage, so the whole table below is unit
// tested without a backend; KeyStore runs them inside Backend::Update, which
// makes each one atomic per key.
//
//   call       stored record                          answer write
//   ---------  -------------------------------------  --------------------
//   --------- Reserve    none                                   OWNER, new
//   token      put IN_PROGRESS Reserve    other fingerprint MISMATCH - Reserve
//   COMPLETED                              COMPLETED + response  - Reserve
//   IN_PROGRESS, same attempt, lease live  OWNER, same token     - Reserve
//   IN_PROGRESS, same attempt, lapsed      OWNER, same token     put (new
//   lease) Reserve    IN_PROGRESS, other attempt, live       IN_PROGRESS -
//   Reserve    IN_PROGRESS, other attempt, lapsed     OWNER, new token      put
//   (takeover) Complete   COMPLETED with this token              OK (a retry) -
//   Complete   IN_PROGRESS, token holds live lease    OK                    put
//   COMPLETED Complete   ... but the response is over the limit
//   RESOURCE_EXHAUSTED    delete (released) Release    IN_PROGRESS, token holds
//   live lease    OK                    delete Heartbeat  IN_PROGRESS, token
//   holds live lease    new lease expiry      put Complete, Release, Heartbeat
//   otherwise:
//              none                                   NOT_FOUND             -
//              another token's record                 ABORTED               -
//              COMPLETED                              FAILED_PRECONDITION   -
//              lease lapsed                           ABORTED               -
//   Delete     none / any                             NOT_FOUND / OK        - /
//   delete
//
// "New token" means the caller issues one (Backend::NextFencingToken) under
// the key's lock and stamps it with IssueFencingToken, so each key's tokens
// grow with every change of hands.
//
// Thread-compatible: plain functions over values.

#ifndef IDEMKEY_SERVER_STORE_TRANSITIONS_H_
#define IDEMKEY_SERVER_STORE_TRANSITIONS_H_

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "idemkey/v1/idemkey.pb.h"
#include "server/store/backend.h"
#include "server/store/record.h"

namespace idemkey::store {

// Which record a call is about; for error messages only.
struct RecordId {
  absl::string_view tenant;
  absl::string_view key;
};

// What one call decided.
template <typename Answer>
struct Transition {
  // Not OK: the call fails with it, and nothing is written.
  absl::Status status;
  WriteAction write = WriteAction::kNone;
  // With WriteAction::kPut: the record to store.
  std::optional<Record> record;
  Answer answer{};
};

enum class ReserveOutcome { kOwner, kInProgress, kCompleted, kMismatch };

struct ReserveResult {
  ReserveOutcome outcome = ReserveOutcome::kMismatch;
  uint64_t fencing_token = 0;            // kOwner
  int64_t lease_expires_ms = 0;          // kOwner, kInProgress
  int64_t expires_ms = 0;                // all but kMismatch
  idemkey::v1::StoredResponse response;  // kCompleted
};

struct ReserveDecision {
  ReserveResult result;
  // The attempt takes the lease with a token never issued before: call
  // IssueFencingToken before writing.
  bool needs_new_token = false;
};

// Reserve's arguments, already validated and with defaults resolved.
struct ReserveIntent {
  absl::string_view fingerprint;
  absl::string_view attempt_id;
  int64_t lease_ms = 0;
  int64_t ttl_ms = 0;
};

// The record is moved in, so that a replay moves its stored response out.
Transition<ReserveDecision> DecideReserve(std::optional<Record> stored,
                                          const ReserveIntent& intent,
                                          int64_t now_ms);
// Gives the new lease of `t` the token `token`.
void IssueFencingToken(Transition<ReserveDecision>& t, uint64_t token);

// Answer: when the completed record expires. `response_over_limit`: the
// response is larger than Limits::max_response_bytes; nothing is written,
// the lease stays, and the call fails RESOURCE_EXHAUSTED (the caller words
// the message): the middleware completes again without the body.
Transition<int64_t> DecideComplete(std::optional<Record> stored, RecordId id,
                                   uint64_t fencing_token,
                                   idemkey::v1::StoredResponse response,
                                   bool response_over_limit, int64_t now_ms);

struct Released {};
Transition<Released> DecideRelease(std::optional<Record> stored, RecordId id,
                                   uint64_t fencing_token, int64_t now_ms);

// Answer: the new lease expiry.
Transition<int64_t> DecideHeartbeat(std::optional<Record> stored, RecordId id,
                                    uint64_t fencing_token, int64_t lease_ms,
                                    int64_t now_ms);

struct Deleted {};
Transition<Deleted> DecideDelete(std::optional<Record> stored, RecordId id,
                                 int64_t now_ms);

// `stored` unless it has expired at `now_ms`: reads treat an expired record
// as absent at once, before compaction drops it.
std::optional<Record> LiveRecord(std::optional<Record> stored, int64_t now_ms);

// NOT_FOUND for a key with no live record, worded for the caller.
absl::Status NoLiveRecordError(RecordId id);

}  // namespace idemkey::store

#endif  // IDEMKEY_SERVER_STORE_TRANSITIONS_H_
