// The idemkey.v1 calls over a KeyStore, and Batch's promise to the rerun
// contract of server/service/store_call.h: refused for I/O at some op, it
// resumes there, and every op runs once.
#include "server/api/key_calls.h"

#include <string>

#include "gtest/gtest.h"
#include "server/store/key_store.h"
#include "tests/support/cold_keys_backend.h"

namespace idemkey::api {
namespace {

using idemkey::v1::BatchRequest;
using idemkey::v1::BatchResponse;

const store::CallOptions kNoWait{.may_wait_for_io = false};
bool kCreates(absl::string_view) { return true; }

class KeyCallsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(store_.CreateTenant("acme").ok()); }

  void AddReserve(BatchRequest* batch, const std::string& key,
                  const std::string& attempt = "a1") {
    idemkey::v1::ReserveRequest* r = batch->add_ops()->mutable_reserve();
    r->set_tenant("acme");
    r->set_key(key);
    r->set_fingerprint(std::string(32, 'f'));
    r->set_attempt_id(attempt);
  }

  idemkey::testing::ColdKeysBackend backend_;
  store::KeyStore store_{&backend_, store::KeyStoreOptions{}};
};

TEST_F(KeyCallsTest, ReserveAnswersOwnerWithAToken) {
  idemkey::v1::ReserveRequest req;
  req.set_tenant("acme");
  req.set_key("k1");
  req.set_fingerprint(std::string(32, 'f'));
  req.set_attempt_id("a1");
  idemkey::v1::ReserveResponse resp;
  ASSERT_TRUE(Reserve(store_, req, &resp).ok());
  EXPECT_EQ(resp.outcome(), idemkey::v1::OUTCOME_OWNER);
  EXPECT_NE(resp.fencing_token(), 0u);
  EXPECT_TRUE(resp.has_lease_expires_at());
}

TEST_F(KeyCallsTest, BatchResumesAtTheOpRefusedForIoAndRunsEachOpOnce) {
  BatchRequest batch;
  AddReserve(&batch, "warm-1");
  AddReserve(&batch, "cold-1");
  AddReserve(&batch, "warm-2");
  BatchResponse resp;
  auto authorize = [](absl::string_view) { return absl::OkStatus(); };
  absl::Status first =
      Batch(store_, batch, authorize, kCreates, &resp, kNoWait);
  EXPECT_TRUE(store::IsWouldBlock(first)) << first;
  ASSERT_EQ(resp.results_size(), 1);  // the op before the refused one
  EXPECT_EQ(backend_.updates_run(), 1);

  ASSERT_TRUE(Batch(store_, batch, authorize, kCreates, &resp).ok());
  ASSERT_EQ(resp.results_size(), 3);
  EXPECT_EQ(backend_.updates_run(), 3);  // warm-1 did not run again
  for (const auto& r : resp.results()) {
    EXPECT_EQ(r.code(), 0) << r.message();
    EXPECT_EQ(r.reserve().outcome(), idemkey::v1::OUTCOME_OWNER);
  }
  // Tokens in op order: each op ran once, in order.
  EXPECT_LT(resp.results(0).reserve().fencing_token(),
            resp.results(1).reserve().fencing_token());
  EXPECT_LT(resp.results(1).reserve().fencing_token(),
            resp.results(2).reserve().fencing_token());
}

TEST_F(KeyCallsTest, BatchAnswersEachOpsErrorInItsResult) {
  BatchRequest batch;
  AddReserve(&batch, "k1");
  AddReserve(&batch, "bad key");  // a space: not printable-ASCII-without-space
  batch.add_ops();                // no call set
  AddReserve(&batch, "k2");
  BatchResponse resp;
  auto authorize = [](absl::string_view tenant) {
    return tenant == "acme" ? absl::OkStatus()
                            : absl::PermissionDeniedError("not yours");
  };
  ASSERT_TRUE(Batch(store_, batch, authorize, kCreates, &resp).ok());
  ASSERT_EQ(resp.results_size(), 4);
  EXPECT_EQ(resp.results(0).code(), 0);
  EXPECT_EQ(resp.results(1).code(),
            static_cast<int32_t>(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(resp.results(2).code(),
            static_cast<int32_t>(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(resp.results(3).code(), 0);
}

TEST_F(KeyCallsTest, BatchChecksEachOpsTenant) {
  BatchRequest batch;
  AddReserve(&batch, "k1");
  batch.mutable_ops(0)->mutable_reserve()->set_tenant("globex");
  BatchResponse resp;
  auto authorize = [](absl::string_view tenant) {
    return tenant == "acme" ? absl::OkStatus()
                            : absl::PermissionDeniedError("not yours");
  };
  ASSERT_TRUE(Batch(store_, batch, authorize, kCreates, &resp).ok());
  EXPECT_EQ(resp.results(0).code(),
            static_cast<int32_t>(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(backend_.updates_run(), 0);
}

// Whether an op may create its unknown tenant is the caller's (the service
// allows it only for some tokens).
TEST_F(KeyCallsTest, BatchCreatesAnUnknownTenantOnlyWhereAllowed) {
  BatchRequest batch;
  AddReserve(&batch, "k1");
  batch.mutable_ops(0)->mutable_reserve()->set_tenant("fresh");
  BatchResponse refused;
  auto authorize = [](absl::string_view) { return absl::OkStatus(); };
  ASSERT_TRUE(Batch(
                  store_, batch, authorize,
                  [](absl::string_view) { return false; }, &refused)
                  .ok());
  EXPECT_EQ(refused.results(0).code(),
            static_cast<int32_t>(absl::StatusCode::kNotFound));
  BatchResponse created;
  ASSERT_TRUE(Batch(store_, batch, authorize, kCreates, &created).ok());
  EXPECT_EQ(created.results(0).reserve().outcome(), idemkey::v1::OUTCOME_OWNER);
}

TEST_F(KeyCallsTest, BatchRefusesMoreOpsThanItCarries) {
  BatchRequest batch;
  for (int i = 0; i <= kMaxBatchOps; ++i) AddReserve(&batch, "k");
  BatchResponse resp;
  absl::Status s = Batch(
      store_, batch, [](absl::string_view) { return absl::OkStatus(); },
      kCreates, &resp);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(resp.results_size(), 0);
}

}  // namespace
}  // namespace idemkey::api
