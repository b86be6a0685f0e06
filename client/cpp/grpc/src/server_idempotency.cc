#include "idemkey/grpc/server_idempotency.h"

#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace idemkey::rpc {
namespace {

using middleware::Action;
using middleware::Decision;
using middleware::Rejection;
using middleware::RejectReason;

// StoredResponse header names (see the header comment).
constexpr char kMessageHeader[] = "grpc-message";
constexpr char kDetailsHeader[] = "grpc-status-details-bin";
constexpr char kInitialPrefix[] = "initial/";
constexpr char kTrailingPrefix[] = "trailing/";

// The same message always gives the same bytes (map order included), so a
// retry of the same request has the same fingerprint.
std::string SerializeDeterministic(const google::protobuf::Message& message) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  return out;
}

void Apply(const ReplyMetadata& metadata, grpc::CallbackServerContext* ctx) {
  for (const auto& [name, value] : metadata.initial()) {
    ctx->AddInitialMetadata(name, value);
  }
  for (const auto& [name, value] : metadata.trailing()) {
    ctx->AddTrailingMetadata(name, value);
  }
}

void AddHeader(idemkey::v1::StoredResponse& stored, std::string name,
               const std::string& value) {
  idemkey::v1::Header* h = stored.add_headers();
  h->set_name(std::move(name));
  h->set_value(value);
}

idemkey::v1::StoredResponse Capture(const grpc::Status& status,
                                    const ReplyMetadata& metadata,
                                    const google::protobuf::Message& response) {
  idemkey::v1::StoredResponse stored;
  stored.set_status_code(static_cast<int32_t>(status.error_code()));
  if (!status.error_message().empty()) {
    AddHeader(stored, kMessageHeader, status.error_message());
  }
  if (!status.error_details().empty()) {
    AddHeader(stored, kDetailsHeader, status.error_details());
  }
  for (const auto& [name, value] : metadata.initial()) {
    AddHeader(stored, absl::StrCat(kInitialPrefix, name), value);
  }
  for (const auto& [name, value] : metadata.trailing()) {
    AddHeader(stored, absl::StrCat(kTrailingPrefix, name), value);
  }
  // gRPC sends no response message with an error status.
  if (status.ok()) stored.set_body(SerializeDeterministic(response));
  return stored;
}

grpc::Status Replay(const idemkey::v1::StoredResponse& stored,
                    absl::string_view full_method,
                    grpc::CallbackServerContext* ctx,
                    google::protobuf::Message* response) {
  const int32_t code = stored.status_code();
  if (code < 0 || code > grpc::StatusCode::UNAUTHENTICATED) {
    return grpc::Status(
        grpc::StatusCode::INTERNAL,
        absl::StrCat("the stored response of this idempotency key has status ",
                     code, ", which is not a gRPC status code"));
  }
  if (code == grpc::StatusCode::OK &&
      !response->ParseFromString(stored.body())) {
    return grpc::Status(
        grpc::StatusCode::INTERNAL,
        absl::StrCat("the stored response of this idempotency key does not "
                     "parse as the response of ",
                     full_method));
  }
  std::string message;
  std::string details;
  for (const idemkey::v1::Header& h : stored.headers()) {
    absl::string_view name = h.name();
    if (name == kMessageHeader) {
      message = h.value();
    } else if (name == kDetailsHeader) {
      details = h.value();
    } else if (absl::ConsumePrefix(&name, kInitialPrefix)) {
      ctx->AddInitialMetadata(std::string(name), h.value());
    } else if (absl::ConsumePrefix(&name, kTrailingPrefix)) {
      ctx->AddTrailingMetadata(std::string(name), h.value());
    }
  }
  ctx->AddInitialMetadata(kReplayedMetadata, "true");
  if (stored.body_omitted())
    ctx->AddInitialMetadata(kBodyOmittedMetadata, "true");
  return grpc::Status(static_cast<grpc::StatusCode>(code), message, details);
}

grpc::Status Reject(const Rejection& r, grpc::CallbackServerContext* ctx) {
  grpc::StatusCode code = grpc::StatusCode::INTERNAL;
  switch (r.reason) {
    case RejectReason::kMissingTenant:
      code = grpc::StatusCode::UNAUTHENTICATED;
      break;
    case RejectReason::kMissingKey:
    case RejectReason::kMalformedKey:
      code = grpc::StatusCode::INVALID_ARGUMENT;
      break;
    case RejectReason::kInProgress:
      code = grpc::StatusCode::ABORTED;
      ctx->AddTrailingMetadata(kRetryAfterMetadata,
                               std::to_string(r.retry_after_seconds));
      break;
    case RejectReason::kMismatch:
      code = grpc::StatusCode::FAILED_PRECONDITION;
      break;
    case RejectReason::kUnavailable:
      code = grpc::StatusCode::UNAVAILABLE;
      break;
    case RejectReason::kInternal:
      break;
  }
  return grpc::Status(code, r.detail);
}

struct Call {
  middleware::IdempotencyCore* core;
  const GrpcServerIdempotency::TenantFn* tenant_fn;
  grpc::CallbackServerContext* ctx;
  const google::protobuf::Message* request;
  google::protobuf::Message* response;
  absl::string_view full_method;
  const GrpcServerIdempotency::Handler* handler;
};

// One call through the middleware; exceptions propagate (after the
// Execution's destructor released the key).
grpc::Status Process(const Call& call) {
  const std::string tenant = (*call.tenant_fn)(call.ctx);
  const auto& client_metadata = call.ctx->client_metadata();
  auto key_it = client_metadata.find(kIdempotencyKeyMetadata);
  const bool has_key = key_it != client_metadata.end();
  const absl::string_view key =
      has_key ? absl::string_view(key_it->second.data(), key_it->second.size())
              : absl::string_view();
  const std::string body = SerializeDeterministic(*call.request);
  Decision d = call.core->Begin({.method = kGrpcMethod,
                                 .route = call.full_method,
                                 .tenant = tenant,
                                 .key = key,
                                 .has_key = has_key,
                                 .body = body});
  switch (d.action) {
    case Action::kBypass: {
      ReplyMetadata metadata;
      grpc::Status status =
          (*call.handler)(*call.request, call.response, &metadata);
      Apply(metadata, call.ctx);
      return status;
    }
    case Action::kReplay:
      return Replay(d.replay, call.full_method, call.ctx, call.response);
    case Action::kReject:
      return Reject(d.rejection, call.ctx);
    case Action::kRun: {
      ReplyMetadata metadata;
      // If the handler throws, d.execution releases the key on the way out.
      grpc::Status status =
          (*call.handler)(*call.request, call.response, &metadata);
      // Stored before the answer goes out (unless store_after_response), so
      // that a retry that follows the answer finds it. The answer goes out
      // whatever the key service says: a lost lease only means this answer
      // is not the one stored.
      d.execution->Finish(Capture(status, metadata, *call.response))
          .IgnoreError();
      Apply(metadata, call.ctx);
      return status;
    }
  }
  return grpc::Status(grpc::StatusCode::INTERNAL, "unknown middleware action");
}

grpc::Status ProcessCatching(const Call& call) {
  try {
    return Process(call);
  } catch (const std::exception& e) {
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        absl::StrCat(call.full_method, " failed: ", e.what()));
  } catch (...) {
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        absl::StrCat(call.full_method, " failed"));
  }
}

}  // namespace

middleware::MiddlewareOptions DefaultGrpcOptions() {
  middleware::MiddlewareOptions options;
  options.covered_methods = {kGrpcMethod};
  options.not_final_statuses = {grpc::StatusCode::UNAVAILABLE,
                                grpc::StatusCode::RESOURCE_EXHAUSTED};
  return options;
}

GrpcServerIdempotency::GrpcServerIdempotency(
    std::shared_ptr<middleware::IdempotencyCore> core, TenantFn tenant,
    Executor executor)
    : core_(std::move(core)),
      tenant_(std::move(tenant)),
      executor_(std::move(executor)) {}

grpc::ServerUnaryReactor* GrpcServerIdempotency::HandleMessage(
    grpc::CallbackServerContext* ctx, const google::protobuf::Message* request,
    google::protobuf::Message* response, absl::string_view full_method,
    Handler handler) const {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  // ctx, request and response live until the reactor finishes.
  auto work = [core = core_, tenant_fn = tenant_, ctx, request, response,
               method = std::string(full_method), handler = std::move(handler),
               reactor] {
    reactor->Finish(ProcessCatching(
        {core.get(), &tenant_fn, ctx, request, response, method, &handler}));
  };
  if (executor_) {
    executor_(std::move(work));
  } else {
    work();
  }
  return reactor;
}

}  // namespace idemkey::rpc
