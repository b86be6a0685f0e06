// test_client.h — terse calls to a running idemkeyd for end-to-end tests.
//
//   TestClient client(server.NewChannel());
//   auto r = client.Reserve(ReserveReq("acme", "k1", "body-1", "attempt-1"));
//   EXPECT_TRUE(r.status.ok());
//   EXPECT_EQ(r.reply.outcome(), idemkey::v1::OUTCOME_OWNER);
//
// Every call has a 30 s deadline, so a hung server fails the test instead of
// hanging it.
//
// With IDEMKEY_TEST_TRANSPORT=stream in the environment (ctest runs the
// e2e suite a second time so, as stream.*), the KeyService calls go as ops
// of one KeyService/Stream (the client library's CallStream) instead of
// unary calls, and the middleware fixtures' Clients use stream_calls: every
// semantic test then holds over both transports.

#ifndef IDEMKEY_TESTS_SUPPORT_TEST_CLIENT_H_
#define IDEMKEY_TESTS_SUPPORT_TEST_CLIENT_H_

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "client/cpp/client/src/call_stream.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "idemkey/rules/health_check.h"
#include "idemkey/v1/admin.grpc.pb.h"
#include "idemkey/v1/idemkey.grpc.pb.h"

namespace idemkey::testing {

// Whether this run's KeyService calls go over a Stream (see above).
inline bool StreamTransport() {
  const char* t = std::getenv("IDEMKEY_TEST_TRANSPORT");
  return t != nullptr && std::string(t) == "stream";
}

template <typename Reply>
struct Result {
  grpc::Status status;
  Reply reply;
};

// A 32-byte fingerprint standing for a request body; equal seeds, equal
// fingerprints.
inline std::string Fingerprint(const std::string& seed) {
  std::string fp = seed.substr(0, 32);
  fp.resize(32, '.');
  return fp;
}

inline idemkey::v1::ReserveRequest ReserveReq(const std::string& tenant,
                                              const std::string& key,
                                              const std::string& body,
                                              const std::string& attempt) {
  idemkey::v1::ReserveRequest r;
  r.set_tenant(tenant);
  r.set_key(key);
  r.set_fingerprint(Fingerprint(body));
  r.set_attempt_id(attempt);
  return r;
}

// A response with repeated headers, a binary header value and a binary body:
// what a replay must reproduce byte for byte.
inline idemkey::v1::StoredResponse SampleResponse(const std::string& tag) {
  idemkey::v1::StoredResponse r;
  r.set_status_code(201);
  auto* h = r.add_headers();
  h->set_name("Set-Cookie");
  h->set_value("a=1");
  h = r.add_headers();
  h->set_name("Set-Cookie");
  h->set_value("b=2");
  h = r.add_headers();
  h->set_name("trace-bin");
  h->set_value(std::string("\x00\xff\x01", 3));
  r.set_body(std::string("{\"charge\":\"") + tag + "\"}\n" +
             std::string("\x00\x80", 2));
  return r;
}

class TestClient {
 public:
  explicit TestClient(std::shared_ptr<grpc::Channel> channel)
      : channel_(channel),
        keys_(idemkey::v1::KeyService::NewStub(channel)),
        admin_(idemkey::v1::AdminService::NewStub(channel)) {
    if (StreamTransport()) {
      stream_ = std::make_unique<client::CallStream>(keys_.get());
    }
  }

  Result<idemkey::v1::ReserveResponse> Reserve(
      const idemkey::v1::ReserveRequest& r) {
    return KeyCall(&idemkey::v1::KeyService::Stub::Reserve, r,
                   &idemkey::v1::BatchOp::mutable_reserve,
                   &idemkey::v1::BatchResult::mutable_reserve);
  }
  Result<idemkey::v1::CompleteResponse> Complete(
      const std::string& tenant, const std::string& key, uint64_t token,
      const idemkey::v1::StoredResponse& response) {
    idemkey::v1::CompleteRequest r;
    r.set_tenant(tenant);
    r.set_key(key);
    r.set_fencing_token(token);
    *r.mutable_response() = response;
    return KeyCall(&idemkey::v1::KeyService::Stub::Complete, r,
                   &idemkey::v1::BatchOp::mutable_complete,
                   &idemkey::v1::BatchResult::mutable_complete);
  }
  Result<idemkey::v1::ReleaseResponse> Release(const std::string& tenant,
                                               const std::string& key,
                                               uint64_t token) {
    idemkey::v1::ReleaseRequest r;
    r.set_tenant(tenant);
    r.set_key(key);
    r.set_fencing_token(token);
    return KeyCall(&idemkey::v1::KeyService::Stub::Release, r,
                   &idemkey::v1::BatchOp::mutable_release,
                   &idemkey::v1::BatchResult::mutable_release);
  }
  Result<idemkey::v1::HeartbeatResponse> Heartbeat(const std::string& tenant,
                                                   const std::string& key,
                                                   uint64_t token,
                                                   int64_t lease_seconds = 0) {
    idemkey::v1::HeartbeatRequest r;
    r.set_tenant(tenant);
    r.set_key(key);
    r.set_fencing_token(token);
    if (lease_seconds > 0) r.mutable_lease()->set_seconds(lease_seconds);
    return KeyCall(&idemkey::v1::KeyService::Stub::Heartbeat, r,
                   &idemkey::v1::BatchOp::mutable_heartbeat,
                   &idemkey::v1::BatchResult::mutable_heartbeat);
  }
  Result<idemkey::v1::LookupResponse> Lookup(const std::string& tenant,
                                             const std::string& key) {
    idemkey::v1::LookupRequest r;
    r.set_tenant(tenant);
    r.set_key(key);
    return KeyCall(&idemkey::v1::KeyService::Stub::Lookup, r,
                   &idemkey::v1::BatchOp::mutable_lookup,
                   &idemkey::v1::BatchResult::mutable_lookup);
  }
  Result<idemkey::v1::ListRecordsResponse> ListRecords(
      const idemkey::v1::ListRecordsRequest& r) {
    return Call(admin_.get(), &idemkey::v1::AdminService::Stub::ListRecords, r);
  }
  Result<idemkey::v1::DeleteRecordResponse> DeleteRecord(
      const std::string& tenant, const std::string& key) {
    idemkey::v1::DeleteRecordRequest r;
    r.set_tenant(tenant);
    r.set_key(key);
    return Call(admin_.get(), &idemkey::v1::AdminService::Stub::DeleteRecord,
                r);
  }
  Result<idemkey::v1::ListTenantsResponse> ListTenants() {
    return Call(admin_.get(), &idemkey::v1::AdminService::Stub::ListTenants,
                idemkey::v1::ListTenantsRequest());
  }
  Result<idemkey::v1::Tenant> CreateTenant(const std::string& name) {
    idemkey::v1::CreateTenantRequest r;
    r.set_name(name);
    return Call(admin_.get(), &idemkey::v1::AdminService::Stub::CreateTenant,
                r);
  }
  Result<idemkey::v1::DropTenantResponse> DropTenant(const std::string& name) {
    idemkey::v1::DropTenantRequest r;
    r.set_name(name);
    return Call(admin_.get(), &idemkey::v1::AdminService::Stub::DropTenant, r);
  }
  Result<idemkey::v1::GetStatsResponse> GetStats() {
    return Call(admin_.get(), &idemkey::v1::AdminService::Stub::GetStats,
                idemkey::v1::GetStatsRequest());
  }

  // A unary call of `method` ("/package.Service/Method") with a request of
  // raw bytes, through the generic stub: for services without generated code
  // here, and for requests a typed stub cannot build (a string field that is
  // not UTF-8). The reply is the response's raw bytes.
  Result<std::string> RawCall(const std::string& method,
                              const std::string& request) {
    grpc::GenericStub generic(channel_);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(30));
    grpc::Slice slice(request);
    grpc::ByteBuffer request_buffer(&slice, 1);
    grpc::ByteBuffer response;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    Result<std::string> out;
    generic.UnaryCall(&ctx, method, grpc::StubOptions(), &request_buffer,
                      &response, [&](grpc::Status s) {
                        std::lock_guard<std::mutex> lock(mu);
                        out.status = s;
                        done = true;
                        cv.notify_one();
                      });
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done; });
    std::vector<grpc::Slice> slices;
    if (out.status.ok() && response.Dump(&slices).ok()) {
      for (const auto& s : slices) {
        out.reply.append(reinterpret_cast<const char*>(s.begin()), s.size());
      }
    }
    return out;
  }

  // grpc.health.v1.Health/Check of `service` ("" for the whole server):
  // the serving status (1 = SERVING), -1 for a reply that is not one.
  Result<int> HealthCheck(absl::string_view service = "") {
    Result<std::string> raw = RawCall(rules::kHealthCheckMethod,
                                      rules::EncodeHealthCheckRequest(service));
    Result<int> out{raw.status, 0};
    absl::StatusOr<rules::ServingStatus> decoded =
        rules::DecodeHealthCheckResponse(raw.reply);
    if (raw.status.ok())
      out.reply = decoded.ok() ? static_cast<int>(*decoded) : -1;
    return out;
  }

 private:
  // A KeyService call: unary, or as an op of the stream.
  template <typename Req, typename Reply>
  Result<Reply> KeyCall(grpc::Status (idemkey::v1::KeyService::Stub::*method)(
                            grpc::ClientContext*, const Req&, Reply*),
                        const Req& request,
                        Req* (idemkey::v1::BatchOp::*op_field)(),
                        Reply* (idemkey::v1::BatchResult::*result_field)()) {
    // As the client library does (client.cc), a call larger than a stream
    // message goes unary.
    if (stream_ == nullptr ||
        request.ByteSizeLong() > client::CallStream::kMaxBytesPerMessage) {
      return Call(keys_.get(), method, request);
    }
    idemkey::v1::BatchOp op;
    *(op.*op_field)() = request;
    absl::StatusOr<idemkey::v1::BatchResult> r =
        stream_->Run(op, absl::Seconds(30), /*token=*/"");
    Result<Reply> out;
    if (!r.ok()) {
      out.status =
          grpc::Status(static_cast<grpc::StatusCode>(r.status().code()),
                       std::string(r.status().message()));
    } else if (r->code() != 0) {
      out.status =
          grpc::Status(static_cast<grpc::StatusCode>(r->code()), r->message());
    } else {
      out.reply = std::move(*((*r).*result_field)());
    }
    return out;
  }

  template <typename Stub, typename Req, typename Reply>
  static Result<Reply> Call(Stub* stub,
                            grpc::Status (Stub::*method)(grpc::ClientContext*,
                                                         const Req&, Reply*),
                            const Req& request) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(30));
    Result<Reply> out;
    out.status = (stub->*method)(&ctx, request, &out.reply);
    return out;
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<idemkey::v1::KeyService::Stub> keys_;
  std::unique_ptr<idemkey::v1::AdminService::Stub> admin_;
  std::unique_ptr<client::CallStream> stream_;  // with StreamTransport()
};

}  // namespace idemkey::testing

#endif  // IDEMKEY_TESTS_SUPPORT_TEST_CLIENT_H_
