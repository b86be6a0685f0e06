#include "example_flags.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"

ABSL_FLAG(std::string, idemkey, "127.0.0.1:50051", "idemkeyd address");
ABSL_FLAG(std::string, idemkey_cacert, "",
          "talk TLS to idemkeyd, verifying it with this PEM CA bundle");
ABSL_FLAG(std::string, idemkey_token_env, "IDEMKEY_TOKEN",
          "environment variable holding the bearer token for idemkeyd "
          "(none when unset or empty)");
ABSL_FLAG(bool, fail_open, false,
          "run requests unprotected when idemkeyd gives no answer");
ABSL_FLAG(absl::Duration, lease, absl::Seconds(30),
          "lease of each request's key; renewed every third of it");
ABSL_FLAG(bool, require_tenant, false,
          "refuse a request without an org id (HTTP 401, gRPC "
          "UNAUTHENTICATED) instead of running it unprotected");
ABSL_FLAG(absl::Duration, wait_for_result, absl::ZeroDuration(),
          "a retry while the first request runs waits this long for its "
          "result instead of being refused as in progress");
ABSL_FLAG(int, replay_cache_entries, 0,
          "completed responses replayed from this process's memory (0: off)");

namespace idemkey::examples {

void SetUpUsage(absl::string_view source_file, absl::string_view usage) {
  static std::string* const own = new std::string(source_file);
  absl::FlagsUsageConfig config;
  // absl lists no flag by default for a program whose name differs from its
  // source file's.
  config.contains_help_flags = [](absl::string_view path) {
    return absl::EndsWith(path, *own) ||
           absl::EndsWith(path, "example_flags.cc");
  };
  config.contains_helpshort_flags = config.contains_help_flags;
  absl::SetFlagsUsageConfig(config);
  absl::SetProgramUsageMessage(usage);
}

absl::StatusOr<client::ClientOptions> ClientOptionsFromFlags() {
  client::ClientOptions options;
  options.address = absl::GetFlag(FLAGS_idemkey);
  if (const std::string ca = absl::GetFlag(FLAGS_idemkey_cacert); !ca.empty()) {
    auto credentials = client::TlsCredentialsFromFiles(ca, "", "");
    if (!credentials.ok()) return credentials.status();
    options.credentials = *credentials;
  }
  if (const char* token =
          std::getenv(absl::GetFlag(FLAGS_idemkey_token_env).c_str())) {
    options.token = token;
  }
  return options;
}

void ApplyMiddlewareFlags(middleware::MiddlewareOptions* options) {
  options->fail_open = absl::GetFlag(FLAGS_fail_open);
  options->lease = absl::GetFlag(FLAGS_lease);
  options->heartbeat_interval = options->lease / 3;
  options->require_tenant = absl::GetFlag(FLAGS_require_tenant);
  options->wait_for_result = absl::GetFlag(FLAGS_wait_for_result);
  options->replay_cache_entries = static_cast<size_t>(
      std::max(0, absl::GetFlag(FLAGS_replay_cache_entries)));
}

}  // namespace idemkey::examples
