#include "server/store/blocking.h"

#include "absl/strings/cord.h"

namespace idemkey::store {
namespace {

thread_local bool may_block = true;

// The payload marking WouldBlockError, so that no other UNAVAILABLE (a disk
// error, shutting down) is mistaken for it.
constexpr char kWouldBlockPayload[] = "idemkey.store/would-block";

}  // namespace

NonBlockingScope::NonBlockingScope() : previous_(may_block) {
  may_block = false;
}

NonBlockingScope::~NonBlockingScope() { may_block = previous_; }

bool MayBlock() { return may_block; }

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
