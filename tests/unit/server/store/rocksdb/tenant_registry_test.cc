#include "server/store/rocksdb/tenant_registry.h"

#include "gtest/gtest.h"
#include "tests/unit/server/store/rocksdb/rocksdb_fixture.h"

namespace idemkey::store {
namespace {

using CreatedMs = TenantRegistry::CreatedMs;

class TenantRegistryTest : public RocksDbFixture {};

TEST_F(TenantRegistryTest, ColumnFamilyNamesMapBothWays) {
  EXPECT_EQ(TenantRegistry::ColumnFamilyName("acme"), "tenant/acme");
  EXPECT_EQ(TenantRegistry::TenantOf("tenant/acme"), "acme");
  EXPECT_EQ(TenantRegistry::TenantOf("idemkey.system"), std::nullopt);
}

TEST_F(TenantRegistryTest, RegisteredTenantsSurviveAReopen) {
  {
    TenantRegistry registry(db(), extra_cf());
    ASSERT_TRUE(registry.Register("acme", 100).ok());
    ASSERT_TRUE(registry.Register("globex", 200).ok());
    ASSERT_TRUE(registry.Unregister("globex").ok());
  }
  Reopen();
  TenantRegistry registry(db(), extra_cf());
  EXPECT_EQ(*registry.ReadAll(), (CreatedMs{{"acme", 100}}));
}

// After a crash between a column family and its registry entry, the column
// families are the truth.
TEST_F(TenantRegistryTest, ReconcileFollowsTheColumnFamilies) {
  TenantRegistry registry(db(), extra_cf());
  ASSERT_TRUE(registry.Register("acme", 100).ok());
  ASSERT_TRUE(registry.Register("dropped", 150).ok());  // its CF is gone
  absl::StatusOr<CreatedMs> created =
      registry.Reconcile({"acme", "created"}, /*now_ms=*/999);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(*created, (CreatedMs{{"acme", 100}, {"created", 999}}));
  EXPECT_EQ(*registry.ReadAll(), *created);
}

}  // namespace
}  // namespace idemkey::store
