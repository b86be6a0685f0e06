#include "idemkey/rules/tokens_file.h"

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace idemkey::rules {
namespace {

TEST(TokensFileTest, LineIsTheHexDigestAndThePrincipal) {
  // SHA-256("abc"), the FIPS 180-2 example.
  EXPECT_EQ(TokensFileLine("abc", "acme"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad "
            "acme");
}

TEST(TokensFileTest, ParsesWhatTokensFileLineWrites) {
  for (const char* principal : {"acme", "admin"}) {
    absl::StatusOr<std::optional<TokensFileEntry>> e =
        ParseTokensFileLine(TokensFileLine("idk_secret", principal));
    ASSERT_TRUE(e.ok()) << e.status();
    ASSERT_TRUE(e->has_value());
    EXPECT_EQ((*e)->digest, TokenDigest("idk_secret"));
    EXPECT_EQ((*e)->principal, principal);
  }
}

TEST(TokensFileTest, BlankAndCommentLinesHoldNoEntry) {
  for (const char* line : {"", "   ", "# a comment", "\t# indented"}) {
    absl::StatusOr<std::optional<TokensFileEntry>> e =
        ParseTokensFileLine(line);
    ASSERT_TRUE(e.ok()) << line;
    EXPECT_FALSE(e->has_value()) << line;
  }
}

TEST(TokensFileTest, ACommentAfterTheEntryIsIgnored) {
  absl::StatusOr<std::optional<TokensFileEntry>> e =
      ParseTokensFileLine(TokensFileLine("t", "acme") + "  # acme's app");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ((*e)->principal, "acme");
}

TEST(TokensFileTest, BadLinesSayWhatIsWrongWithoutEchoingTheDigest) {
  const std::string digest = absl::BytesToHexString(TokenDigest("t"));
  for (const std::string& line :
       {digest, digest + " acme extra", digest.substr(1) + " acme",
        "zz" + digest.substr(2) + " acme", digest + " Not_A_Tenant"}) {
    absl::StatusOr<std::optional<TokensFileEntry>> e =
        ParseTokensFileLine(line);
    ASSERT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument) << line;
    EXPECT_FALSE(absl::StrContains(e.status().message(), digest.substr(2, 20)))
        << e.status();
  }
}

}  // namespace
}  // namespace idemkey::rules
