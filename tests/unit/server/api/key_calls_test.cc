// The idemkey.v1 calls over a KeyStore. (Batch's ops: batch_run_test.cc.)
#include "server/api/key_calls.h"

#include <string>

#include "gtest/gtest.h"
#include "server/store/key_store.h"
#include "tests/support/cold_keys_backend.h"

namespace idemkey::api {
namespace {

using idemkey::v1::BatchOp;
using idemkey::v1::BatchResult;

const store::CallOptions kNoWait{.may_wait_for_io = false};
bool kCreates(absl::string_view) { return true; }
absl::Status kAnyTenant(absl::string_view) { return absl::OkStatus(); }

class KeyCallsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(store_.CreateTenant("acme").ok()); }

  BatchOp ReserveOp(const std::string& key) {
    BatchOp op;
    idemkey::v1::ReserveRequest* r = op.mutable_reserve();
    r->set_tenant("acme");
    r->set_key(key);
    r->set_fingerprint(std::string(32, 'f'));
    r->set_attempt_id("a1");
    return op;
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

TEST_F(KeyCallsTest, OpRefusedForIoChangedNothingAndRunsWhenAllowedToWait) {
  BatchResult result;
  absl::Status refused = RunOp(store_, ReserveOp("cold-1"), kAnyTenant,
                               kCreates, &result, kNoWait);
  EXPECT_TRUE(store::IsWouldBlock(refused)) << refused;
  EXPECT_EQ(backend_.updates_run(), 0);
  result.Clear();
  ASSERT_TRUE(
      RunOp(store_, ReserveOp("cold-1"), kAnyTenant, kCreates, &result).ok());
  EXPECT_EQ(result.reserve().outcome(), idemkey::v1::OUTCOME_OWNER);
  EXPECT_EQ(backend_.updates_run(), 1);
}

TEST_F(KeyCallsTest, OpOfAnotherTenantIsRefusedBeforeTheStore) {
  BatchOp op = ReserveOp("k1");
  op.mutable_reserve()->set_tenant("globex");
  BatchResult result;
  absl::Status s = RunOp(
      store_, op,
      [](absl::string_view tenant) {
        return tenant == "acme" ? absl::OkStatus()
                                : absl::PermissionDeniedError("not yours");
      },
      kCreates, &result);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(backend_.updates_run(), 0);
}

TEST_F(KeyCallsTest, OpWithoutACallIsInvalidArgument) {
  BatchResult result;
  absl::Status s = RunOp(store_, BatchOp(), kAnyTenant, kCreates, &result);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("no call"), absl::string_view::npos) << s;
}

TEST_F(KeyCallsTest, RecordOfNamesTheTenantAndKeyOfEveryKindOfOp) {
  BatchOp complete;
  complete.mutable_complete()->set_tenant("acme");
  complete.mutable_complete()->set_key("k2");
  BatchOp lookup;
  lookup.mutable_lookup()->set_tenant("globex");
  lookup.mutable_lookup()->set_key("k3");
  using Record = std::pair<absl::string_view, absl::string_view>;
  EXPECT_EQ(RecordOf(ReserveOp("k1")), Record("acme", "k1"));
  EXPECT_EQ(RecordOf(complete), Record("acme", "k2"));
  EXPECT_EQ(RecordOf(lookup), Record("globex", "k3"));
  EXPECT_EQ(RecordOf(BatchOp()), Record("", ""));
}

TEST_F(KeyCallsTest, SetOpErrorKeepsTheCodeAndMessageAndDropsTheResponse) {
  BatchResult result;
  result.mutable_reserve()->set_fencing_token(7);
  SetOpError(absl::NotFoundError("no such record"), &result);
  EXPECT_FALSE(result.has_reserve());
  EXPECT_EQ(result.code(), static_cast<int32_t>(absl::StatusCode::kNotFound));
  EXPECT_EQ(result.message(), "no such record");
}

}  // namespace
}  // namespace idemkey::api
