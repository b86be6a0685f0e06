#include "idemkey/rules/validation.h"

#include "gtest/gtest.h"

namespace idemkey::rules {
namespace {

TEST(ValidationTest, KeyBoundaries) {
  const Limits limits;
  EXPECT_TRUE(ValidateKey(limits, "a").ok());
  EXPECT_TRUE(ValidateKey(limits, std::string(256, '~')).ok());
  EXPECT_TRUE(ValidateKey(limits, "!").ok());  // 0x21, the lowest allowed
  EXPECT_FALSE(ValidateKey(limits, "").ok());
  EXPECT_FALSE(ValidateKey(limits, std::string(257, 'a')).ok());
  EXPECT_FALSE(ValidateKey(limits, "a b").ok());
  EXPECT_FALSE(ValidateKey(limits, std::string("a\0b", 3)).ok());
  EXPECT_FALSE(ValidateKey(limits, "\x7f").ok());
}

TEST(ValidationTest, ErrorMessagesQuoteSafely) {
  absl::Status s = ValidateKey(Limits(), std::string("bad\"\n", 5));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "key \"bad\\x22\\x0a\" has byte 0x0a at offset 4; it must be 1-256 "
            "bytes of printable ASCII (0x21-0x7E)");
}

TEST(ValidationTest, TenantNames) {
  EXPECT_TRUE(ValidateTenantName("acme").ok());
  EXPECT_TRUE(ValidateTenantName("0b5f7c1e-8a2d-4e2b-9c3a-1d2e3f4a5b6c").ok());
  EXPECT_TRUE(ValidateTenantName("a.b_c-d").ok());
  EXPECT_TRUE(ValidateTenantName(std::string(64, 'x')).ok());
  EXPECT_FALSE(ValidateTenantName("").ok());
  EXPECT_FALSE(ValidateTenantName(std::string(65, 'x')).ok());
  EXPECT_FALSE(ValidateTenantName("-acme").ok());
  EXPECT_FALSE(ValidateTenantName("_acme").ok());
  EXPECT_FALSE(ValidateTenantName("Acme").ok());
  EXPECT_FALSE(ValidateTenantName("ac me").ok());
  EXPECT_FALSE(ValidateTenantName("ac/me").ok());
}

TEST(ValidationTest, TtlAndLeaseRanges) {
  const Limits limits;
  EXPECT_EQ(*ResolveTtl(limits, 0), limits.default_ttl_ms);
  EXPECT_EQ(*ResolveTtl(limits, 60'000), 60'000);
  EXPECT_EQ(*ResolveTtl(limits, limits.max_ttl_ms), limits.max_ttl_ms);
  EXPECT_FALSE(ResolveTtl(limits, 59'999).ok());
  EXPECT_FALSE(ResolveTtl(limits, limits.max_ttl_ms + 1).ok());
  EXPECT_FALSE(ResolveTtl(limits, -1).ok());
  EXPECT_EQ(*ResolveLease(limits, 0), 30'000);
  EXPECT_FALSE(ResolveLease(limits, 999).ok());
  EXPECT_FALSE(ResolveLease(limits, limits.max_lease_ms + 1).ok());
}

TEST(ValidationTest, FingerprintMustBeSha256Sized) {
  EXPECT_TRUE(ValidateFingerprint(std::string(32, '\0')).ok());
  EXPECT_FALSE(ValidateFingerprint("").ok());
  EXPECT_FALSE(ValidateFingerprint(std::string(33, 'f')).ok());
}

}  // namespace
}  // namespace idemkey::rules
