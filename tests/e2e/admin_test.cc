// The admin surface: listing with paging and filters, deleting records,
// managing tenants, stats.

#include <set>
#include <string>

#include "gtest/gtest.h"
#include "tests/support/server_test.h"

namespace idemkey::testing {
namespace {

class AdminTest : public ServerTest {
 protected:
  // Reserves `key` in "acme" and completes it when `complete`.
  void Put(const std::string& key, bool complete) {
    auto r = client().Reserve(ReserveReq("acme", key, "body", "a"));
    ASSERT_EQ(r.reply.outcome(), idemkey::v1::OUTCOME_OWNER);
    if (complete) {
      ASSERT_TRUE(client()
                      .Complete("acme", key, r.reply.fencing_token(),
                                SampleResponse(key))
                      .status.ok());
    }
  }

  // Pages through ListRecords and returns every key, checking each page.
  std::vector<std::string> ListAll(idemkey::v1::ListRecordsRequest req,
                                   int* pages) {
    std::vector<std::string> keys;
    *pages = 0;
    do {
      auto r = client().ListRecords(req);
      EXPECT_TRUE(r.status.ok()) << r.status.error_message();
      if (!r.status.ok()) break;
      ++*pages;
      EXPECT_LE(r.reply.records_size(),
                req.page_size() == 0 ? 100 : req.page_size());
      for (const auto& rec : r.reply.records()) {
        keys.push_back(rec.key());
        EXPECT_EQ(rec.has_response(),
                  req.include_responses() &&
                      rec.state() == idemkey::v1::STATE_COMPLETED);
      }
      req.set_page_token(r.reply.next_page_token());
    } while (!req.page_token().empty());
    return keys;
  }
};

TEST_F(AdminTest, ListRecordsPagesThroughPrefixInKeyOrder) {
  for (int i = 0; i < 25; ++i) {
    char key[16];
    snprintf(key, sizeof key, "order-%02d", i);
    Put(key, i % 2 == 0);
  }
  for (int i = 0; i < 5; ++i) Put("refund-" + std::to_string(i), true);

  idemkey::v1::ListRecordsRequest req;
  req.set_tenant("acme");
  req.set_key_prefix("order-");
  req.set_page_size(10);
  int pages = 0;
  std::vector<std::string> keys = ListAll(req, &pages);
  ASSERT_EQ(keys.size(), 25u);
  EXPECT_EQ(pages, 3);
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()).size(), 25u);
  EXPECT_EQ(keys.front(), "order-00");

  req.set_state(idemkey::v1::STATE_COMPLETED);
  req.set_include_responses(true);
  EXPECT_EQ(ListAll(req, &pages).size(), 13u);
  req.set_state(idemkey::v1::STATE_IN_PROGRESS);
  EXPECT_EQ(ListAll(req, &pages).size(), 12u);

  req.clear_key_prefix();
  req.clear_state();
  req.set_page_size(0);  // the default page of 100
  EXPECT_EQ(ListAll(req, &pages).size(), 30u);
  EXPECT_EQ(pages, 1);
}

TEST_F(AdminTest, DeleteRecordForgetsItWhateverItsState) {
  Put("done", true);
  Put("running", false);
  EXPECT_TRUE(client().DeleteRecord("acme", "done").status.ok());
  EXPECT_TRUE(client().DeleteRecord("acme", "running").status.ok());
  EXPECT_EQ(client().Lookup("acme", "done").status.error_code(),
            grpc::StatusCode::NOT_FOUND);
  auto again = client().Reserve(ReserveReq("acme", "done", "other", "b"));
  EXPECT_EQ(again.reply.outcome(), idemkey::v1::OUTCOME_OWNER);
}

TEST_F(AdminTest, CreateListAndDropTenants) {
  auto created = client().CreateTenant("globex");
  ASSERT_TRUE(created.status.ok()) << created.status.error_message();
  EXPECT_EQ(created.reply.name(), "globex");
  EXPECT_GT(created.reply.created_at().seconds(), 0);
  Put("k", true);  // auto-creates "acme"

  auto tenants = client().ListTenants();
  ASSERT_EQ(tenants.reply.tenants_size(), 2);
  EXPECT_EQ(tenants.reply.tenants(0).name(), "acme");
  EXPECT_EQ(tenants.reply.tenants(1).name(), "globex");

  ASSERT_TRUE(client().DropTenant("acme").status.ok());
  EXPECT_EQ(client().DropTenant("acme").status.error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(client().Lookup("acme", "k").status.error_code(),
            grpc::StatusCode::NOT_FOUND);
  // A tenant created again under the same name starts empty.
  ASSERT_TRUE(client().CreateTenant("acme").status.ok());
  EXPECT_EQ(client().Lookup("acme", "k").status.error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(client().CreateTenant("Bad Name").status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(AdminTest, StatsCountTenantsAndRecords) {
  for (int i = 0; i < 10; ++i) Put("k" + std::to_string(i), true);
  ASSERT_TRUE(client().CreateTenant("globex").status.ok());
  auto stats = client().GetStats();
  ASSERT_TRUE(stats.status.ok()) << stats.status.error_message();
  EXPECT_EQ(stats.reply.tenant_count(), 2u);
  EXPECT_EQ(stats.reply.max_tenants(), 1000u);
  ASSERT_EQ(stats.reply.tenants_size(), 2);
  EXPECT_EQ(stats.reply.tenants(0).name(), "acme");
  // An estimate: each record was written twice (Reserve, Complete).
  EXPECT_GE(stats.reply.tenants(0).estimated_records(), 10u);
  EXPECT_EQ(stats.reply.tenants(1).estimated_records(), 0u);
  if (UsingPostgres()) {
    // Counted exactly while the table is small, and no engine figures.
    EXPECT_EQ(stats.reply.tenants(0).estimated_records(), 10u);
    EXPECT_GT(stats.reply.tenants(0).disk_bytes(), 0u);
    EXPECT_EQ(stats.reply.block_cache_capacity_bytes(), 0u);
  } else {
    EXPECT_GT(stats.reply.tenants(0).memtable_bytes(), 0u);
    EXPECT_GT(stats.reply.wal_bytes(), 0u);
    EXPECT_GT(stats.reply.block_cache_capacity_bytes(), 0u);
  }
}

}  // namespace
}  // namespace idemkey::testing
