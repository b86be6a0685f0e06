// example_flags.h — the flags both example app servers share: how to reach
// idemkeyd and how the middleware behaves.
//
//   int main(int argc, char** argv) {
//     examples::SetUpUsage("payments-http", "a payments API ...");
//     absl::ParseCommandLine(argc, argv);
//     absl::StatusOr<client::ClientOptions> c =
//     examples::ClientOptionsFromFlags(); middleware::MiddlewareOptions m =
//     http::DefaultHttpOptions(); examples::ApplyMiddlewareFlags(&m);
//
// Flags: --idemkey, --idemkey_cacert, --idemkey_token_env, --fail_open,
// --lease, --require_tenant, --wait_for_result, --replay_cache_entries.

#ifndef IDEMKEY_CLIENT_CPP_EXAMPLES_EXAMPLE_FLAGS_H_
#define IDEMKEY_CLIENT_CPP_EXAMPLES_EXAMPLE_FLAGS_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "idemkey/client/client.h"
#include "idemkey/middleware/core.h"

namespace idemkey::examples {

// --help lists the flags of the program's own source file and of this one.
void SetUpUsage(absl::string_view source_file, absl::string_view usage);

// How to reach idemkeyd; INVALID_ARGUMENT when the CA file cannot be read.
absl::StatusOr<client::ClientOptions> ClientOptionsFromFlags();

// Sets fail_open, lease and heartbeat_interval, require_tenant,
// wait_for_result and replay_cache_entries.
void ApplyMiddlewareFlags(middleware::MiddlewareOptions* options);

}  // namespace idemkey::examples

#endif  // IDEMKEY_CLIENT_CPP_EXAMPLES_EXAMPLE_FLAGS_H_
