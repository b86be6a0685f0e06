// The fingerprint against the shared vectors file
// (common/rules/testdata/fingerprint_vectors.json), which every language's
// middleware is checked against too.
#include "idemkey/rules/fingerprint.h"

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/escaping.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace idemkey::rules {
namespace {

google::protobuf::Struct LoadVectors() {
  std::ifstream in(FINGERPRINT_VECTORS_PATH);
  std::stringstream text;
  text << in.rdbuf();
  google::protobuf::Struct vectors;
  EXPECT_TRUE(
      google::protobuf::util::JsonStringToMessage(text.str(), &vectors).ok())
      << "cannot parse " << FINGERPRINT_VECTORS_PATH;
  return vectors;
}

TEST(FingerprintTest, MatchesEveryVectorOfTheSharedFile) {
  const google::protobuf::Struct file = LoadVectors();
  const auto& vectors = file.fields().at("vectors").list_value().values();
  ASSERT_GE(vectors.size(), 10);
  for (const auto& v : vectors) {
    const auto& f = v.struct_value().fields();
    std::string body;
    ASSERT_TRUE(
        absl::Base64Unescape(f.at("body_base64").string_value(), &body));
    const std::string got = Fingerprint(f.at("method").string_value(),
                                        f.at("route").string_value(), body);
    EXPECT_EQ(absl::BytesToHexString(got),
              f.at("fingerprint_hex").string_value())
        << "vector " << f.at("name").string_value();
  }
}

TEST(FingerprintTest, LengthPrefixesKeepThePartsApart) {
  EXPECT_EQ(Fingerprint("POST", "/a", "b").size(), 32u);
  EXPECT_EQ(Fingerprint("POST", "/a", "b"), Fingerprint("POST", "/a", "b"));
  EXPECT_NE(Fingerprint("POST", "/a", "b"), Fingerprint("POST", "/ab", ""));
  EXPECT_NE(Fingerprint("POST", "/a", "b"), Fingerprint("PUT", "/a", "b"));
}

}  // namespace
}  // namespace idemkey::rules
