#include "idemkey/http/httplib_idempotency.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace idemkey::http {
namespace {

using middleware::Action;
using middleware::Decision;
using middleware::Rejection;
using middleware::RejectReason;

constexpr char kKeyHeader[] = "Idempotency-Key";
constexpr char kReplayedHeader[] = "Idempotency-Replayed";
constexpr char kBodyOmittedHeader[] = "Idempotency-Body-Omitted";

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(&out, "\\u%04x", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

void SendProblem(const Rejection& r, httplib::Response& res) {
  int status = 500;
  const char* type = "internal";
  switch (r.reason) {
    case RejectReason::kMissingTenant:
      status = 401;
      type = "missing-tenant";
      break;
    case RejectReason::kMissingKey:
      status = 400;
      type = "missing-key";
      break;
    case RejectReason::kMalformedKey:
      status = 400;
      type = "malformed-key";
      break;
    case RejectReason::kInProgress:
      status = 409;
      type = "in-progress";
      res.set_header("Retry-After", std::to_string(r.retry_after_seconds));
      break;
    case RejectReason::kMismatch:
      status = 422;
      type = "key-reused";
      break;
    case RejectReason::kUnavailable:
      status = 503;
      type = "unavailable";
      break;
    case RejectReason::kInternal:
      break;
  }
  res.status = status;
  res.set_content(
      absl::StrCat("{\"type\":", JsonString(absl::StrCat("urn:idemkey:", type)),
                   ",\"title\":", JsonString(r.title), ",\"status\":", status,
                   ",\"detail\":", JsonString(r.detail), "}\n"),
      "application/problem+json");
}

void SendReplay(idemkey::v1::StoredResponse& stored, httplib::Response& res) {
  res.status = stored.status_code();
  res.headers.clear();
  for (const idemkey::v1::Header& h : stored.headers()) {
    res.headers.emplace(h.name(), h.value());
  }
  res.set_header(kReplayedHeader, "true");
  if (stored.body_omitted()) res.set_header(kBodyOmittedHeader, "true");
  res.body = std::move(*stored.mutable_body());
}

idemkey::v1::StoredResponse Capture(const httplib::Response& res) {
  idemkey::v1::StoredResponse stored;
  stored.set_status_code(res.status);
  for (const auto& [name, value] : res.headers) {
    idemkey::v1::Header* h = stored.add_headers();
    h->set_name(name);
    h->set_value(value);
  }
  stored.set_body(res.body);
  return stored;
}

}  // namespace

middleware::MiddlewareOptions DefaultHttpOptions() {
  middleware::MiddlewareOptions options;
  options.not_final_statuses = {429, 503};
  return options;
}

HttplibIdempotency::HttplibIdempotency(
    std::shared_ptr<middleware::IdempotencyCore> core, TenantFn tenant)
    : core_(std::move(core)), tenant_(std::move(tenant)) {}

httplib::Server::Handler HttplibIdempotency::Wrap(
    httplib::Server::Handler handler) const {
  return [core = core_, tenant_fn = tenant_, handler = std::move(handler)](
             const httplib::Request& req, httplib::Response& res) {
    const std::string tenant = tenant_fn(req);
    const bool has_key = req.has_header(kKeyHeader);
    const std::string key = has_key ? req.get_header_value(kKeyHeader) : "";
    // The target as sent: path and query string, undecoded.
    Decision d = core->Begin({.method = req.method,
                              .route = req.path,
                              .target = req.target,
                              .tenant = tenant,
                              .key = key,
                              .has_key = has_key,
                              .body = req.body});
    switch (d.action) {
      case Action::kBypass:
        handler(req, res);
        return;
      case Action::kReplay:
        SendReplay(d.replay, res);
        return;
      case Action::kReject:
        SendProblem(d.rejection, res);
        return;
      case Action::kRun:
        // If the handler throws, d.execution releases the key on the way out.
        handler(req, res);
        // Stored before cpp-httplib sends the response (unless
        // store_after_response). The response goes out whatever the key
        // service says now; a lost lease only means this answer is not the
        // one stored.
        d.execution->Finish(Capture(res)).IgnoreError();
        return;
    }
  };
}

}  // namespace idemkey::http
