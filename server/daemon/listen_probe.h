// listen_probe.h — whether idemkeyd will be able to listen on --listen,
// asked before anything else is opened.
//
// gRPC reports a taken port as one long nested status line of its own, and
// only after the data directory is open. Binding the address first, the way
// gRPC will (SO_REUSEADDR, no SO_REUSEPORT), turns the common failures into
// one line that says what to do, before RocksDB prints anything.
//
//   if (absl::Status s = ProbeListenAddress("127.0.0.1:50051"); !s.ok()) {
//     Log(LogLevel::kError, absl::StrCat("cannot start: ", s.message()));
//   }
//
// The probe's socket is closed before it returns, so a port taken between
// the probe and gRPC's bind is still refused, in gRPC's words.

#ifndef IDEMKEY_SERVER_DAEMON_LISTEN_PROBE_H_
#define IDEMKEY_SERVER_DAEMON_LISTEN_PROBE_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace idemkey {

// OK when some address that `listen` ("host:port", "[v6]:port") resolves to
// can be bound, or when `listen` is not host:port (a "unix:" path, a URI):
// those are left to gRPC. Otherwise INVALID_ARGUMENT (no port, a host that
// does not resolve) or FAILED_PRECONDITION (in use, not an address of this
// machine, a privileged port), naming the address.
absl::Status ProbeListenAddress(absl::string_view listen);

}  // namespace idemkey

#endif  // IDEMKEY_SERVER_DAEMON_LISTEN_PROBE_H_
