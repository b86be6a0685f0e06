// RunBatch (batch_run.h): every op answered once, as its own call would be;
// ops the store refuses where they may not wait run on the pool, one task
// per record, so that refused ops of different records run at once while
// those of one record keep the batch's order. With a store whose "cold" keys
// are only on disk.
#include "server/service/batch_run.h"

#include <string>

#include "gtest/gtest.h"
#include "idemkey/sync/mutex.h"
#include "server/api/key_calls.h"
#include "server/store/key_store.h"
#include "server/util/thread_pool.h"
#include "tests/support/cold_keys_backend.h"

namespace idemkey::service {
namespace {

using idemkey::v1::BatchRequest;
using idemkey::v1::BatchResponse;

constexpr auto kCode = [](absl::StatusCode code) {
  return static_cast<int32_t>(code);
};

class BatchRunTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(store_.CreateTenant("acme").ok()); }

  static void AddReserve(BatchRequest* batch, const std::string& key,
                         const std::string& attempt = "a1",
                         const std::string& tenant = "acme") {
    idemkey::v1::ReserveRequest* r = batch->add_ops()->mutable_reserve();
    r->set_tenant(tenant);
    r->set_key(key);
    r->set_fingerprint(std::string(32, 'f'));
    r->set_attempt_id(attempt);
  }
  static void AddLookup(BatchRequest* batch, const std::string& key) {
    idemkey::v1::LookupRequest* l = batch->add_ops()->mutable_lookup();
    l->set_tenant("acme");
    l->set_key(key);
  }

  // Runs `batch` and waits for its one answer.
  absl::Status Run(
      const BatchRequest& batch, BatchResponse* response,
      std::function<absl::Status(absl::string_view)> authorize =
          [](absl::string_view) { return absl::OkStatus(); },
      std::function<bool(absl::string_view)> may_create =
          [](absl::string_view) { return true; }) {
    // sync::Mutex, which the TSan build sees (absl's is not instrumented).
    sync::Mutex mu;
    sync::CondVar answered;
    absl::Status result;
    int answers = 0;
    RunBatch(&store_, &pool_, batch, response,
             BatchCallbacks{.authorize = std::move(authorize),
                            .may_create = std::move(may_create),
                            .done = [&](absl::Status s) {
                              sync::MutexLock lock(&mu);
                              result = std::move(s);
                              ++answers;
                              answered.SignalAll();
                            }});
    sync::MutexLock lock(&mu);
    while (answers == 0) answered.Wait(&mu);
    EXPECT_EQ(answers, 1);
    return result;
  }

  idemkey::testing::ColdKeysBackend backend_;
  store::KeyStore store_{&backend_, store::KeyStoreOptions{}};
  util::ThreadPool pool_{4};
};

TEST_F(BatchRunTest, EveryOpIsAnsweredOnceWhetherItNeededTheDiskOrNot) {
  BatchRequest batch;
  for (const char* key : {"warm-1", "cold-1", "warm-2", "cold-2"}) {
    AddReserve(&batch, key);
  }
  BatchResponse resp;
  ASSERT_TRUE(Run(batch, &resp).ok());
  ASSERT_EQ(resp.results_size(), 4);
  for (const auto& r : resp.results()) {
    EXPECT_EQ(r.code(), 0) << r.message();
    EXPECT_EQ(r.reserve().outcome(), idemkey::v1::OUTCOME_OWNER);
  }
  // The cold ones were refused once each where they could not wait; the
  // warm ones ran there. Each of the four reached the records once.
  EXPECT_EQ(backend_.refusals(), 2);
  EXPECT_EQ(backend_.updates_run(), 4);
}

// A backend whose every call waits on the network (PostgreSQL) refuses
// every op on the calling thread: the batch then costs one round trip per
// record, run at once, not one per op in a row.
TEST_F(BatchRunTest, RefusedOpsOfDifferentRecordsRunAtTheSameTime) {
  backend_.MeetColdUpdates(4);  // each waits until all four are waiting
  BatchRequest batch;
  for (const char* key : {"cold-1", "cold-2", "cold-3", "cold-4"}) {
    AddReserve(&batch, key);
  }
  BatchResponse resp;
  ASSERT_TRUE(Run(batch, &resp).ok());
  EXPECT_TRUE(backend_.met()) << "the refused ops ran one after the other";
  for (const auto& r : resp.results()) {
    EXPECT_EQ(r.reserve().outcome(), idemkey::v1::OUTCOME_OWNER);
  }
}

// Ops on one record keep the batch's order, also once its first op was
// refused and the ones after it could have run at once.
TEST_F(BatchRunTest, OpsOfOneRecordRunInTheBatchsOrder) {
  ASSERT_TRUE(store_.CreateTenant("globex").ok());
  BatchRequest batch;
  AddReserve(&batch, "cold-1", "first");
  AddReserve(&batch, "warm-1", "first");
  AddReserve(&batch, "cold-1", "second");  // would be OWNER if run first
  AddLookup(&batch, "cold-1");
  AddReserve(&batch, "cold-1", "first", "globex");  // another record
  BatchResponse resp;
  ASSERT_TRUE(Run(batch, &resp).ok());
  ASSERT_EQ(resp.results_size(), 5);
  EXPECT_EQ(resp.results(0).reserve().outcome(), idemkey::v1::OUTCOME_OWNER);
  EXPECT_EQ(resp.results(1).reserve().outcome(), idemkey::v1::OUTCOME_OWNER);
  EXPECT_EQ(resp.results(2).reserve().outcome(),
            idemkey::v1::OUTCOME_IN_PROGRESS);
  EXPECT_EQ(resp.results(3).lookup().record().fencing_token(),
            resp.results(0).reserve().fencing_token());
  EXPECT_EQ(resp.results(4).reserve().outcome(), idemkey::v1::OUTCOME_OWNER);
}

TEST_F(BatchRunTest, EachOpsErrorIsInItsResult) {
  BatchRequest batch;
  AddReserve(&batch, "k1");
  AddReserve(&batch, "bad key");  // a space: not printable-ASCII-without-space
  batch.add_ops();                // no call set
  AddReserve(&batch, "cold-1", "a1", "globex");  // another tenant's
  AddReserve(&batch, "k2");
  BatchResponse resp;
  ASSERT_TRUE(Run(batch, &resp, [](absl::string_view tenant) {
                return tenant == "acme"
                           ? absl::OkStatus()
                           : absl::PermissionDeniedError("not yours");
              }).ok());
  ASSERT_EQ(resp.results_size(), 5);
  EXPECT_EQ(resp.results(0).code(), 0);
  EXPECT_EQ(resp.results(1).code(), kCode(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(resp.results(2).code(), kCode(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(resp.results(3).code(), kCode(absl::StatusCode::kPermissionDenied));
  EXPECT_FALSE(resp.results(3).has_reserve());
  EXPECT_EQ(resp.results(4).code(), 0);
  EXPECT_EQ(backend_.updates_run(), 2);  // the refused ones touched nothing
}

// Whether an op may create its unknown tenant is the caller's (the service
// allows it only for some tokens).
TEST_F(BatchRunTest, AnUnknownTenantIsCreatedOnlyWhereAllowed) {
  BatchRequest batch;
  AddReserve(&batch, "cold-1", "a1", "fresh");
  BatchResponse refused;
  ASSERT_TRUE(Run(
                  batch, &refused,
                  [](absl::string_view) { return absl::OkStatus(); },
                  [](absl::string_view) { return false; })
                  .ok());
  EXPECT_EQ(refused.results(0).code(), kCode(absl::StatusCode::kNotFound));
  BatchResponse created;
  ASSERT_TRUE(Run(batch, &created).ok());
  EXPECT_EQ(created.results(0).reserve().outcome(), idemkey::v1::OUTCOME_OWNER);
}

TEST_F(BatchRunTest, MoreOpsThanABatchCarriesAreRefusedWhole) {
  BatchRequest batch;
  for (int i = 0; i <= api::kMaxBatchOps; ++i) AddReserve(&batch, "k");
  BatchResponse resp;
  absl::Status s = Run(batch, &resp);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("split it"), absl::string_view::npos) << s;
  EXPECT_EQ(resp.results_size(), 0);
  EXPECT_EQ(backend_.updates_run(), 0);
}

// Ops that needed the pool once it stopped taking work are answered
// UNAVAILABLE, not applied; the ones that ran before keep their answers.
TEST_F(BatchRunTest, RefusedOpsOfAStoppingServerAreUnavailable) {
  pool_.Shutdown();
  BatchRequest batch;
  AddReserve(&batch, "warm-1");
  AddReserve(&batch, "cold-1");
  BatchResponse resp;
  ASSERT_TRUE(Run(batch, &resp).ok());
  EXPECT_EQ(resp.results(0).reserve().outcome(), idemkey::v1::OUTCOME_OWNER);
  EXPECT_EQ(resp.results(1).code(), kCode(absl::StatusCode::kUnavailable));
  EXPECT_EQ(backend_.updates_run(), 1);
}

}  // namespace
}  // namespace idemkey::service
