// The transition table of transitions.h, row by row, without a backend.
#include "server/store/transitions.h"

#include <optional>
#include <string>

#include "gtest/gtest.h"

namespace idemkey::store {
namespace {

constexpr int64_t kNow = 1'700'000'000'000;
constexpr int64_t kLease = 30'000;
constexpr int64_t kTtl = 3'600'000;
const std::string kFp(32, 'f');
const RecordId kId{"acme", "k1"};

ReserveIntent Intent(absl::string_view attempt,
                     absl::string_view fingerprint = kFp) {
  return {fingerprint, attempt, kLease, kTtl};
}

// What an OWNER Reserve of attempt "a1" with token 7 at kNow stored.
Record InProgress() {
  Record r;
  r.key = "k1";
  r.state = RecordState::kInProgress;
  r.fingerprint = kFp;
  r.fencing_token = 7;
  r.attempt_id = "a1";
  r.created_ms = kNow;
  r.lease_expires_ms = kNow + kLease;
  r.ttl_ms = kTtl;
  r.expires_ms = kNow + kTtl;
  return r;
}

Record Completed() {
  Record r = InProgress();
  r.state = RecordState::kCompleted;
  r.lease_expires_ms = 0;
  r.completed_ms = kNow + 10;
  r.expires_ms = kNow + 10 + kTtl;
  r.response.set_status_code(201);
  r.response.set_body("ch_1");
  return r;
}

TEST(DecideReserveTest, NoRecordMakesAnOwnerWithANewToken) {
  Transition<ReserveDecision> t =
      DecideReserve(std::nullopt, Intent("a1"), kNow);
  ASSERT_TRUE(t.status.ok());
  EXPECT_EQ(t.write, WriteAction::kPut);
  EXPECT_TRUE(t.answer.needs_new_token);
  EXPECT_EQ(t.answer.result.outcome, ReserveOutcome::kOwner);
  IssueFencingToken(t, 42);
  EXPECT_EQ(t.answer.result.fencing_token, 42u);
  ASSERT_TRUE(t.record.has_value());
  EXPECT_EQ(t.record->fencing_token, 42u);
  EXPECT_EQ(t.record->state, RecordState::kInProgress);
  EXPECT_EQ(t.record->fingerprint, kFp);
  EXPECT_EQ(t.record->attempt_id, "a1");
  EXPECT_EQ(t.record->lease_expires_ms, kNow + kLease);
  EXPECT_EQ(t.record->expires_ms, kNow + kTtl);
  EXPECT_EQ(t.answer.result.lease_expires_ms, kNow + kLease);
}

TEST(DecideReserveTest, AnExpiredRecordCountsAsNone) {
  Record old = Completed();
  old.expires_ms = kNow;  // expires at this very instant
  Transition<ReserveDecision> t = DecideReserve(old, Intent("a2"), kNow);
  EXPECT_EQ(t.write, WriteAction::kPut);
  EXPECT_TRUE(t.answer.needs_new_token);
  EXPECT_EQ(t.answer.result.outcome, ReserveOutcome::kOwner);
}

TEST(DecideReserveTest, AnotherFingerprintIsAMismatch) {
  const std::string other(32, 'x');
  for (const Record& r : {InProgress(), Completed()}) {
    Transition<ReserveDecision> t = DecideReserve(r, Intent("a2", other), kNow);
    EXPECT_EQ(t.write, WriteAction::kNone);
    EXPECT_EQ(t.answer.result.outcome, ReserveOutcome::kMismatch);
  }
}

TEST(DecideReserveTest, ACompletedRecordReplaysItsResponse) {
  Transition<ReserveDecision> t =
      DecideReserve(Completed(), Intent("a2"), kNow);
  EXPECT_EQ(t.write, WriteAction::kNone);
  EXPECT_EQ(t.answer.result.outcome, ReserveOutcome::kCompleted);
  EXPECT_EQ(t.answer.result.response.body(), "ch_1");
  EXPECT_EQ(t.answer.result.expires_ms, kNow + 10 + kTtl);
}

TEST(DecideReserveTest, TheSameAttemptWithALiveLeaseGetsItsTokenAgain) {
  Transition<ReserveDecision> t =
      DecideReserve(InProgress(), Intent("a1"), kNow + 1000);
  EXPECT_EQ(t.write, WriteAction::kNone);
  EXPECT_FALSE(t.answer.needs_new_token);
  EXPECT_EQ(t.answer.result.outcome, ReserveOutcome::kOwner);
  EXPECT_EQ(t.answer.result.fencing_token, 7u);
  EXPECT_EQ(t.answer.result.lease_expires_ms, kNow + kLease);
}

TEST(DecideReserveTest, TheSameAttemptAfterItsLeaseLapsedRenewsIt) {
  const int64_t later = kNow + kLease + 5;
  Transition<ReserveDecision> t =
      DecideReserve(InProgress(), Intent("a1"), later);
  EXPECT_EQ(t.write, WriteAction::kPut);
  EXPECT_FALSE(t.answer.needs_new_token);
  EXPECT_EQ(t.answer.result.fencing_token, 7u);
  EXPECT_EQ(t.record->lease_expires_ms, later + kLease);
}

TEST(DecideReserveTest, AnotherAttemptWhileTheLeaseLivesIsInProgress) {
  Transition<ReserveDecision> t =
      DecideReserve(InProgress(), Intent("a2"), kNow + 1000);
  EXPECT_EQ(t.write, WriteAction::kNone);
  EXPECT_EQ(t.answer.result.outcome, ReserveOutcome::kInProgress);
  EXPECT_EQ(t.answer.result.fencing_token, 0u);  // never another's token
  EXPECT_EQ(t.answer.result.lease_expires_ms, kNow + kLease);
}

TEST(DecideReserveTest, AnotherAttemptAfterTheLeaseLapsedTakesOver) {
  const int64_t later = kNow + kLease;  // the lease ends at this instant
  Transition<ReserveDecision> t =
      DecideReserve(InProgress(), Intent("a2"), later);
  EXPECT_EQ(t.write, WriteAction::kPut);
  EXPECT_TRUE(t.answer.needs_new_token);
  IssueFencingToken(t, 8);
  EXPECT_EQ(t.record->attempt_id, "a2");
  EXPECT_EQ(t.record->fencing_token, 8u);
  EXPECT_EQ(t.record->created_ms, kNow);  // the same record, taken over
}

TEST(DecideCompleteTest, TheLeaseHolderCompletes) {
  idemkey::v1::StoredResponse response;
  response.set_body("ch_9");
  Transition<int64_t> t =
      DecideComplete(InProgress(), kId, 7, response,
                     /*response_over_limit=*/false, kNow + 5);
  ASSERT_TRUE(t.status.ok()) << t.status;
  EXPECT_EQ(t.write, WriteAction::kPut);
  EXPECT_EQ(t.record->state, RecordState::kCompleted);
  EXPECT_EQ(t.record->response.body(), "ch_9");
  EXPECT_EQ(t.record->lease_expires_ms, 0);
  EXPECT_EQ(t.record->completed_ms, kNow + 5);
  EXPECT_EQ(t.answer, kNow + 5 + kTtl);
  EXPECT_EQ(t.record->expires_ms, t.answer);
}

TEST(DecideCompleteTest, RetriedWithTheSameTokenKeepsTheFirstResponse) {
  idemkey::v1::StoredResponse other;
  other.set_body("second");
  Transition<int64_t> t =
      DecideComplete(Completed(), kId, 7, other, false, kNow + 100);
  ASSERT_TRUE(t.status.ok()) << t.status;
  EXPECT_EQ(t.write, WriteAction::kNone);
  EXPECT_EQ(t.answer, kNow + 10 + kTtl);
}

// At most once: nothing is written and the lease stays with the attempt
// that ran, which completes again without the body.
TEST(DecideCompleteTest, AnOversizedResponseIsRefusedAndTheLeaseStays) {
  Transition<int64_t> t = DecideComplete(InProgress(), kId, 7, {},
                                         /*response_over_limit=*/true, kNow);
  EXPECT_EQ(t.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(t.write, WriteAction::kNone);
}

TEST(LeaseHolderTest, TheRefusalNeverNamesTheHoldersToken) {
  Record taken = InProgress();
  taken.fencing_token = 1796157109706218;
  absl::Status s = DecideComplete(taken, kId, 7, {}, false, kNow).status;
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(s.message().find("1796157109706218"), absl::string_view::npos) << s;
}

// The refusals that Complete, Release and Heartbeat share.
TEST(LeaseHolderTest, RefusalsOfCompleteReleaseAndHeartbeat) {
  struct Case {
    std::optional<Record> stored;
    uint64_t token;
    int64_t now;
    absl::StatusCode code;
  };
  Record lapsed = InProgress();
  const Case cases[] = {
      {std::nullopt, 7, kNow, absl::StatusCode::kNotFound},
      {InProgress(), 8, kNow, absl::StatusCode::kAborted},
      {Completed(), 8, kNow, absl::StatusCode::kAborted},
      {InProgress(), 7, kNow + kLease, absl::StatusCode::kAborted},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(
        DecideComplete(c.stored, kId, c.token, {}, false, c.now).status.code(),
        c.code);
    EXPECT_EQ(DecideRelease(c.stored, kId, c.token, c.now).status.code(),
              c.code);
    EXPECT_EQ(
        DecideHeartbeat(c.stored, kId, c.token, kLease, c.now).status.code(),
        c.code);
  }
  // Completed by this token: Release and Heartbeat are refused as final.
  EXPECT_EQ(DecideRelease(Completed(), kId, 7, kNow).status.code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(DecideHeartbeat(Completed(), kId, 7, kLease, kNow).status.code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(DecideReleaseTest, TheLeaseHolderReleases) {
  Transition<Released> t = DecideRelease(InProgress(), kId, 7, kNow);
  ASSERT_TRUE(t.status.ok());
  EXPECT_EQ(t.write, WriteAction::kDelete);
}

TEST(DecideHeartbeatTest, RenewsTheLeaseAndKeepsTheRecordAlive) {
  const int64_t later = kNow + kLease - 1;
  const int64_t long_lease = 2 * kTtl;  // outlives the record's expiry
  Transition<int64_t> t =
      DecideHeartbeat(InProgress(), kId, 7, long_lease, later);
  ASSERT_TRUE(t.status.ok());
  EXPECT_EQ(t.write, WriteAction::kPut);
  EXPECT_EQ(t.answer, later + long_lease);
  EXPECT_EQ(t.record->expires_ms, later + long_lease);
}

TEST(DecideDeleteTest, DeletesALiveRecordOnly) {
  EXPECT_EQ(DecideDelete(Completed(), kId, kNow).write, WriteAction::kDelete);
  EXPECT_EQ(DecideDelete(std::nullopt, kId, kNow).status.code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(DecideDelete(Completed(), kId, kNow + 10 + kTtl).status.code(),
            absl::StatusCode::kNotFound);
}

TEST(LiveRecordTest, DropsARecordFromItsExpiryOn) {
  EXPECT_TRUE(LiveRecord(Completed(), kNow + 10 + kTtl - 1).has_value());
  EXPECT_FALSE(LiveRecord(Completed(), kNow + 10 + kTtl).has_value());
}

}  // namespace
}  // namespace idemkey::store
