#include "idemkey/rules/tenant_name.h"

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "idemkey/rules/validation.h"
#include "idemkey/testing/v1/tenant_name_vectors.pb.h"

namespace idemkey::rules {
namespace {

// The shared vectors (common/rules/testdata/tenant_name_vectors.json), which
// the Go, Python and Node packages are checked against too: apps in several
// languages that share tenants must map an org id to the same name.
TEST(TenantNameForTest, MatchesEveryVectorOfTheSharedFile) {
  std::ifstream in(TENANT_NAME_VECTORS_PATH);
  std::stringstream text;
  text << in.rdbuf();
  idemkey::testing::v1::TenantNameVectors file;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(text.str(), &file).ok())
      << "cannot parse " << TENANT_NAME_VECTORS_PATH;
  ASSERT_GE(file.vectors_size(), 10);
  for (const auto& v : file.vectors()) {
    EXPECT_EQ(TenantNameFor(v.org_id()), v.tenant()) << "vector " << v.name();
  }
}

TEST(TenantNameForTest, AValidNameStaysAsItIs) {
  EXPECT_EQ(TenantNameFor("acme"), "acme");
  EXPECT_EQ(TenantNameFor("0b7e2c1a-4f3d-4c55-9a61-2f0c8d7e6b5a"),
            "0b7e2c1a-4f3d-4c55-9a61-2f0c8d7e6b5a");
}

TEST(TenantNameForTest, AnyIdBecomesAValidDeterministicName) {
  const std::string ids[] = {"Acme Corp",
                             "0B7E2C1A-4F3D-4C55-9A61-2F0C8D7E6B5A",
                             std::string(300, 'x'),
                             "   ",
                             "caf\xc3\xa9 \xe2\x98\x95",
                             "-leading-dash",
                             "UPPER_lower.dot"};
  for (const std::string& id : ids) {
    const std::string name = TenantNameFor(id);
    EXPECT_TRUE(ValidateTenantName(name).ok()) << id << " -> " << name;
    EXPECT_EQ(TenantNameFor(id), name);
  }
  EXPECT_EQ(TenantNameFor("Acme Corp").substr(0, 11), "acme-corp--");
}

TEST(TenantNameForTest, IdsThatLookAlikeGetDifferentNames) {
  const std::string ids[] = {"Acme Corp", "acme corp", "Acme-Corp",
                             "acme-corp", "ACME CORP", "Acme  Corp"};
  std::set<std::string> names;
  for (const std::string& id : ids) names.insert(TenantNameFor(id));
  EXPECT_EQ(names.size(), std::size(ids));
}

TEST(TenantNameForTest, NoOrganisationIsNoTenant) {
  EXPECT_EQ(TenantNameFor(""), "");
}

// A valid id shaped like a mapped name is mapped too, so it cannot take the
// name another id maps to.
TEST(TenantNameForTest, AValidIdShapedLikeAMappedNameIsMappedAgain) {
  const std::string mapped = TenantNameFor("Acme Corp");
  EXPECT_NE(TenantNameFor(mapped), mapped);
}

}  // namespace
}  // namespace idemkey::rules
