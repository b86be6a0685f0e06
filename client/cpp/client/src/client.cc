#include "idemkey/client/client.h"

#include <openssl/rand.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "call_batcher.h"
#include "call_stream.h"
#include "connection_poller.h"
#include "grpcpp/generic/generic_stub.h"
#include "idemkey/rules/health_check.h"
#include "idemkey/rules/status.h"
#include "idemkey/sync/mutex.h"

namespace idemkey::client {
namespace {

absl::Status FromGrpc(const grpc::Status& s) {
  return rules::FromGrpcStatus(s);
}

}  // namespace

std::shared_ptr<Client> Client::Create(const ClientOptions& options) {
  return std::shared_ptr<Client>(new Client(options));
}

Client::Client(const ClientOptions& options) : options_(options) {
  grpc::ChannelArguments args;
  // Stored responses reach 4 MiB; Lookup and ListRecords return them whole.
  args.SetMaxReceiveMessageSize(-1);
  // This client retries UNAVAILABLE itself, with its own backoff and
  // attempt count; gRPC's retry layer would multiply the attempts.
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  // Every address the target names (several replicas over PostgreSQL)
  // takes calls in turn; one that is draining or gone takes none, and a
  // call it failed is retried (above) on another.
  args.SetLoadBalancingPolicyName("round_robin");
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(
                  options_.reconnect_initial_backoff)));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              static_cast<int>(
                  absl::ToInt64Milliseconds(options_.reconnect_max_backoff)));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
              static_cast<int>(
                  absl::ToInt64Milliseconds(options_.min_connect_timeout)));
  channel_ = grpc::CreateCustomChannel(options_.address,
                                       options_.credentials
                                           ? options_.credentials
                                           : grpc::InsecureChannelCredentials(),
                                       args);
  keys_ = idemkey::v1::KeyService::NewStub(channel_);
  admin_ = idemkey::v1::AdminService::NewStub(channel_);
  poller_ = std::make_unique<ConnectionPoller>(channel_);
  if (options_.batch_calls) {
    batcher_ = std::make_unique<CallBatcher>(
        [this](const idemkey::v1::BatchRequest& request,
               idemkey::v1::BatchResponse* response) {
          absl::StatusOr<std::string> token = BearerToken();
          if (!token.ok()) return token.status();
          return CallOnce(*token, [&](grpc::ClientContext* ctx) {
            return keys_->Batch(ctx, request, response);
          });
        },
        CallBatcher::Options{
            .max_ops = static_cast<size_t>(std::max(1, options_.max_batch_ops)),
            .max_in_flight = std::max(1, options_.max_batches_in_flight)});
  }
  if (options_.stream_calls)
    stream_ = std::make_unique<CallStream>(keys_.get());
}

Client::~Client() = default;

absl::StatusOr<std::string> Client::BearerToken() const {
  std::string token =
      options_.token_provider ? options_.token_provider() : options_.token;
  // gRPC aborts the process on a header value it cannot send.
  if (!std::all_of(token.begin(), token.end(),
                   [](char c) { return c >= 0x20 && c < 0x7f; })) {
    return absl::InvalidArgumentError(
        "the bearer token has a character a header cannot carry (a newline?); "
        "tokens are printable ASCII");
  }
  return token;
}

template <typename Attempt>
absl::Status Client::Retrying(Attempt attempt) {
  thread_local absl::BitGen bitgen;
  absl::Duration backoff = options_.initial_backoff;
  const absl::StatusOr<std::string> token = BearerToken();
  if (!token.ok()) return token.status();
  for (int i = 1;; ++i) {
    absl::Status s = attempt(*token);
    // CANCELLED comes only from a stopping idemkeyd (this client cancels
    // nothing): gRPC cancels the calls it had received but not started when
    // its drain began. Every call is safe to retry (above), so both go again,
    // on another replica if there is one.
    const bool retry = absl::IsUnavailable(s) || absl::IsCancelled(s);
    if (!retry || i >= options_.max_attempts) return s;
    const double jitter = absl::Uniform(bitgen, 0.5, 1.0);
    std::this_thread::sleep_for(absl::ToChronoNanoseconds(backoff * jitter));
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

template <typename Call>
absl::Status Client::CallOnce(const std::string& token, Call call) {
  grpc::ClientContext ctx;
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  ctx.set_deadline(std::chrono::system_clock::now() +
                   absl::ToChronoNanoseconds(options_.call_timeout));
  return FromGrpc(call(&ctx));
}

template <typename Call>
absl::Status Client::WithRetries(Call call) {
  return Retrying(
      [&](const std::string& token) { return CallOnce(token, call); });
}

template <typename Request, typename Response, typename Unary>
absl::StatusOr<Response> Client::KeyCall(
    const Request& request, Request* (idemkey::v1::BatchOp::*op_field)(),
    Response* (idemkey::v1::BatchResult::*result_field)(), Unary unary) {
  // An op's own error counts as the call's, so that the UNAVAILABLE a
  // stopping idemkeyd answers for an op it did not start is retried like a
  // refused connection.
  idemkey::v1::BatchResult result;
  const auto answered =
      [&](absl::StatusOr<idemkey::v1::BatchResult> r) -> absl::Status {
    if (!r.ok()) return r.status();
    result = *std::move(r);
    return result.code() == 0
               ? absl::OkStatus()
               : rules::StatusFromCode(result.code(), result.message());
  };
  // A call larger than a stream message goes on its own: on the stream it
  // would hold up every op behind it, and one over idemkeyd's receive limit
  // would end the stream for all of them (UNAVAILABLE, where a unary call
  // gets the RESOURCE_EXHAUSTED the middleware acts on).
  if (stream_ != nullptr && !stream_->unsupported() &&
      request.ByteSizeLong() <= CallStream::kMaxBytesPerMessage) {
    idemkey::v1::BatchOp op;
    *(op.*op_field)() = request;
    absl::Status s = Retrying([&](const std::string& token) {
      return answered(stream_->Run(op, options_.call_timeout, token));
    });
    if (s.ok()) return std::move(*(result.*result_field)());
    // Without Stream on the server, the call goes as below.
    if (!absl::IsUnimplemented(s) || !stream_->unsupported()) return s;
  }
  if (batcher_ == nullptr) {
    Response response;
    absl::Status s = WithRetries(
        [&](grpc::ClientContext* ctx) { return unary(ctx, &response); });
    if (!s.ok()) return s;
    return response;
  }
  idemkey::v1::BatchOp op;
  *(op.*op_field)() = request;
  // The batch call itself is tried once (CallBatcher's function): each of
  // its ops retries here, and the retries of one moment are batched again.
  absl::Status s =
      Retrying([&](const std::string&) { return answered(batcher_->Run(op)); });
  if (!s.ok()) return s;
  return std::move(*(result.*result_field)());
}

absl::StatusOr<idemkey::v1::ReserveResponse> Client::Reserve(
    const idemkey::v1::ReserveRequest& request) {
  return KeyCall(
      request, &idemkey::v1::BatchOp::mutable_reserve,
      &idemkey::v1::BatchResult::mutable_reserve,
      [&](grpc::ClientContext* ctx, idemkey::v1::ReserveResponse* response) {
        return keys_->Reserve(ctx, request, response);
      });
}

absl::StatusOr<idemkey::v1::CompleteResponse> Client::Complete(
    const idemkey::v1::CompleteRequest& request) {
  return KeyCall(
      request, &idemkey::v1::BatchOp::mutable_complete,
      &idemkey::v1::BatchResult::mutable_complete,
      [&](grpc::ClientContext* ctx, idemkey::v1::CompleteResponse* response) {
        return keys_->Complete(ctx, request, response);
      });
}

absl::Status Client::Release(const idemkey::v1::ReleaseRequest& request) {
  return KeyCall(request, &idemkey::v1::BatchOp::mutable_release,
                 &idemkey::v1::BatchResult::mutable_release,
                 [&](grpc::ClientContext* ctx,
                     idemkey::v1::ReleaseResponse* response) {
                   return keys_->Release(ctx, request, response);
                 })
      .status();
}

absl::StatusOr<idemkey::v1::HeartbeatResponse> Client::Heartbeat(
    const idemkey::v1::HeartbeatRequest& request) {
  return KeyCall(
      request, &idemkey::v1::BatchOp::mutable_heartbeat,
      &idemkey::v1::BatchResult::mutable_heartbeat,
      [&](grpc::ClientContext* ctx, idemkey::v1::HeartbeatResponse* response) {
        return keys_->Heartbeat(ctx, request, response);
      });
}

absl::StatusOr<idemkey::v1::Record> Client::Lookup(absl::string_view tenant,
                                                   absl::string_view key) {
  idemkey::v1::LookupRequest request;
  request.set_tenant(std::string(tenant));
  request.set_key(std::string(key));
  absl::StatusOr<idemkey::v1::LookupResponse> r = KeyCall(
      request, &idemkey::v1::BatchOp::mutable_lookup,
      &idemkey::v1::BatchResult::mutable_lookup,
      [&](grpc::ClientContext* ctx, idemkey::v1::LookupResponse* response) {
        return keys_->Lookup(ctx, request, response);
      });
  if (!r.ok()) return r.status();
  return std::move(*r->mutable_record());
}

absl::Status Client::Ping() {
  idemkey::v1::PingRequest request;
  idemkey::v1::PingResponse response;
  return WithRetries([&](grpc::ClientContext* ctx) {
    return keys_->Ping(ctx, request, &response);
  });
}

absl::StatusOr<idemkey::v1::ListRecordsResponse> Client::ListRecords(
    const idemkey::v1::ListRecordsRequest& request) {
  idemkey::v1::ListRecordsResponse response;
  absl::Status s = WithRetries([&](grpc::ClientContext* ctx) {
    response.Clear();
    return admin_->ListRecords(ctx, request, &response);
  });
  if (!s.ok()) return s;
  return response;
}

absl::Status Client::DeleteRecord(absl::string_view tenant,
                                  absl::string_view key) {
  idemkey::v1::DeleteRecordRequest request;
  request.set_tenant(std::string(tenant));
  request.set_key(std::string(key));
  idemkey::v1::DeleteRecordResponse response;
  return WithRetries([&](grpc::ClientContext* ctx) {
    return admin_->DeleteRecord(ctx, request, &response);
  });
}

absl::StatusOr<idemkey::v1::ListTenantsResponse> Client::ListTenants() {
  idemkey::v1::ListTenantsRequest request;
  idemkey::v1::ListTenantsResponse response;
  absl::Status s = WithRetries([&](grpc::ClientContext* ctx) {
    response.Clear();
    return admin_->ListTenants(ctx, request, &response);
  });
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<idemkey::v1::Tenant> Client::CreateTenant(
    absl::string_view name) {
  idemkey::v1::CreateTenantRequest request;
  request.set_name(std::string(name));
  idemkey::v1::Tenant response;
  absl::Status s = WithRetries([&](grpc::ClientContext* ctx) {
    return admin_->CreateTenant(ctx, request, &response);
  });
  if (!s.ok()) return s;
  return response;
}

absl::Status Client::DropTenant(absl::string_view name) {
  idemkey::v1::DropTenantRequest request;
  request.set_name(std::string(name));
  idemkey::v1::DropTenantResponse response;
  return WithRetries([&](grpc::ClientContext* ctx) {
    return admin_->DropTenant(ctx, request, &response);
  });
}

absl::StatusOr<idemkey::v1::GetStatsResponse> Client::GetStats() {
  idemkey::v1::GetStatsRequest request;
  idemkey::v1::GetStatsResponse response;
  absl::Status s = WithRetries([&](grpc::ClientContext* ctx) {
    response.Clear();
    return admin_->GetStats(ctx, request, &response);
  });
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<idemkey::v1::CheckpointResponse> Client::Checkpoint(
    absl::string_view directory) {
  idemkey::v1::CheckpointRequest request;
  request.set_directory(std::string(directory));
  idemkey::v1::CheckpointResponse response;
  absl::Status s = WithRetries([&](grpc::ClientContext* ctx) {
    return admin_->Checkpoint(ctx, request, &response);
  });
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<idemkey::v1::CompactResponse> Client::Compact(
    absl::string_view tenant) {
  idemkey::v1::CompactRequest request;
  request.set_tenant(std::string(tenant));
  idemkey::v1::CompactResponse response;
  absl::Status s = WithRetries([&](grpc::ClientContext* ctx) {
    return admin_->Compact(ctx, request, &response);
  });
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<ServingStatus> Client::CheckHealth() {
  grpc::GenericStub generic(channel_);
  const std::string encoded = rules::EncodeHealthCheckRequest("");
  std::string reply;
  absl::Status s = WithRetries([&](grpc::ClientContext* ctx) {
    grpc::Slice slice(encoded);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    sync::Mutex mu;
    sync::CondVar cv;
    bool done = false;
    grpc::Status status;
    generic.UnaryCall(ctx, rules::kHealthCheckMethod, grpc::StubOptions(),
                      &request, &response, [&](grpc::Status st) {
                        sync::MutexLock lock(&mu);
                        status = std::move(st);
                        done = true;
                        cv.Signal();
                      });
    sync::MutexLock lock(&mu);
    while (!done) cv.Wait(&mu);
    reply.clear();
    std::vector<grpc::Slice> slices;
    if (status.ok() && response.Dump(&slices).ok()) {
      for (const grpc::Slice& part : slices) {
        reply.append(reinterpret_cast<const char*>(part.begin()), part.size());
      }
    }
    return status;
  });
  if (!s.ok()) return s;
  return rules::DecodeHealthCheckResponse(reply);
}

std::function<std::string()> TokenFromFile(std::string path) {
  struct State {
    sync::Mutex mu;
    std::string path;
    timespec mtime ABSL_GUARDED_BY(mu) = {};
    std::string token ABSL_GUARDED_BY(mu);
  };
  auto state = std::make_shared<State>();
  state->path = std::move(path);
  return [state] {
    struct stat st {};
    sync::MutexLock lock(&state->mu);
    if (stat(state->path.c_str(), &st) == 0 &&
        (st.st_mtim.tv_sec != state->mtime.tv_sec ||
         st.st_mtim.tv_nsec != state->mtime.tv_nsec)) {
      std::ifstream in(state->path);
      std::stringstream text;
      text << in.rdbuf();
      if (in) {
        state->token = std::string(absl::StripAsciiWhitespace(text.str()));
        state->mtime = st.st_mtim;
      }
    }
    return state->token;
  };
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
TlsCredentialsFromFiles(const std::string& ca_file,
                        const std::string& cert_file,
                        const std::string& key_file) {
  if (cert_file.empty() != key_file.empty()) {
    return absl::InvalidArgumentError(
        "a client certificate and its key go together");
  }
  auto read = [](const std::string& path) -> absl::StatusOr<std::string> {
    std::ifstream in(path, std::ios::binary);
    if (!in) return absl::NotFoundError("cannot read \"" + path + "\"");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  grpc::SslCredentialsOptions options;
  for (auto [path, field] : {std::pair{&ca_file, &options.pem_root_certs},
                             std::pair{&cert_file, &options.pem_cert_chain},
                             std::pair{&key_file, &options.pem_private_key}}) {
    if (path->empty()) continue;
    absl::StatusOr<std::string> pem = read(*path);
    if (!pem.ok()) return pem.status();
    *field = std::move(*pem);
  }
  return grpc::SslCredentials(options);
}

std::string NewAttemptId() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) {
    // OpenSSL's generator failed; fall back to a seeded PRNG rather than
    // fail a request. Uniqueness, not secrecy, is what an attempt id needs.
    thread_local absl::BitGen bitgen;
    for (unsigned char& c : b) c = absl::Uniform<unsigned char>(bitgen);
  }
  b[6] = (b[6] & 0x0f) | 0x40;  // version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant
  return absl::StrFormat(
      "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
      b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
      b[12], b[13], b[14], b[15]);
}

}  // namespace idemkey::client
