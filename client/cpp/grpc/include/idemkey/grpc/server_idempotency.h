// server_idempotency.h — the idempotency middleware for unary methods of the
// gRPC callback API.
//
// A thin adapter over IdempotencyCore (idemkey/middleware/core.h). C++ server
// interceptors cannot skip a handler, so this wraps the handler instead: it
// reads the `idempotency-key` client metadata, fingerprints the request, and
// replays, rejects or runs the handler, storing what it answered.
//
//   auto keys = idemkey::client::Client::Create({.address = "idemkey:50051"});
//   idemkey::middleware::MiddlewareOptions options =
//       idemkey::rpc::DefaultGrpcOptions();
//   options.require_key = true;
//   auto core = std::make_shared<idemkey::middleware::IdempotencyCore>(
//       keys, options);
//
//   class PaymentsImpl final : public Payments::CallbackService {
//    public:
//     explicit PaymentsImpl(std::shared_ptr<IdempotencyCore> core)
//         : idempotency_(std::move(core), [](grpc::CallbackServerContext* c) {
//             auto it = c->client_metadata().find("x-org-id");
//             return it == c->client_metadata().end()
//                        ? std::string()  // no tenant: bypass
//                        : std::string(it->second.data(), it->second.size());
//           }) {}
//     grpc::ServerUnaryReactor* CreateCharge(grpc::CallbackServerContext* ctx,
//                                            const CreateChargeRequest* req,
//                                            Charge* resp) override {
//       return idempotency_.Handle(
//           ctx, req, resp, "/idemkey.examples.Payments/CreateCharge",
//           [](const CreateChargeRequest& r, Charge* c, ReplyMetadata* md) {
//             c->set_id(...);                    // charge the card
//             md->AddInitial("x-charge-id", c->id());
//             return grpc::Status::OK;
//           });
//     }
//    private:
//     idemkey::rpc::GrpcServerIdempotency idempotency_;
//   };
//
// What clients see (docs/semantics.md, "Middleware"):
//   - the first call runs the handler; its status code, message, error
//     details, response message and metadata are stored;
//   - a retry with the same key and request gets them back, plus initial
//     metadata `idempotency-replayed: true`; error statuses are replayed too,
//     except the options' not_final_statuses (UNAVAILABLE and
//     RESOURCE_EXHAUSTED by default), which release the key instead;
//   - INVALID_ARGUMENT for a missing (when required) or malformed key,
//     ABORTED with trailing metadata `retry-after: <seconds>` while the first
//     attempt runs, FAILED_PRECONDITION for the same key with another request,
//     UNAVAILABLE when the key service is unreachable (fail closed), INTERNAL
//     when it refused the call; the status message says what happened;
//   - a handler that throws releases the key and the call ends with INTERNAL
//     (the exception does not reach gRPC), so a retry runs the handler again.
//
// Covered-method convention: the core sees every wrapped call as method
// "grpc" (kGrpcMethod) with the full method name as route, so
// MiddlewareOptions::covered_methods must contain "grpc" (DefaultGrpcOptions
// does) and a method is excluded with excluded_routes entries such as
// "grpc /idemkey.examples.Payments/Login". The fingerprint is SHA-256 over
// "grpc", the full method name and the deterministic serialization of the
// request message.
//
// Metadata: the handler adds reply metadata through ReplyMetadata (the
// wrapper both sets it on the context and stores it; ServerContext has no
// getter for metadata already added). Metadata added to the context directly
// is sent but not stored, so a replay would lack it.
//
// Threads: by default the key-service calls (Reserve, then Complete) and the
// handler run synchronously on the gRPC thread that called the method, which
// the callback API expects to be short. Keep handlers short, or pass an
// Executor that runs the work on the application's own pool; the call is then
// finished from that pool.
//
// Stored layout (StoredResponse, as `idemctl get` shows it): status_code is
// the gRPC code; headers are "grpc-message" (the status message, when not
// empty), "grpc-status-details-bin" (the error details, when not empty),
// "initial/<name>" and "trailing/<name>" for each metadata entry in order
// ('/' cannot occur in a gRPC metadata name, so these never collide); body
// is the serialized response message (empty unless the status is OK).

#ifndef IDEMKEY_GRPC_SERVER_IDEMPOTENCY_H_
#define IDEMKEY_GRPC_SERVER_IDEMPOTENCY_H_

#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "grpcpp/grpcpp.h"
#include "idemkey/grpc/metadata_names.h"
#include "idemkey/middleware/core.h"

namespace idemkey::rpc {

// The "method" the core sees for every gRPC call (see above).
inline constexpr char kGrpcMethod[] = "grpc";

// MiddlewareOptions for gRPC: covered_methods = {"grpc"}, and UNAVAILABLE
// (14) and RESOURCE_EXHAUSTED (8) are "not final": released, not stored, so
// a retry runs the handler again.
middleware::MiddlewareOptions DefaultGrpcOptions();

// Reply metadata of a wrapped handler: sent with its answer and stored for
// replays. Names are lowercase gRPC metadata names ("-bin" for binary values).
class ReplyMetadata {
 public:
  using Entries = std::vector<std::pair<std::string, std::string>>;

  void AddInitial(std::string name, std::string value) {
    initial_.emplace_back(std::move(name), std::move(value));
  }
  void AddTrailing(std::string name, std::string value) {
    trailing_.emplace_back(std::move(name), std::move(value));
  }
  const Entries& initial() const { return initial_; }
  const Entries& trailing() const { return trailing_; }

 private:
  Entries initial_;
  Entries trailing_;
};

class GrpcServerIdempotency {
 public:
  // The tenant of a call; an empty string means none (the call bypasses the
  // middleware).
  using TenantFn = std::function<std::string(grpc::CallbackServerContext*)>;
  // Runs a task, e.g. on a thread pool; null: on the calling gRPC thread.
  using Executor = std::function<void(std::function<void()>)>;
  // A handler over the message base types (Handle adapts typed ones).
  using Handler =
      std::function<grpc::Status(const google::protobuf::Message&,
                                 google::protobuf::Message*, ReplyMetadata*)>;

  GrpcServerIdempotency(std::shared_ptr<middleware::IdempotencyCore> core,
                        TenantFn tenant, Executor executor = nullptr);

  // Runs one unary call of `full_method` ("/package.Service/Method") through
  // the middleware; return its result from the CallbackService override.
  // `handler` is callable as
  //   grpc::Status(const Req&, Resp*, ReplyMetadata*)   or
  //   grpc::Status(const Req&, Resp*).
  template <class Req, class Resp, class Fn>
  grpc::ServerUnaryReactor* Handle(grpc::CallbackServerContext* ctx,
                                   const Req* request, Resp* response,
                                   absl::string_view full_method,
                                   Fn handler) const {
    static_assert(std::is_base_of_v<google::protobuf::Message, Req> &&
                      std::is_base_of_v<google::protobuf::Message, Resp>,
                  "Req and Resp must be protobuf messages");
    return HandleMessage(
        ctx, request, response, full_method,
        [handler = std::move(handler)](const google::protobuf::Message& req,
                                       google::protobuf::Message* resp,
                                       ReplyMetadata* metadata) {
          if constexpr (std::is_invocable_v<const Fn&, const Req&, Resp*,
                                            ReplyMetadata*>) {
            return handler(static_cast<const Req&>(req),
                           static_cast<Resp*>(resp), metadata);
          } else {
            (void)metadata;
            return handler(static_cast<const Req&>(req),
                           static_cast<Resp*>(resp));
          }
        });
  }

  // Handle over the message base types.
  grpc::ServerUnaryReactor* HandleMessage(
      grpc::CallbackServerContext* ctx,
      const google::protobuf::Message* request,
      google::protobuf::Message* response, absl::string_view full_method,
      Handler handler) const;

 private:
  std::shared_ptr<middleware::IdempotencyCore> core_;
  TenantFn tenant_;
  Executor executor_;
};

}  // namespace idemkey::rpc

#endif  // IDEMKEY_GRPC_SERVER_IDEMPOTENCY_H_
