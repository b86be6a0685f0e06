// libFuzzer target: the middleware core's handling of the request it is
// given (method, route, tenant, Idempotency-Key header, body), over the
// in-process key service (the server's state machine in memory).
//
// Never crashes, and its decisions are consistent:
//   - an uncovered method, an excluded route or no tenant: bypass;
//   - no key: bypass, or "missing key" when keys are required;
//   - a key that is not 1-max_key_bytes of printable ASCII: "malformed key",
//     and the key service is never asked;
//   - otherwise the first attempt runs (or the service refuses the tenant);
//     once it finished, the same request replays the same bytes and the
//     same key with another body is refused as a mismatch; while it runs, a
//     second attempt is "in progress"; after a release it runs again.

#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "idemkey/middleware/core.h"
#include "idemkey/rules/limits.h"
#include "idemkey/rules/validation.h"
#include "idemkey/testing/in_process_key_service.h"

namespace {

using idemkey::middleware::Action;
using idemkey::middleware::Decision;
using idemkey::middleware::IdempotencyCore;
using idemkey::middleware::IncomingRequest;
using idemkey::middleware::MiddlewareOptions;
using idemkey::middleware::RejectReason;
using idemkey::testing::InProcessKeyService;

void Fail(const char* what) {
  std::fprintf(stderr, "middleware_core_fuzz: %s\n", what);
  std::abort();
}

bool ValidKey(const std::string& key, size_t max) {
  if (key.empty() || key.size() > max) return false;
  for (unsigned char c : key) {
    if (c < 0x21 || c > 0x7E) return false;
  }
  return true;
}

bool Rejected(const Decision& d, RejectReason reason) {
  return d.action == Action::kReject && d.rejection.reason == reason;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  MiddlewareOptions options;
  options.require_key = in.ConsumeBool();
  options.max_key_bytes = in.ConsumeIntegralInRange<size_t>(1, 300);
  if (in.ConsumeBool()) options.excluded_routes.insert("POST /v1/login");
  options.replay_cache_entries = in.ConsumeBool() ? 8 : 0;
  const std::string method =
      in.ConsumeBool() ? in.PickValueInArray({"POST", "PUT", "PATCH", "DELETE",
                                              "GET", "HEAD", "post"})
                       : in.ConsumeRandomLengthString(16);
  const std::string route =
      in.ConsumeBool() ? in.PickValueInArray({"/v1/charges", "/v1/login"})
                       : in.ConsumeRandomLengthString(64);
  const std::string tenant =
      in.ConsumeBool() ? in.PickValueInArray({"acme", "", "Acme", "a b"})
                       : in.ConsumeRandomLengthString(70);
  const bool has_key = in.ConsumeBool();
  const std::string key = in.ConsumeRandomLengthString(320);
  const std::string body = in.ConsumeRemainingBytesAsString();

  auto keys = std::make_shared<InProcessKeyService>();
  IdempotencyCore core(keys, options);
  const IncomingRequest request{.method = method,
                                .route = route,
                                .tenant = tenant,
                                .key = key,
                                .has_key = has_key,
                                .body = body};

  const bool covered =
      options.covered_methods.count(method) > 0 &&
      options.excluded_routes.count(method + " " + route) == 0 &&
      !tenant.empty();
  Decision first = core.Begin(request);
  if (!covered) {
    if (first.action != Action::kBypass) Fail("uncovered request not bypassed");
    return 0;
  }
  if (!has_key) {
    if (options.require_key ? !Rejected(first, RejectReason::kMissingKey)
                            : first.action != Action::kBypass) {
      Fail("request without a key: wrong decision");
    }
    return 0;
  }
  if (!ValidKey(key, options.max_key_bytes)) {
    if (!Rejected(first, RejectReason::kMalformedKey)) {
      Fail("malformed key not rejected as malformed");
    }
    if (first.rejection.detail.empty()) Fail("rejection without detail");
    return 0;
  }
  // A valid key: the service decides. Only the tenant can make it refuse.
  const bool valid_tenant = idemkey::rules::ValidateTenantName(tenant).ok();
  // A core configured for longer keys than the service takes (its default:
  // 256 bytes) passes them on, and the service refuses them.
  const bool service_takes_key =
      key.size() <= idemkey::rules::Limits().max_key_bytes;
  if (!valid_tenant || !service_takes_key) {
    if (!Rejected(first, RejectReason::kInternal)) {
      Fail("invalid tenant or over-long key not refused by the service");
    }
    return 0;
  }
  if (first.action != Action::kRun || first.execution == nullptr) {
    Fail("first attempt of a fresh key does not run");
  }
  // While it runs, another attempt is told to come back later.
  Decision second = core.Begin(request);
  if (!Rejected(second, RejectReason::kInProgress) ||
      second.rejection.retry_after_seconds < 1) {
    Fail("second attempt while running is not \"in progress\"");
  }
  if (body.size() % 3 == 0) {
    // The handler gave up: the key is free again.
    if (!first.execution->Release().ok()) Fail("release failed");
    first.execution.reset();
    Decision again = core.Begin(request);
    if (again.action != Action::kRun) Fail("released key does not run again");
    return 0;  // `again` releases on destruction
  }
  idemkey::v1::StoredResponse response;
  response.set_status_code(201);
  auto* h = response.add_headers();
  h->set_name("X-Echo");
  h->set_value(key);
  response.set_body(body);
  if (!first.execution->Finish(response).ok()) Fail("finish failed");
  first.execution.reset();

  Decision replay = core.Begin(request);
  if (replay.action != Action::kReplay ||
      replay.replay.SerializeAsString() != response.SerializeAsString()) {
    Fail("finished request does not replay its response byte for byte");
  }
  std::string other_body = body + "x";
  IncomingRequest other = request;
  other.body = other_body;
  if (!Rejected(core.Begin(other), RejectReason::kMismatch)) {
    Fail("same key, other body: not a mismatch");
  }
  return 0;
}
