// call_options.h — how one store call may run: whether it may wait for I/O.
//
// gRPC's callback threads must not block, yet most store calls need no I/O:
// the record is in memory and the write goes to the WAL's page cache (the
// fsync is shared later, Backend::WhenDurable). So idemkeyd first runs a call
// with `may_wait_for_io` false; a backend that would have to wait (a disk
// read, a write stall, a synced write, creating a tenant) returns
// WouldBlockError() instead, having changed nothing, and the caller runs the
// same call again, from the start, where it may wait (as LevelDB passes
// ReadOptions, the choice travels with the call):
//
//   absl::Status s = store.Lookup("acme", "k1", {.may_wait_for_io = false});
//   if (IsWouldBlock(s)) pool->Submit([&] { store.Lookup("acme", "k1"); });

#ifndef IDEMKEY_SERVER_STORE_CALL_OPTIONS_H_
#define IDEMKEY_SERVER_STORE_CALL_OPTIONS_H_

#include "absl/status/status.h"

namespace idemkey::store {

struct CallOptions {
  // False: answer WouldBlockError() rather than wait for the disk (or for
  // any other I/O), and change nothing when doing so.
  bool may_wait_for_io = true;
};

// What a backend returns instead of waiting when !may_wait_for_io.
// UNAVAILABLE, so that if it ever reached a client it would be retried, but
// it never should: IsWouldBlock tells it from every other status (a disk
// error, shutting down).
absl::Status WouldBlockError();
bool IsWouldBlock(const absl::Status& status);

}  // namespace idemkey::store

#endif  // IDEMKEY_SERVER_STORE_CALL_OPTIONS_H_
