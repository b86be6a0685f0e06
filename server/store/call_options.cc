#include "server/store/call_options.h"

#include "absl/strings/cord.h"

namespace idemkey::store {
namespace {

// The payload marking WouldBlockError, so that no other UNAVAILABLE is
// mistaken for it.
constexpr char kWouldBlockPayload[] = "idemkey.store/would-block";

}  // namespace

absl::Status WouldBlockError() {
  absl::Status s = absl::UnavailableError(
      "the store call needs to wait for I/O on a thread that must not block");
  s.SetPayload(kWouldBlockPayload, absl::Cord());
  return s;
}

bool IsWouldBlock(const absl::Status& status) {
  return status.GetPayload(kWouldBlockPayload).has_value();
}

}  // namespace idemkey::store
