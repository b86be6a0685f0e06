// idemkeyd through the client library (idemkey::client::Client) as a Target:
// what an app server's middleware gets, with or without batch_calls.
//
// The library's calls block, so `in_flight` operations are `in_flight`
// threads, each making its scenario's calls in a loop: pairs, a Reserve and
// then a Complete of a fresh key, as a request handler does; reserve, a
// Reserve of a fresh key; lookup, a Lookup of a key `pool_keys` untimed
// pairs completed first. With batch_calls the library coalesces the calls
// the threads make at the same time into Batch RPCs.

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/target.h"
#include "idemkey/client/client.h"

namespace idemkey::bench {
namespace {

class LibraryTarget final : public Target {
 public:
  LibraryTarget(std::shared_ptr<client::Client> client,
                const ScenarioOptions& options)
      : client_(std::move(client)),
        options_(options),
        tenants_(TenantNames(options)),
        run_id_(NewRunId()),
        fingerprint_(RandomBytes(32)) {
    response_.set_status_code(200);
    idemkey::v1::Header* header = response_.add_headers();
    header->set_name("Content-Type");
    header->set_value("application/json");
    response_.set_body(std::string(options.response_bytes, 'x'));
  }

  bool Supports(absl::string_view scenario) const override {
    return scenario == "pairs" || scenario == "reserve" || scenario == "lookup";
  }

  // One pair per tenant creates the tenants.
  void Warmup(double) override {
    for (size_t t = 0; t < tenants_.size(); ++t) {
      Pair(absl::StrCat(run_id_, "-warm-", t), tenants_[t]);
    }
  }

  RunResult Run(absl::string_view scenario, size_t in_flight,
                double seconds) override {
    if (scenario == "lookup" && pool_.empty()) FillPool(in_flight);
    const std::string phase = absl::StrCat(run_id_, "-", runs_++);
    auto op = [&](uint64_t n) {
      const std::string& tenant = tenants_[n % tenants_.size()];
      if (scenario == "lookup") {
        const uint64_t k = Mix(n) % pool_.size();
        absl::StatusOr<idemkey::v1::Record> r =
            client_->Lookup(tenants_[k % tenants_.size()], pool_[k]);
        if (!r.ok()) return absl::StrCat("Lookup: ", r.status().ToString());
        return r->state() == idemkey::v1::STATE_COMPLETED
                   ? std::string()
                   : absl::StrCat("Lookup answered ", r->ShortDebugString());
      }
      const std::string key = absl::StrCat(phase, "-", n);
      if (scenario == "reserve") return Reserve(key, tenant).second;
      return Pair(key, tenant);
    };
    return RunBlockingLoop(in_flight, seconds,
                           [&](size_t, uint64_t n) { return op(n); });
  }

 private:
  // Completes `pool_keys` keys, `in_flight` threads at a time, untimed; key
  // i belongs to tenant i mod the tenant count.
  void FillPool(size_t in_flight) {
    const uint64_t n = std::max<uint64_t>(options_.pool_keys, 1);
    std::atomic<uint64_t> next{0};
    std::vector<std::thread> threads;
    for (size_t i = 0; i < in_flight; ++i) {
      threads.emplace_back([&] {
        for (uint64_t k = next++; k < n; k = next++) {
          Pair(absl::StrCat(run_id_, "-pool-", k),
               tenants_[k % tenants_.size()]);
        }
      });
    }
    for (std::thread& t : threads) t.join();
    for (uint64_t k = 0; k < n; ++k) {
      pool_.push_back(absl::StrCat(run_id_, "-pool-", k));
    }
  }

  // Reserve of `key`: its fencing token and empty, or 0 and what went wrong.
  std::pair<uint64_t, std::string> Reserve(const std::string& key,
                                           const std::string& tenant) {
    idemkey::v1::ReserveRequest reserve;
    reserve.set_tenant(tenant);
    reserve.set_key(key);
    reserve.set_fingerprint(fingerprint_);
    reserve.set_attempt_id(key);
    if (options_.ttl_seconds > 0) {
      reserve.mutable_ttl()->set_seconds(options_.ttl_seconds);
    }
    absl::StatusOr<idemkey::v1::ReserveResponse> owner =
        client_->Reserve(reserve);
    if (!owner.ok()) {
      return {0, absl::StrCat("Reserve: ", owner.status().ToString())};
    }
    if (owner->outcome() != idemkey::v1::OUTCOME_OWNER) {
      return {0, absl::StrCat("Reserve answered ", owner->ShortDebugString())};
    }
    return {owner->fencing_token(), ""};
  }

  // Reserve + Complete of `key`; empty, or what went wrong.
  std::string Pair(const std::string& key, const std::string& tenant) {
    auto [token, error] = Reserve(key, tenant);
    if (!error.empty()) return error;
    idemkey::v1::CompleteRequest complete;
    complete.set_tenant(tenant);
    complete.set_key(key);
    complete.set_fencing_token(token);
    *complete.mutable_response() = response_;
    absl::Status s = client_->Complete(complete).status();
    return s.ok() ? "" : absl::StrCat("Complete: ", s.ToString());
  }

  const std::shared_ptr<client::Client> client_;
  const ScenarioOptions options_;
  const std::vector<std::string> tenants_;
  const std::string run_id_;
  const std::string fingerprint_;
  idemkey::v1::StoredResponse response_;
  int runs_ = 0;
  std::vector<std::string> pool_;  // keys lookup reads
};

}  // namespace

std::unique_ptr<Target> ConnectLibraryTarget(const std::string& address,
                                             bool batch_calls,
                                             bool stream_calls,
                                             const ScenarioOptions& options,
                                             std::string* error) {
  client::ClientOptions client_options;
  client_options.address = address;
  client_options.call_timeout = absl::Seconds(30);
  client_options.batch_calls = batch_calls;
  client_options.stream_calls = stream_calls;
  std::shared_ptr<client::Client> client =
      client::Client::Create(client_options);
  if (absl::Status s = client->Ping(); !s.ok()) {
    *error =
        absl::StrCat("cannot reach idemkeyd at ", address, ": ", s.ToString());
    return nullptr;
  }
  return std::make_unique<LibraryTarget>(std::move(client), options);
}

}  // namespace idemkey::bench
