// The fingerprint against the shared vectors file
// (common/rules/testdata/fingerprint_vectors.json), which every language's
// middleware is checked against too.
#include "idemkey/rules/fingerprint.h"

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/escaping.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "idemkey/testing/v1/fingerprint_vectors.pb.h"

namespace idemkey::rules {
namespace {

// Read through a message of our own (no protobuf Map: Debian's protobuf is
// not built for ThreadSanitizer, and its Map's inline code crashed there).
idemkey::testing::v1::FingerprintVectors LoadVectors() {
  std::ifstream in(FINGERPRINT_VECTORS_PATH);
  std::stringstream text;
  text << in.rdbuf();
  idemkey::testing::v1::FingerprintVectors vectors;
  EXPECT_TRUE(
      google::protobuf::util::JsonStringToMessage(text.str(), &vectors).ok())
      << "cannot parse " << FINGERPRINT_VECTORS_PATH;
  return vectors;
}

TEST(FingerprintTest, MatchesEveryVectorOfTheSharedFile) {
  const idemkey::testing::v1::FingerprintVectors file = LoadVectors();
  ASSERT_GE(file.vectors_size(), 10);
  for (const auto& v : file.vectors()) {
    std::string body;
    ASSERT_TRUE(absl::Base64Unescape(v.body_base64(), &body)) << v.name();
    EXPECT_EQ(absl::BytesToHexString(Fingerprint(v.method(), v.target(), body)),
              v.fingerprint_hex())
        << "vector " << v.name();
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
