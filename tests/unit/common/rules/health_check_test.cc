#include "idemkey/rules/health_check.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace idemkey::rules {
namespace {

TEST(HealthCheckTest, RequestForTheWholeServerIsEmpty) {
  EXPECT_EQ(EncodeHealthCheckRequest(""), "");
}

TEST(HealthCheckTest, RequestNamesTheServiceAsField1) {
  EXPECT_EQ(EncodeHealthCheckRequest("idemkey.v1.KeyService"),
            std::string("\x0a\x15") + "idemkey.v1.KeyService");
  // A name of 200 bytes takes a two-byte varint length.
  const std::string long_name(200, 's');
  EXPECT_EQ(EncodeHealthCheckRequest(long_name),
            std::string("\x0a\xc8\x01") + long_name);
}

TEST(HealthCheckTest, DecodesEveryStatus) {
  EXPECT_EQ(*DecodeHealthCheckResponse(""), ServingStatus::kUnknown);
  EXPECT_EQ(*DecodeHealthCheckResponse("\x08\x01"), ServingStatus::kServing);
  EXPECT_EQ(*DecodeHealthCheckResponse("\x08\x02"), ServingStatus::kNotServing);
  EXPECT_EQ(*DecodeHealthCheckResponse("\x08\x03"),
            ServingStatus::kServiceUnknown);
}

TEST(HealthCheckTest, RefusesWhatIsNotAHealthCheckResponse) {
  for (const std::string& bad :
       {std::string("\x08\x07"), std::string("\x10\x01"), std::string("\x08"),
        std::string("xyz")}) {
    EXPECT_EQ(DecodeHealthCheckResponse(bad).status().code(),
              absl::StatusCode::kDataLoss)
        << absl::CEscape(bad);
  }
}

}  // namespace
}  // namespace idemkey::rules
