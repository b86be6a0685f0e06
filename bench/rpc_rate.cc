// rpc_rate.cc — closed-loop RPC rate and latency of a running idemkeyd.
//
// Keeps --in_flight calls outstanding over --channels gRPC connections (each
// finished call starts the next one at once) for --seconds per scenario, and
// reports calls/s, latency quantiles and errors of:
//   ping      KeyService.Ping: touches no store, the gRPC baseline;
//   reserve   Reserve of fresh keys (each one a new IN_PROGRESS record);
//   complete  Complete of keys reserved in an untimed setup phase;
//   lookup    Lookup of random keys among those `complete` stored.
// Each rate is also given as a fraction of the ping rate: how much of the
// gRPC ceiling the store leaves.
//
//   build/server/idemkeyd --listen=127.0.0.1:50051 --data_dir=/tmp/bench-data &
//   build/bench/idemkey-rpc-rate --address=127.0.0.1:50051 --in_flight=64
//
// Keys carry a random per-run prefix, so runs can repeat against one data
// directory. The tenant (--tenant) is created by the first Reserve, which
// needs idemkeyd's --auto_create_tenants (on by default).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "grpcpp/grpcpp.h"
#include "bench/latency_histogram.h"
#include "idemkey/v1/idemkey.grpc.pb.h"

ABSL_FLAG(std::string, address, "127.0.0.1:50051",
          "idemkeyd address, host:port");
ABSL_FLAG(int32_t, in_flight, 64, "calls kept outstanding at all times");
ABSL_FLAG(int32_t, channels, 4,
          "gRPC channels (each its own TCP connection) the calls are spread "
          "over");
ABSL_FLAG(double, seconds, 5, "measured duration of each scenario");
ABSL_FLAG(double, warmup_seconds, 1,
          "untimed Ping traffic before the first scenario");
ABSL_FLAG(std::string, tenant, "bench", "tenant of every record");
ABSL_FLAG(int32_t, response_bytes, 256,
          "body size of the response each Complete stores");

namespace {

using Clock = std::chrono::steady_clock;
using idemkey::bench::LatencyHistogram;
using idemkey::v1::KeyService;
using AsyncStub = KeyService::StubInterface::async_interface;
using Done = std::function<void(grpc::Status)>;

// Reserve leases long enough that keys reserved by the setup phase of
// `complete` are still held when the timed phase completes them.
constexpr int64_t kLeaseSeconds = 600;
// A call taking longer than this counts as an error (DEADLINE_EXCEEDED)
// instead of hanging the run.
constexpr auto kCallDeadline = std::chrono::seconds(30);

struct RunResult {
  LatencyHistogram latency;
  uint64_t errors = 0;
  std::string first_error;
  double seconds = 0;

  uint64_t calls() const { return latency.count(); }
  double rate() const { return seconds > 0 ? calls() / seconds : 0; }
};

// How a scenario makes its calls. The driver owns one request and response
// per in-flight slot and reuses them from call to call.
template <typename Req, typename Resp>
struct CallSpec {
  // Sets the fields every call shares, once per slot. Optional.
  std::function<void(Req*)> init;
  // Sets the fields of call number `seq` (0, 1, ... across all slots).
  // Returns false when the scenario has no call left to make.
  std::function<bool(uint64_t seq, Req*)> fill;
  // Starts the call on the async stub; `done` runs when it finishes.
  std::function<void(AsyncStub*, grpc::ClientContext*, const Req*, Resp*,
                     Done)>
      start;
  // Whether an OK response is the one expected; may record it. Optional.
  std::function<bool(uint64_t seq, const Resp&)> check;
};

// The closed loop: `in_flight` slots, each starting its next call from the
// completion callback of the previous one, until the deadline passes or the
// spec runs out of calls. Each slot writes only its own counters, so the
// callbacks share nothing but the sequence number.
template <typename Req, typename Resp>
class ClosedLoop {
 public:
  ClosedLoop(const std::vector<AsyncStub*>& stubs, int in_flight,
             const CallSpec<Req, Resp>& spec, Clock::time_point deadline)
      : spec_(spec), deadline_(deadline), slots_(in_flight) {
    for (size_t i = 0; i < slots_.size(); ++i) {
      slots_[i].stub = stubs[i % stubs.size()];
      if (spec_.init) spec_.init(&slots_[i].req);
    }
  }

  RunResult Run() {
    active_ = slots_.size();
    const Clock::time_point start = Clock::now();
    for (Slot& slot : slots_) StartNext(slot);
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return active_ == 0; });
    }
    RunResult result;
    result.seconds =
        std::chrono::duration<double>(Clock::now() - start).count();
    for (const Slot& slot : slots_) {
      result.latency.Merge(slot.latency);
      result.errors += slot.errors;
      if (result.first_error.empty()) result.first_error = slot.first_error;
    }
    return result;
  }

 private:
  struct Slot {
    AsyncStub* stub = nullptr;
    Req req;
    Resp resp;
    std::unique_ptr<grpc::ClientContext> ctx;
    uint64_t seq = 0;
    Clock::time_point started;
    LatencyHistogram latency;
    uint64_t errors = 0;
    std::string first_error;
  };

  void StartNext(Slot& slot) {
    const Clock::time_point now = Clock::now();
    if (now >= deadline_) return SlotFinished();
    slot.seq = next_seq_.fetch_add(1, std::memory_order_relaxed);
    if (!spec_.fill(slot.seq, &slot.req)) return SlotFinished();
    slot.resp.Clear();
    // A ClientContext serves one call; the previous one may be destroyed
    // inside its own callback (the call keeps its own reference).
    slot.ctx = std::make_unique<grpc::ClientContext>();
    slot.ctx->set_deadline(std::chrono::system_clock::now() + kCallDeadline);
    slot.started = Clock::now();
    spec_.start(slot.stub, slot.ctx.get(), &slot.req, &slot.resp,
                [this, &slot](grpc::Status status) { OnDone(slot, status); });
  }

  void OnDone(Slot& slot, const grpc::Status& status) {
    slot.latency.Record(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() -
                                                             slot.started)
            .count()));
    if (!status.ok()) {
      Fail(slot, absl::StrCat("status ", static_cast<int>(status.error_code()), ": ",
                              status.error_message()));
    } else if (spec_.check && !spec_.check(slot.seq, slot.resp)) {
      Fail(slot, absl::StrCat("unexpected response {",
                              slot.resp.ShortDebugString(), "}"));
    }
    StartNext(slot);
  }

  static void Fail(Slot& slot, std::string message) {
    if (slot.errors++ == 0) slot.first_error = std::move(message);
  }

  void SlotFinished() {
    std::lock_guard<std::mutex> lock(mu_);
    if (--active_ == 0) cv_.notify_one();
  }

  const CallSpec<Req, Resp>& spec_;
  const Clock::time_point deadline_;
  std::vector<Slot> slots_;
  std::atomic<uint64_t> next_seq_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  size_t active_ = 0;  // guarded by mu_
};

// splitmix64: spreads sequence numbers into well-mixed pseudo-random values,
// without shared RNG state between callbacks.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The four scenarios over one set of channels, and the keys they hand on to
// each other: `complete` reserves its keys first, `lookup` reads the keys
// `complete` stored.
class RpcBench {
 public:
  RpcBench(std::vector<std::unique_ptr<KeyService::Stub>> stubs, int in_flight,
           std::string tenant, int response_bytes)
      : owned_stubs_(std::move(stubs)),
        in_flight_(in_flight),
        tenant_(std::move(tenant)) {
    for (auto& stub : owned_stubs_) stubs_.push_back(stub->async());
    std::mt19937_64 rng(std::random_device{}());
    run_id_ = absl::StrFormat("%08x", rng() & 0xffffffff);
    fingerprint_.resize(32);
    for (char& c : fingerprint_) c = static_cast<char>(rng());
    response_.set_status_code(200);
    idemkey::v1::Header* header = response_.add_headers();
    header->set_name("Content-Type");
    header->set_value("application/json");
    response_.set_body(std::string(response_bytes, 'x'));
  }

  // Runs `spec` for `seconds`, or until it runs out of calls when nullopt.
  template <typename Req, typename Resp>
  RunResult Drive(const CallSpec<Req, Resp>& spec,
                  std::optional<double> seconds) {
    const Clock::time_point deadline =
        seconds ? Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(*seconds))
                : Clock::time_point::max();
    return ClosedLoop<Req, Resp>(stubs_, in_flight_, spec, deadline).Run();
  }

  RunResult Ping(double seconds) {
    CallSpec<idemkey::v1::PingRequest, idemkey::v1::PingResponse> spec;
    spec.fill = [](uint64_t, idemkey::v1::PingRequest*) { return true; };
    spec.start = [](AsyncStub* stub, grpc::ClientContext* ctx,
                    const idemkey::v1::PingRequest* req,
                    idemkey::v1::PingResponse* resp, Done done) {
      stub->Ping(ctx, req, resp, std::move(done));
    };
    return Drive(spec, seconds);
  }

  // Fresh keys "<run>-<phase>-<seq>", for `seconds`.
  RunResult Reserve(double seconds, std::string phase) {
    return Drive(ReserveSpec(std::move(phase), nullptr), seconds);
  }

  // Reserves about reserve_rate * seconds * 1.5 keys untimed, then times
  // Complete of them for `seconds` (or until they run out).
  RunResult Complete(double seconds, double reserve_rate) {
    const uint64_t n = std::max<uint64_t>(
        static_cast<uint64_t>(reserve_rate * seconds * 1.5), 16 * in_flight_);
    std::cout << absl::StrFormat("  (complete: reserving %d keys, untimed)\n",
                                 n)
              << std::flush;
    tokens_.assign(n, 0);
    completed_.assign(n, 0);
    const RunResult setup = Drive(ReserveSpec("c", &tokens_), std::nullopt);
    if (setup.errors > 0) {
      std::cout << absl::StrFormat("  (complete: %d setup Reserves failed: %s)\n",
                                   setup.errors, setup.first_error);
    }

    CallSpec<idemkey::v1::CompleteRequest, idemkey::v1::CompleteResponse> spec;
    spec.init = [this](idemkey::v1::CompleteRequest* req) {
      req->set_tenant(tenant_);
      *req->mutable_response() = response_;
    };
    spec.fill = [this](uint64_t seq, idemkey::v1::CompleteRequest* req) {
      if (seq >= tokens_.size()) return false;
      req->set_key(Key("c", seq));
      req->set_fencing_token(tokens_[seq]);
      return true;
    };
    spec.start = [](AsyncStub* stub, grpc::ClientContext* ctx,
                    const idemkey::v1::CompleteRequest* req,
                    idemkey::v1::CompleteResponse* resp, Done done) {
      stub->Complete(ctx, req, resp, std::move(done));
    };
    spec.check = [this](uint64_t seq, const idemkey::v1::CompleteResponse&) {
      completed_[seq] = 1;
      return true;
    };
    return Drive(spec, seconds);
  }

  // Lookup of random keys among those Complete stored, for `seconds`.
  // nullopt when there are none.
  std::optional<RunResult> Lookup(double seconds) {
    std::vector<uint64_t> stored;
    for (uint64_t seq = 0; seq < completed_.size(); ++seq) {
      if (completed_[seq]) stored.push_back(seq);
    }
    if (stored.empty()) return std::nullopt;

    CallSpec<idemkey::v1::LookupRequest, idemkey::v1::LookupResponse> spec;
    spec.init = [this](idemkey::v1::LookupRequest* req) {
      req->set_tenant(tenant_);
    };
    spec.fill = [this, &stored](uint64_t seq, idemkey::v1::LookupRequest* req) {
      req->set_key(Key("c", stored[Mix(seq) % stored.size()]));
      return true;
    };
    spec.start = [](AsyncStub* stub, grpc::ClientContext* ctx,
                    const idemkey::v1::LookupRequest* req,
                    idemkey::v1::LookupResponse* resp, Done done) {
      stub->Lookup(ctx, req, resp, std::move(done));
    };
    spec.check = [](uint64_t, const idemkey::v1::LookupResponse& resp) {
      return resp.record().state() == idemkey::v1::STATE_COMPLETED;
    };
    return Drive(spec, seconds);
  }

 private:
  std::string Key(absl::string_view phase, uint64_t seq) const {
    return absl::StrCat(run_id_, "-", phase, "-", seq);
  }

  // Reserve of fresh keys of `phase`. With `tokens`, stops after
  // tokens->size() calls and keeps each fencing token.
  CallSpec<idemkey::v1::ReserveRequest, idemkey::v1::ReserveResponse>
  ReserveSpec(std::string phase, std::vector<uint64_t>* tokens) {
    CallSpec<idemkey::v1::ReserveRequest, idemkey::v1::ReserveResponse> spec;
    spec.init = [this](idemkey::v1::ReserveRequest* req) {
      req->set_tenant(tenant_);
      req->set_fingerprint(fingerprint_);
      req->mutable_lease()->set_seconds(kLeaseSeconds);
    };
    spec.fill = [this, phase, tokens](uint64_t seq,
                                      idemkey::v1::ReserveRequest* req) {
      if (tokens != nullptr && seq >= tokens->size()) return false;
      req->set_key(Key(phase, seq));
      req->set_attempt_id(absl::StrCat("a-", Key(phase, seq)));
      return true;
    };
    spec.start = [](AsyncStub* stub, grpc::ClientContext* ctx,
                    const idemkey::v1::ReserveRequest* req,
                    idemkey::v1::ReserveResponse* resp, Done done) {
      stub->Reserve(ctx, req, resp, std::move(done));
    };
    spec.check = [tokens](uint64_t seq,
                          const idemkey::v1::ReserveResponse& resp) {
      if (resp.outcome() != idemkey::v1::OUTCOME_OWNER) return false;
      if (tokens != nullptr) (*tokens)[seq] = resp.fencing_token();
      return true;
    };
    return spec;
  }

  std::vector<std::unique_ptr<KeyService::Stub>> owned_stubs_;
  std::vector<AsyncStub*> stubs_;
  const int in_flight_;
  const std::string tenant_;
  std::string run_id_;
  std::string fingerprint_;
  idemkey::v1::StoredResponse response_;
  // Written by the callbacks of one run (one element per seq), read after it.
  std::vector<uint64_t> tokens_;    // seq of "c" keys -> fencing token
  std::vector<uint8_t> completed_;  // seq of "c" keys -> Complete succeeded
};

struct Row {
  std::string scenario;
  RunResult result;
};

std::string Format(const Row& row, double ping_rate) {
  const RunResult& r = row.result;
  return absl::StrFormat(
      "%-9s %9d %10.0f %9.1f %9.1f %9.1f %9.1f %7d %8.3f", row.scenario,
      r.calls(), r.rate(), r.latency.Quantile(0.50) / 1e3,
      r.latency.Quantile(0.90) / 1e3, r.latency.Quantile(0.99) / 1e3,
      r.latency.Quantile(0.999) / 1e3, r.errors,
      ping_rate > 0 ? r.rate() / ping_rate : 0.0);
}

constexpr char kHeader[] =
    "scenario      calls    calls/s    p50 us    p90 us    p99 us   p999 us "
    " errors  vs ping";

void Report(const Row& row, double ping_rate) {
  std::cout << Format(row, ping_rate) << "\n";
  if (row.result.errors > 0) {
    std::cout << "  first error: " << row.result.first_error << "\n";
  }
  std::cout << std::flush;
}

void Die(const std::string& message) {
  std::cerr << "idemkey-rpc-rate: " << message << "\n";
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "closed-loop RPC rate and latency of a running idemkeyd.\n"
      "Usage: idemkey-rpc-rate [--address=127.0.0.1:50051] [--in_flight=64] "
      "[--channels=4] [--seconds=5]");
  absl::ParseCommandLine(argc, argv);
  const std::string address = absl::GetFlag(FLAGS_address);
  const int in_flight = absl::GetFlag(FLAGS_in_flight);
  const int channels = absl::GetFlag(FLAGS_channels);
  const double seconds = absl::GetFlag(FLAGS_seconds);
  const int response_bytes = absl::GetFlag(FLAGS_response_bytes);
  if (in_flight < 1) Die("--in_flight must be at least 1");
  if (channels < 1) Die("--channels must be at least 1");
  if (seconds <= 0) Die("--seconds must be positive");
  if (response_bytes < 0) Die("--response_bytes must not be negative");

  // A local subchannel pool per channel: otherwise channels to one address
  // share a single connection.
  std::vector<std::unique_ptr<KeyService::Stub>> stubs;
  for (int i = 0; i < channels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
        address, grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() +
                                   std::chrono::seconds(5))) {
      Die(absl::StrCat("cannot connect to idemkeyd at ", address,
                       " within 5 s; start it first (see bench/README.md)"));
    }
    stubs.push_back(KeyService::NewStub(channel));
  }

  RpcBench bench(std::move(stubs), in_flight, absl::GetFlag(FLAGS_tenant),
                 response_bytes);
  std::cout << absl::StrFormat(
      "idemkey-rpc-rate: %s, %d calls in flight over %d channels, %.1f s per "
      "scenario, tenant \"%s\", %d-byte response bodies\n",
      address, in_flight, channels, seconds, absl::GetFlag(FLAGS_tenant),
      response_bytes);

  // Warm-up: connections, server threads; one Reserve creates the tenant.
  if (absl::GetFlag(FLAGS_warmup_seconds) > 0) {
    bench.Ping(absl::GetFlag(FLAGS_warmup_seconds));
  }
  bench.Reserve(0.2, "w");

  std::cout << kHeader << "\n";
  std::vector<Row> rows;
  rows.push_back({"ping", bench.Ping(seconds)});
  const double ping_rate = rows.back().result.rate();
  Report(rows.back(), ping_rate);
  rows.push_back({"reserve", bench.Reserve(seconds, "r")});
  const double reserve_rate = rows.back().result.rate();
  Report(rows.back(), ping_rate);
  rows.push_back({"complete", bench.Complete(seconds, reserve_rate)});
  Report(rows.back(), ping_rate);
  if (std::optional<RunResult> lookup = bench.Lookup(seconds)) {
    rows.push_back({"lookup", std::move(*lookup)});
    Report(rows.back(), ping_rate);
  } else {
    std::cout << "lookup: skipped, no key was completed\n";
  }

  std::cout << "\n" << kHeader << "\n";
  uint64_t errors = 0;
  for (const Row& row : rows) {
    std::cout << Format(row, ping_rate) << "\n";
    errors += row.result.errors;
  }
  return errors == 0 ? 0 : 2;
}
