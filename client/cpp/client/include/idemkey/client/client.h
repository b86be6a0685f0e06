// client.h — the typed C++ client of idemkeyd.
//
// One Client holds one gRPC channel; it is thread-safe and meant to be created
// once per process and shared by every request handler. Every call has a
// deadline, and calls that fail with UNAVAILABLE (the service restarting, a
// connection reset) or CANCELLED (a stopping idemkeyd cancels the calls it
// had not started) are retried with jittered exponential backoff. That is
// safe for every call: a retried Reserve carries the same attempt_id and gets
// the same answer; Complete with the token that completed a record is OK;
// Heartbeat just extends the lease again.
//
//   idemkey::client::ClientOptions options;
//   options.address = "idemkey.internal:50051";
//   std::shared_ptr<idemkey::client::Client> client =
//       idemkey::client::Client::Create(options);
//
//   idemkey::v1::ReserveRequest req;
//   req.set_tenant("acme");
//   req.set_key("order-42");
//   req.set_fingerprint(sha256);
//   req.set_attempt_id(idemkey::client::NewAttemptId());
//   absl::StatusOr<idemkey::v1::ReserveResponse> r = client->Reserve(req);
//   if (!r.ok()) { ... r.status().code() is the gRPC code ... }
//
// Errors come back as absl::Status with the gRPC status code and message of
// the service (see proto/idemkey/v1/idemkey.proto for their meaning).

#ifndef IDEMKEY_CLIENT_CLIENT_H_
#define IDEMKEY_CLIENT_CLIENT_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "idemkey/client/key_service_client.h"
#include "idemkey/rules/health_check.h"
#include "idemkey/v1/admin.grpc.pb.h"
#include "idemkey/v1/idemkey.grpc.pb.h"

namespace idemkey::client {

struct ClientOptions {
  // host:port of idemkeyd, or a gRPC target naming several replicas (over
  // the PostgreSQL backend): "ipv4:10.0.0.1:50051,10.0.0.2:50051", or
  // "dns:///idemkey.internal:50051" resolving to each (a Kubernetes headless
  // Service). Calls go round-robin over the replicas that are up.
  std::string address = "127.0.0.1:50051";
  // Deadline of one attempt of one call.
  absl::Duration call_timeout = absl::Seconds(2);
  // Attempts per call, the first included, while the answer is UNAVAILABLE
  // or CANCELLED.
  int max_attempts = 4;
  // Backoff before the second attempt; doubles each time up to max_backoff,
  // each wait drawn uniformly from [backoff/2, backoff].
  absl::Duration initial_backoff = absl::Milliseconds(50);
  absl::Duration max_backoff = absl::Seconds(1);
  // How the channel reconnects after idemkeyd went away (a restart, a
  // rolling update): the first attempt after `reconnect_initial_backoff`,
  // each next one later, up to `reconnect_max_backoff`; each connection
  // attempt may take `min_connect_timeout`. With gRPC's defaults (1 s
  // growing to 120 s, 20 s) an app kept failing for seconds after the
  // service was back; with these (and the client's own poller of the
  // connection attempts, src/connection_poller.h) the first protected
  // request succeeds 0.05-0.45 s after idemkeyd serves again, after a 3 s
  // outage (tests/e2e/http_middleware_test.cc; docs/operations.md,
  // "Restarts").
  absl::Duration reconnect_initial_backoff = absl::Milliseconds(100);
  absl::Duration reconnect_max_backoff = absl::Milliseconds(500);
  absl::Duration min_connect_timeout = absl::Seconds(1);
  // Transport credentials; insecure (plaintext) when null.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // Bearer token sent as "authorization: Bearer TOKEN" on every call when
  // idemkeyd runs with --tokens_file; empty: none. Never logged.
  std::string token;
  // When set, asked for the token before every call instead of `token`, so
  // a rotated token is used without restarting the app (TokenFromFile;
  // docs/operations.md, "Rotating tokens"). Must be thread-safe and quick.
  std::function<std::string()> token_provider;
  // Coalesce the KeyService calls (all but Ping) that different threads
  // make at the same time into Batch RPCs. A call goes at once while fewer
  // than `max_batches_in_flight` batches are out, taking along every call
  // queued meanwhile (at most `max_batch_ops`); there is no timer, so a
  // lone call is never delayed. Each call still gets exactly its own
  // answer. Saves most of gRPC's per-call cost when many requests run at
  // once (bench/README.md, "Batching").
  bool batch_calls = false;
  int max_batch_ops = 128;
  int max_batches_in_flight = 2;
  // Multiplex the KeyService calls (all but Ping) of every thread over one
  // KeyService/Stream: each call is an op on the stream, answered as soon
  // as it is durable; calls made while a write is out leave together. A
  // stream that breaks fails its unanswered calls UNAVAILABLE, which are
  // retried as above (on a new stream). Against an idemkeyd without Stream
  // the client uses unary calls (or batches, with batch_calls), as it does
  // for a call over 1 MiB (a large stored response). Not yet
  // faster than batch_calls (bench/README.md, "Streaming"). A stopping
  // idemkeyd ends the stream UNAVAILABLE once the ops it read are
  // answered; the next call opens a new one.
  bool stream_calls = false;
};

class CallBatcher;       // client/src/call_batcher.h
class CallStream;        // client/src/call_stream.h
class ConnectionPoller;  // client/src/connection_poller.h

// grpc.health.v1's serving status.
using ServingStatus = rules::ServingStatus;

class Client final : public KeyServiceClient {
 public:
  static std::shared_ptr<Client> Create(const ClientOptions& options);

  ~Client() override;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const ClientOptions& options() const { return options_; }

  // KeyService.
  absl::StatusOr<idemkey::v1::ReserveResponse> Reserve(
      const idemkey::v1::ReserveRequest& request) override;
  absl::StatusOr<idemkey::v1::CompleteResponse> Complete(
      const idemkey::v1::CompleteRequest& request) override;
  absl::Status Release(const idemkey::v1::ReleaseRequest& request) override;
  absl::StatusOr<idemkey::v1::HeartbeatResponse> Heartbeat(
      const idemkey::v1::HeartbeatRequest& request) override;
  absl::StatusOr<idemkey::v1::Record> Lookup(absl::string_view tenant,
                                             absl::string_view key);
  absl::Status Ping();

  // AdminService.
  absl::StatusOr<idemkey::v1::ListRecordsResponse> ListRecords(
      const idemkey::v1::ListRecordsRequest& request);
  absl::Status DeleteRecord(absl::string_view tenant, absl::string_view key);
  absl::StatusOr<idemkey::v1::ListTenantsResponse> ListTenants();
  absl::StatusOr<idemkey::v1::Tenant> CreateTenant(absl::string_view name);
  absl::Status DropTenant(absl::string_view name);
  absl::StatusOr<idemkey::v1::GetStatsResponse> GetStats();
  // A consistent copy of the whole store in `directory` (absolute, new) on
  // the server's machine.
  absl::StatusOr<idemkey::v1::CheckpointResponse> Checkpoint(
      absl::string_view directory);
  // Drops expired records from `tenant`'s files now (every tenant when
  // empty) and gives their disk space back.
  absl::StatusOr<idemkey::v1::CompactResponse> Compact(
      absl::string_view tenant);

  // grpc.health.v1.Health/Check of the whole server ("" service).
  absl::StatusOr<ServingStatus> CheckHealth();

 private:
  explicit Client(const ClientOptions& options);

  // One KeyService call: on the stream with stream_calls (unless the server
  // has none), through the batcher with batch_calls, else `unary` (which
  // makes the call into `response`). `field` is the op's
  // request and result field (BatchOp::mutable_reserve, ...).
  template <typename Request, typename Response, typename Unary>
  absl::StatusOr<Response> KeyCall(
      const Request& request, Request* (idemkey::v1::BatchOp::*op_field)(),
      Response* (idemkey::v1::BatchResult::*result_field)(), Unary unary);

  // The bearer token to send (token_provider's or token), or
  // INVALID_ARGUMENT for one a header cannot carry.
  absl::StatusOr<std::string> BearerToken() const;
  // Runs `attempt(token)` (one try of a call, with the bearer token to
  // send, returning absl::Status) until it is neither UNAVAILABLE nor
  // CANCELLED or max_attempts are spent, with the options' backoff.
  template <typename Attempt>
  absl::Status Retrying(Attempt attempt);
  // `call(ctx)` (one gRPC call, returning grpc::Status) once, given a fresh
  // context with the call timeout and `token`.
  template <typename Call>
  absl::Status CallOnce(const std::string& token, Call call);
  // Retrying, for `call` as CallOnce takes it.
  template <typename Call>
  absl::Status WithRetries(Call call);

  const ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<idemkey::v1::KeyService::Stub> keys_;
  std::unique_ptr<idemkey::v1::AdminService::Stub> admin_;
  std::unique_ptr<CallBatcher> batcher_;  // with batch_calls
  std::unique_ptr<CallStream> stream_;    // with stream_calls
  std::unique_ptr<ConnectionPoller> poller_;
};

// A token_provider that reads the token from `path` (surrounding white
// space dropped), again whenever the file's modification time changes: an
// operator rotates an app's token by rewriting the file (write a new file
// and rename it over the old, so no call reads half a token). A file that
// cannot be read gives the last token read (empty before the first).
std::function<std::string()> TokenFromFile(std::string path);

// TLS credentials for ClientOptions::credentials from PEM files: `ca_file`
// verifies idemkeyd's certificate (empty: the system's roots);
// `cert_file` and `key_file` (both or neither) are this client's certificate
// for mutual TLS. Errors name the file that cannot be read.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
TlsCredentialsFromFiles(const std::string& ca_file,
                        const std::string& cert_file,
                        const std::string& key_file);

// A fresh random attempt id (a version-4 UUID), for ReserveRequest.
std::string NewAttemptId();

}  // namespace idemkey::client

#endif  // IDEMKEY_CLIENT_CLIENT_H_
