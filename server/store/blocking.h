// blocking.h — running a store call on a thread that must not wait for I/O.
//
// gRPC's callback threads must not block, yet most store calls need no I/O at
// all: the record is in a memtable or the block cache, and the write goes to
// the WAL's page cache (the fsync is shared later, see Backend::WhenDurable).
// So a call is first tried inside a NonBlockingScope; a backend that would
// have to wait (a disk read, a write stall, a synced write, creating a column
// family) returns WouldBlockError() instead, having changed nothing, and the
// caller runs the same call again on a thread that may block:
//
//   absl::Status s;
//   {
//     NonBlockingScope no_io;
//     s = work();
//   }
//   if (IsWouldBlock(s)) pool->Submit(work);  // runs it again, may block
//
// The scope is per thread, so nothing needs to be passed through the
// KeyStore to the backend.

#ifndef IDEMKEY_SERVER_STORE_BLOCKING_H_
#define IDEMKEY_SERVER_STORE_BLOCKING_H_

#include "absl/status/status.h"

namespace idemkey::store {

// While one exists on a thread, MayBlock() is false on that thread.
class NonBlockingScope {
 public:
  NonBlockingScope();
  ~NonBlockingScope();
  NonBlockingScope(const NonBlockingScope&) = delete;
  NonBlockingScope& operator=(const NonBlockingScope&) = delete;

 private:
  const bool previous_;
};

// Whether the calling thread may wait for I/O.
bool MayBlock();

// What a backend returns instead of waiting when !MayBlock(). UNAVAILABLE,
// so that if it ever reached a client it would be retried, but it never
// should: IsWouldBlock tells it from every other status.
absl::Status WouldBlockError();
bool IsWouldBlock(const absl::Status& status);

}  // namespace idemkey::store

#endif  // IDEMKEY_SERVER_STORE_BLOCKING_H_
