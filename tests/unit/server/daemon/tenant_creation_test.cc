#include "server/daemon/tenant_creation.h"

#include "gtest/gtest.h"

namespace idemkey {
namespace {

using service::TenantCreators;

TEST(ResolveTenantCreationTest, AutoIsSafeWhereverIdemkeydListens) {
  // Tokens: a token's first Reserve creates its own tenant only.
  TenantCreation c = *ResolveTenantCreation("auto", true, false);
  EXPECT_TRUE(c.auto_create);
  EXPECT_EQ(c.creators, TenantCreators::kOwnTenantTokens);
  // No tokens: on loopback anyone on the machine may; beyond it, nobody.
  c = *ResolveTenantCreation("auto", false, true);
  EXPECT_TRUE(c.auto_create);
  EXPECT_EQ(c.creators, TenantCreators::kAnyCaller);
  EXPECT_FALSE(ResolveTenantCreation("auto", false, false)->auto_create);
}

TEST(ResolveTenantCreationTest, TrueAndFalseMeanWhatTheySay) {
  for (bool auth : {false, true}) {
    for (bool loopback : {false, true}) {
      TenantCreation on = *ResolveTenantCreation("true", auth, loopback);
      EXPECT_TRUE(on.auto_create);
      EXPECT_EQ(on.creators, TenantCreators::kAnyCaller);
      EXPECT_FALSE(ResolveTenantCreation("false", auth, loopback)->auto_create);
    }
  }
}

TEST(ResolveTenantCreationTest, AnythingElseIsRefused) {
  absl::StatusOr<TenantCreation> c = ResolveTenantCreation("yes", false, true);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("auto, true or false"),
            absl::string_view::npos);
}

}  // namespace
}  // namespace idemkey
