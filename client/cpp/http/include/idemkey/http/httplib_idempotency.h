// httplib_idempotency.h — the idempotency middleware for cpp-httplib servers.
//
// A thin adapter over IdempotencyCore (idemkey/middleware/core.h): it reads
// the Idempotency-Key header, asks the core, and replays, rejects or runs the
// wrapped handler, storing what it answered.
//
//   auto keys = idemkey::client::Client::Create({.address = "idemkey:50051"});
//   auto core = std::make_shared<idemkey::middleware::IdempotencyCore>(
//       keys, idemkey::http::DefaultHttpOptions());
//   idemkey::http::HttplibIdempotency idempotency(
//       core, [](const httplib::Request& req) {
//         return req.get_header_value("X-Org-Id");  // "" = no tenant: bypass
//       });
//   server.Post("/v1/charges", idempotency.Wrap(CreateCharge));
//
// What clients see (docs/semantics.md, "Middleware"):
//   - the first request runs the handler; its status, headers and body are
//     stored;
//   - a retry with the same key and body gets them back byte for byte, plus
//     "Idempotency-Replayed: true";
//   - 400 for a missing (when required) or malformed key, 409 with Retry-After
//     while the first attempt runs, 422 for the same key with another body,
//     503 when the key service is unreachable (fail closed); each with an
//     RFC 7807 application/problem+json body;
//   - a handler that throws releases the key (the exception propagates to
//     httplib, which answers 500) so a retry runs it again.
// Responses written through content providers (streaming) are not supported.

#ifndef IDEMKEY_HTTP_HTTPLIB_IDEMPOTENCY_H_
#define IDEMKEY_HTTP_HTTPLIB_IDEMPOTENCY_H_

#include <functional>
#include <memory>
#include <string>

#include "httplib.h"
#include "idemkey/middleware/core.h"

namespace idemkey::http {

// MiddlewareOptions with HTTP's "not final" statuses: 429 and 503 are
// released, not stored, so a retry runs the handler again.
middleware::MiddlewareOptions DefaultHttpOptions();

class HttplibIdempotency {
 public:
  // The tenant of a request; an empty string means none (the request
  // bypasses the middleware).
  using TenantFn = std::function<std::string(const httplib::Request&)>;

  HttplibIdempotency(std::shared_ptr<middleware::IdempotencyCore> core,
                     TenantFn tenant);

  // `handler` wrapped with the middleware; the result may be registered for
  // any route and method.
  httplib::Server::Handler Wrap(httplib::Server::Handler handler) const;

 private:
  std::shared_ptr<middleware::IdempotencyCore> core_;
  TenantFn tenant_;
};

}  // namespace idemkey::http

#endif  // IDEMKEY_HTTP_HTTPLIB_IDEMPOTENCY_H_
