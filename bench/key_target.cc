// idemkeyd as a Target: the KeyService scenarios over the gRPC callback API.
//
// Every scenario is one KeyOps workload: an operation is one call, or a
// Reserve whose completion callback starts the Complete of the same key
// (pairs, fill, the OWNER of hot, the pairs of mix). Keys are
// "<run id>-<phase>-<n>"; every run has a phase of its own, so every run
// writes fresh keys, and key n belongs to tenant n mod --tenants.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/closed_loop.h"
#include "bench/target.h"
#include "grpcpp/grpcpp.h"
#include "idemkey/v1/idemkey.grpc.pb.h"

namespace idemkey::bench {
namespace {

using idemkey::v1::KeyService;
using AsyncStub = KeyService::StubInterface::async_interface;

// Leases long enough that keys reserved ahead of `complete` are still held
// when it completes them.
constexpr int64_t kLeaseSeconds = 600;
// A call taking longer than this fails (DEADLINE_EXCEEDED) instead of
// hanging the run.
constexpr auto kCallDeadline = std::chrono::seconds(30);
// Operations in flight in the untimed set-up runs (warm-up, the pool of
// completed keys): enough for group commit to make them quick whatever
// level is being measured.
constexpr size_t kSetupInFlight = 64;
// Phase of the pool keys that lookup, replay and mix read.
constexpr char kPoolPhase[] = "pool";

enum class Op { kPing, kReserve, kComplete, kLookup, kPair, kReplay, kHot };

// Outcomes counted by hot (what its Reserve answered) and mix (which kind
// of operation ran); the enumerators index the names.
enum HotOutcome { kOwner, kInProgress, kCompleted };
enum MixOutcome { kMixPair, kMixReplay, kMixLookup };

// A key a run wrote: its number in the run's phase, and the fencing token
// its Reserve got.
struct Written {
  uint64_t n = 0;
  uint64_t token = 0;
};

// What every run shares: channels, tenant names and payloads.
struct Fixture {
  std::vector<std::unique_ptr<KeyService::Stub>> stubs;
  ScenarioOptions options;
  std::vector<std::string> tenants;
  std::string run_id;
  std::string fingerprint;
  idemkey::v1::StoredResponse response;

  std::string Key(absl::string_view phase, uint64_t n) const {
    return absl::StrCat(run_id, "-", phase, "-", n);
  }
  const std::string& Tenant(uint64_t n) const {
    return tenants[n % tenants.size()];
  }
};

// What one run does.
struct Plan {
  // The operation of every seq; with `mix`, of the pairs among them.
  Op op = Op::kPing;
  // 80% kPair, 15% kReplay, 5% kLookup, picked by a hash of seq.
  bool mix = false;
  // Keys of the run's own fresh keys (and of its attempt ids).
  std::string phase;
  // Operations to start; fewer when the deadline comes first.
  uint64_t limit = std::numeric_limits<uint64_t>::max();
  // kComplete: the keys of `phase` to complete (limit is their number).
  const std::vector<Written>* reserved = nullptr;
  // kLookup, kReplay: numbers of completed keys of kPoolPhase to pick from.
  const std::vector<uint64_t>* pool = nullptr;
  // Keep what each successful kReserve or kPair wrote (TakeWritten).
  bool keep = false;
};

std::string StatusError(const grpc::Status& status) {
  return absl::StrCat("status ", static_cast<int>(status.error_code()), ": ",
                      status.error_message());
}

std::string Unexpected(const google::protobuf::Message& resp) {
  constexpr size_t kMaxShown = 300;
  std::string text = resp.ShortDebugString();
  if (text.size() > kMaxShown) {
    text = absl::StrCat(text.substr(0, kMaxShown), "...");
  }
  return absl::StrCat("unexpected response {", text, "}");
}

class KeyOps : public Workload {
 public:
  KeyOps(const Fixture& fixture, Plan plan, size_t in_flight)
      : fx_(fixture), plan_(std::move(plan)), slots_(in_flight) {
    for (size_t i = 0; i < slots_.size(); ++i) {
      Slot& slot = slots_[i];
      slot.stub = fx_.stubs[i % fx_.stubs.size()]->async();
      slot.reserve_req.set_fingerprint(fx_.fingerprint);
      slot.reserve_req.mutable_lease()->set_seconds(kLeaseSeconds);
      if (fx_.options.ttl_seconds > 0) {
        slot.reserve_req.mutable_ttl()->set_seconds(fx_.options.ttl_seconds);
      }
      *slot.complete_req.mutable_response() = fx_.response;
    }
  }

  bool Start(size_t s, uint64_t seq, Done done) override {
    if (seq >= plan_.limit) return false;
    Slot& slot = slots_[s];
    slot.done = std::move(done);
    slot.seq = seq;
    slot.op = OpOf(seq);
    switch (slot.op) {
      case Op::kPing:
        slot.stub->Ping(NewContext(slot), &slot.ping_req, &slot.ping_resp,
                        [this, &slot](grpc::Status status) {
                          Finish(slot, status.ok() ? "" : StatusError(status));
                        });
        break;
      case Op::kReserve:
      case Op::kPair:
        Reserve(slot, plan_.phase, seq);
        break;
      case Op::kHot: {
        // Each generation of hot_keys keys takes about in_flight Reserves
        // per key, so that every key is raced by the whole closed loop and
        // then replaced before the scenario turns into replays.
        const uint64_t keys = fx_.options.hot_keys;
        const uint64_t generation = seq / (keys * slots_.size());
        Reserve(slot, plan_.phase, generation * keys + seq % keys);
        break;
      }
      case Op::kReplay:
        Reserve(slot, kPoolPhase, PoolKey(seq));
        break;
      case Op::kComplete: {
        const Written& key = (*plan_.reserved)[seq];
        slot.n = key.n;
        Complete(slot, plan_.phase, key.token);
        break;
      }
      case Op::kLookup: {
        slot.n = PoolKey(seq);
        idemkey::v1::LookupRequest& req = slot.lookup_req;
        req.set_tenant(fx_.Tenant(slot.n));
        req.set_key(fx_.Key(kPoolPhase, slot.n));
        slot.stub->Lookup(
            NewContext(slot), &req, &slot.lookup_resp,
            [this, &slot](grpc::Status status) { OnLookup(slot, status); });
        break;
      }
    }
    return true;
  }

  std::vector<std::string> OutcomeNames() const override {
    if (plan_.mix) return {"pair", "replay", "lookup"};
    if (plan_.op == Op::kHot) return {"owner", "in_progress", "completed"};
    return {};
  }

  // What the run wrote, when plan.keep; call after it.
  std::vector<Written> TakeWritten() {
    std::vector<Written> all;
    for (Slot& slot : slots_) {
      all.insert(all.end(), slot.written.begin(), slot.written.end());
      slot.written.clear();
    }
    return all;
  }

 private:
  // One operation's calls reuse the slot's messages; `n` is the number of
  // its key.
  struct Slot {
    AsyncStub* stub = nullptr;
    Done done;
    uint64_t seq = 0;
    Op op = Op::kPing;
    uint64_t n = 0;
    HotOutcome outcome = kOwner;  // hot only
    std::unique_ptr<grpc::ClientContext> ctx;
    idemkey::v1::PingRequest ping_req;
    idemkey::v1::PingResponse ping_resp;
    idemkey::v1::ReserveRequest reserve_req;
    idemkey::v1::ReserveResponse reserve_resp;
    idemkey::v1::CompleteRequest complete_req;
    idemkey::v1::CompleteResponse complete_resp;
    idemkey::v1::LookupRequest lookup_req;
    idemkey::v1::LookupResponse lookup_resp;
    std::vector<Written> written;
  };

  Op OpOf(uint64_t seq) const {
    if (!plan_.mix) return plan_.op;
    const uint64_t percent = Mix(seq) % 100;
    return percent < 80 ? Op::kPair : percent < 95 ? Op::kReplay : Op::kLookup;
  }

  uint64_t PoolKey(uint64_t seq) const {
    return (*plan_.pool)[Mix(seq) % plan_.pool->size()];
  }

  // A ClientContext serves one call. The previous one may be destroyed inside
  // its own callback (the call keeps its own reference).
  static grpc::ClientContext* NewContext(Slot& slot) {
    slot.ctx = std::make_unique<grpc::ClientContext>();
    slot.ctx->set_deadline(std::chrono::system_clock::now() + kCallDeadline);
    return slot.ctx.get();
  }

  // Reserve of key `n` of `phase`, by an attempt of its own.
  void Reserve(Slot& slot, absl::string_view phase, uint64_t n) {
    slot.n = n;
    idemkey::v1::ReserveRequest& req = slot.reserve_req;
    req.set_tenant(fx_.Tenant(n));
    req.set_key(fx_.Key(phase, n));
    req.set_attempt_id(absl::StrCat("a-", fx_.Key(plan_.phase, slot.seq)));
    slot.reserve_resp.Clear();
    slot.stub->Reserve(
        NewContext(slot), &req, &slot.reserve_resp,
        [this, &slot](grpc::Status status) { OnReserve(slot, status); });
  }

  void OnReserve(Slot& slot, const grpc::Status& status) {
    if (!status.ok()) return Finish(slot, StatusError(status));
    const idemkey::v1::ReserveResponse& resp = slot.reserve_resp;
    const idemkey::v1::Outcome outcome = resp.outcome();
    switch (slot.op) {
      case Op::kHot:
        if (outcome == idemkey::v1::OUTCOME_IN_PROGRESS) {
          slot.outcome = kInProgress;
          return Finish(slot, "");
        }
        if (outcome == idemkey::v1::OUTCOME_COMPLETED) {
          slot.outcome = kCompleted;
          return Finish(slot, "");
        }
        slot.outcome = kOwner;
        [[fallthrough]];
      case Op::kPair:
        if (outcome != idemkey::v1::OUTCOME_OWNER) {
          return Finish(slot, Unexpected(resp));
        }
        return Complete(slot, plan_.phase, resp.fencing_token());
      case Op::kReserve:
        if (outcome != idemkey::v1::OUTCOME_OWNER) {
          return Finish(slot, Unexpected(resp));
        }
        if (plan_.keep) slot.written.push_back({slot.n, resp.fencing_token()});
        return Finish(slot, "");
      case Op::kReplay: {
        const bool replayed =
            outcome == idemkey::v1::OUTCOME_COMPLETED &&
            resp.response().body().size() == fx_.response.body().size();
        return Finish(slot, replayed ? "" : Unexpected(resp));
      }
      case Op::kPing:
      case Op::kComplete:
      case Op::kLookup:
        break;
    }
    Finish(slot, "internal: a Reserve for an operation that sends none");
  }

  // Complete of key slot.n of `phase` with `token`.
  void Complete(Slot& slot, absl::string_view phase, uint64_t token) {
    idemkey::v1::CompleteRequest& req = slot.complete_req;
    req.set_tenant(fx_.Tenant(slot.n));
    req.set_key(fx_.Key(phase, slot.n));
    req.set_fencing_token(token);
    slot.stub->Complete(NewContext(slot), &req, &slot.complete_resp,
                        [this, &slot](grpc::Status status) {
                          if (!status.ok()) {
                            return Finish(slot, StatusError(status));
                          }
                          if (plan_.keep) slot.written.push_back({slot.n, 0});
                          Finish(slot, "");
                        });
  }

  void OnLookup(Slot& slot, const grpc::Status& status) {
    if (!status.ok()) return Finish(slot, StatusError(status));
    const bool completed =
        slot.lookup_resp.record().state() == idemkey::v1::STATE_COMPLETED;
    Finish(slot, completed ? "" : Unexpected(slot.lookup_resp));
  }

  void Finish(Slot& slot, std::string error) {
    // The engine starts the slot's next operation from inside `done`, which
    // replaces slot.done: call a moved-out copy.
    Done done = std::move(slot.done);
    done(OpEnd{std::move(error),
               plan_.mix ? MixOutcomeOf(slot.op) : slot.outcome});
  }

  static int MixOutcomeOf(Op op) {
    return op == Op::kReplay   ? kMixReplay
           : op == Op::kLookup ? kMixLookup
                               : kMixPair;
  }

  const Fixture& fx_;
  const Plan plan_;
  std::vector<Slot> slots_;
};

class KeyTarget : public Target {
 public:
  explicit KeyTarget(Fixture fixture) : fx_(std::move(fixture)) {}

  bool Supports(absl::string_view scenario) const override {
    return std::find(std::begin(kKeyScenarios), std::end(kKeyScenarios),
                     scenario) != std::end(kKeyScenarios);
  }

  // Ping traffic, then one Reserve per tenant, which creates it (with
  // idemkeyd's --auto_create_tenants, on by default).
  void Warmup(double seconds) override {
    if (seconds > 0) {
      Plan ping;
      ping.op = Op::kPing;
      Drive(ping, kSetupInFlight, seconds);
    }
    Plan tenants;
    tenants.op = Op::kReserve;
    tenants.phase = "warmup";
    tenants.limit = fx_.tenants.size();
    const RunResult result = Drive(
        tenants, std::min(kSetupInFlight, fx_.tenants.size()), std::nullopt);
    Note("warm-up", result);
  }

  RunResult Run(absl::string_view scenario, size_t in_flight,
                double seconds) override {
    Plan plan;
    plan.phase = absl::StrCat(scenario, "-", runs_++);
    std::optional<double> duration = seconds;
    if (scenario == "ping") {
      plan.op = Op::kPing;
    } else if (scenario == "reserve") {
      plan.op = Op::kReserve;
    } else if (scenario == "complete") {
      return RunComplete(std::move(plan), in_flight, seconds);
    } else if (scenario == "pairs") {
      plan.op = Op::kPair;
    } else if (scenario == "fill") {
      plan.op = Op::kPair;
      plan.limit = fx_.options.fill_records;
      duration = std::nullopt;
    } else if (scenario == "hot") {
      plan.op = Op::kHot;
    } else {  // lookup, replay, mix: read the pool
      if (!FillPool()) {
        RunResult failed;
        failed.errors = 1;
        failed.first_error = "no completed key to read: the pool set-up failed";
        return failed;
      }
      plan.pool = &pool_;
      plan.op = scenario == "lookup" ? Op::kLookup : Op::kReplay;
      plan.mix = scenario == "mix";
    }
    // After any set-up, which the duration leaves out.
    return Drive(plan, in_flight, duration);
  }

 private:
  RunResult Drive(const Plan& plan, size_t in_flight,
                  std::optional<double> seconds,
                  std::vector<Written>* written = nullptr) {
    KeyOps ops(fx_, plan, in_flight);
    RunResult result = ClosedLoop(ops, in_flight, seconds).Run();
    if (written != nullptr) *written = ops.TakeWritten();
    return result;
  }

  // Reserves keys for 1.5 x `seconds` (untimed), then times the Complete of
  // them for `seconds`, or until they run out.
  RunResult RunComplete(Plan plan, size_t in_flight, double seconds) {
    std::cerr << absl::StrFormat(
        "  (complete: reserving keys for %.1f s, untimed)\n", 1.5 * seconds);
    plan.op = Op::kReserve;
    plan.keep = true;
    std::vector<Written> reserved;
    Note("complete set-up", Drive(plan, in_flight, 1.5 * seconds, &reserved));
    plan.op = Op::kComplete;
    plan.keep = false;
    plan.reserved = &reserved;
    plan.limit = reserved.size();
    return Drive(plan, in_flight, seconds);
  }

  // Writes --pool_keys completed keys the first time a scenario needs them.
  // False when none could be written.
  bool FillPool() {
    if (!pool_.empty()) return true;
    std::cerr << absl::StrFormat("  (pool: completing %d keys, untimed)\n",
                                 fx_.options.pool_keys);
    Plan plan;
    plan.op = Op::kPair;
    plan.phase = kPoolPhase;
    plan.limit = fx_.options.pool_keys;
    plan.keep = true;
    std::vector<Written> written;
    Note("pool set-up", Drive(plan, kSetupInFlight, std::nullopt, &written));
    for (const Written& key : written) pool_.push_back(key.n);
    return !pool_.empty();
  }

  static void Note(absl::string_view what, const RunResult& result) {
    if (result.errors == 0) return;
    std::cerr << absl::StrFormat("  (%s: %d of %d calls failed: %s)\n", what,
                                 result.errors, result.ops(),
                                 result.first_error);
  }

  const Fixture fx_;
  uint64_t runs_ = 0;
  std::vector<uint64_t> pool_;  // numbers of the completed kPoolPhase keys
};

}  // namespace

std::unique_ptr<Target> ConnectKeyTarget(const std::string& address,
                                         int channels,
                                         const ScenarioOptions& options,
                                         std::string* error) {
  Fixture fx;
  // A local subchannel pool per channel: otherwise channels to one address
  // share a single connection.
  for (int i = 0; i < channels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    // An address naming several replicas ("ipv4:a,b") spreads the calls.
    args.SetLoadBalancingPolicyName("round_robin");
    std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
        address, grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() +
                                   std::chrono::seconds(5))) {
      *error =
          absl::StrCat("cannot connect to idemkeyd at ", address,
                       " within 5 s; start it first (see bench/README.md)");
      return nullptr;
    }
    fx.stubs.push_back(KeyService::NewStub(channel));
  }
  fx.options = options;
  fx.tenants = TenantNames(options);
  fx.run_id = NewRunId();
  fx.fingerprint = RandomBytes(32);
  fx.response.set_status_code(200);
  idemkey::v1::Header* header = fx.response.add_headers();
  header->set_name("Content-Type");
  header->set_value("application/json");
  fx.response.set_body(std::string(options.response_bytes, 'x'));
  return std::make_unique<KeyTarget>(std::move(fx));
}

}  // namespace idemkey::bench
