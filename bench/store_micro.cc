// store_micro.cc — Google Benchmark micro benchmarks of the store, in process
// (no gRPC):
//   BM_EncodeRecord / BM_DecodeRecord   record_codec.h on a completed record
//                                       with a 0 B, 1 KiB and 64 KiB body;
//   BM_ReserveComplete/sync:{0,1}       KeyStore Reserve + Complete of a
//                                       fresh key over RocksDbBackend, then
//                                       WhenDurable as idemkeyd waits before
//                                       answering: WAL written to the OS /
//                                       fsynced, 1 and 8 threads;
//   BM_Lookup                           KeyStore Lookup of random completed
//                                       keys among 10000;
//   BM_Fingerprint/<body bytes>         the middleware's request fingerprint
//                                       (SHA-256) of a 0 B to 1 MiB body.
// Each RocksDB store lives in a fresh directory under $TMPDIR, is shared by
// all runs of its sync mode, and is removed at exit.
//
//   build/bench/idemkey-store-micro --benchmark_min_time=0.2
//   build/bench/idemkey-store-micro --benchmark_filter=ReserveComplete

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "idemkey/rules/fingerprint.h"
#include "server/store/key_store.h"
#include "server/store/rocksdb/record_codec.h"
#include "server/store/rocksdb/rocksdb_backend.h"

namespace {

namespace fs = std::filesystem;
using idemkey::store::KeyStore;
using idemkey::store::Record;
using idemkey::store::RecordState;

constexpr char kTenant[] = "bench";
constexpr int kLookupKeys = 10000;
const std::string kFingerprint(32, 'f');

idemkey::v1::StoredResponse MakeResponse(size_t body_bytes) {
  idemkey::v1::StoredResponse response;
  response.set_status_code(200);
  idemkey::v1::Header* header = response.add_headers();
  header->set_name("Content-Type");
  header->set_value("application/json");
  response.set_body(std::string(body_bytes, 'x'));
  return response;
}

// A completed record as Complete leaves it.
Record MakeCompletedRecord(size_t body_bytes) {
  Record r;
  r.key = "order-7f3e2a91-4c1d-4b8e-9a6f-2d5c8e1b0a37";
  r.state = RecordState::kCompleted;
  r.fingerprint = kFingerprint;
  r.fencing_token = 123456789;
  r.attempt_id = "attempt-0b6d1c2e-3f4a-4b5c-8d9e-0f1a2b3c4d5e";
  r.created_ms = 1'700'000'000'000;
  r.completed_ms = r.created_ms + 250;
  r.ttl_ms = 24 * 3600 * 1000LL;
  r.expires_ms = r.completed_ms + r.ttl_ms;
  r.response = MakeResponse(body_bytes);
  return r;
}

void BM_EncodeRecord(benchmark::State& state) {
  const Record record = MakeCompletedRecord(state.range(0));
  size_t bytes = 0;
  for (auto _ : state) {
    std::string value = idemkey::store::EncodeRecord(record);
    bytes = value.size();
    benchmark::DoNotOptimize(value);
  }
  state.SetBytesProcessed(state.iterations() * bytes);
  state.counters["value_bytes"] = bytes;
}
BENCHMARK(BM_EncodeRecord)->Arg(0)->Arg(1 << 10)->Arg(64 << 10);

void BM_DecodeRecord(benchmark::State& state) {
  const Record record = MakeCompletedRecord(state.range(0));
  const std::string value = idemkey::store::EncodeRecord(record);
  for (auto _ : state) {
    absl::StatusOr<Record> decoded =
        idemkey::store::DecodeRecord(record.key, value);
    if (!decoded.ok()) {
      state.SkipWithError(decoded.status().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(decoded);
  }
  state.SetBytesProcessed(state.iterations() * value.size());
  state.counters["value_bytes"] = value.size();
}
BENCHMARK(BM_DecodeRecord)->Arg(0)->Arg(1 << 10)->Arg(64 << 10);

// A RocksDbBackend in a temporary directory, a KeyStore over it, and tenant
// kTenant. One per sync mode, shared by every benchmark run and thread.
class StoreEnv {
 public:
  static StoreEnv& Get(bool sync) {
    std::lock_guard<std::mutex> lock(mu_);
    std::unique_ptr<StoreEnv>& env = envs_[sync];
    if (env == nullptr) env.reset(new StoreEnv(sync));
    return *env;
  }

  // Closes every store and removes its directory.
  static void DestroyAll() {
    std::lock_guard<std::mutex> lock(mu_);
    envs_.clear();
  }

  ~StoreEnv() {
    store_.reset();
    if (absl::Status s = backend_->Close(); !s.ok()) {
      std::cerr << "closing " << dir_ << ": " << s << "\n";
    }
    backend_.reset();
    fs::remove_all(dir_);
  }

  KeyStore& store() { return *store_; }

  // A key no earlier call used, in any thread.
  std::string FreshKey() { return absl::StrCat("k", next_key_++); }

 private:
  explicit StoreEnv(bool sync) {
    std::string pattern =
        (fs::temp_directory_path() / "idemkey-store-micro-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) Fail("cannot create a temp dir");
    dir_ = pattern;
    idemkey::store::RocksDbOptions options;
    options.path = dir_;
    options.sync = sync;
    auto backend = idemkey::store::RocksDbBackend::Open(options);
    if (!backend.ok()) Fail(backend.status().ToString());
    backend_ = std::move(*backend);
    store_ = std::make_unique<KeyStore>(backend_.get(),
                                        idemkey::store::KeyStoreOptions{});
    if (auto t = store_->CreateTenant(kTenant); !t.ok()) {
      Fail(t.status().ToString());
    }
  }

  [[noreturn]] static void Fail(const std::string& message) {
    std::cerr << "idemkey-store-micro: " << message << "\n";
    std::exit(1);
  }

  static std::mutex mu_;
  static std::map<bool, std::unique_ptr<StoreEnv>> envs_;

  std::string dir_;
  std::unique_ptr<idemkey::store::RocksDbBackend> backend_;
  std::unique_ptr<KeyStore> store_;
  std::atomic<uint64_t> next_key_{0};
};

std::mutex StoreEnv::mu_;
std::map<bool, std::unique_ptr<StoreEnv>> StoreEnv::envs_;

// Reserves `key` and completes it with `response`; false (and the benchmark
// skipped with the error) if either fails.
bool ReserveAndComplete(benchmark::State& state, KeyStore& store,
                        const std::string& key,
                        const idemkey::v1::StoredResponse& response) {
  absl::StatusOr<idemkey::store::ReserveResult> reserved =
      store.Reserve({.tenant = kTenant,
                     .key = key,
                     .fingerprint = kFingerprint,
                     .attempt_id = key});
  if (!reserved.ok() ||
      reserved->outcome != idemkey::store::ReserveOutcome::kOwner) {
    state.SkipWithError(reserved.ok() ? "Reserve did not answer OWNER"
                                      : reserved.status().ToString().c_str());
    return false;
  }
  absl::StatusOr<int64_t> completed =
      store.Complete(kTenant, key, reserved->fencing_token, response);
  if (!completed.ok()) {
    state.SkipWithError(completed.status().ToString().c_str());
    return false;
  }
  // What idemkeyd waits for before it answers the Complete.
  std::promise<absl::Status> durable;
  store.WhenDurable([&durable](absl::Status s) { durable.set_value(s); });
  if (absl::Status s = durable.get_future().get(); !s.ok()) {
    state.SkipWithError(s.ToString().c_str());
    return false;
  }
  return true;
}

// range(0): RocksDbOptions::sync. Items: Reserve + Complete pairs.
void BM_ReserveComplete(benchmark::State& state) {
  StoreEnv& env = StoreEnv::Get(state.range(0) != 0);
  const idemkey::v1::StoredResponse response = MakeResponse(256);
  for (auto _ : state) {
    if (!ReserveAndComplete(state, env.store(), env.FreshKey(), response)) {
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReserveComplete)
    ->ArgName("sync")
    ->Arg(0)
    ->Arg(1)
    ->Threads(1)
    ->Threads(8)
    ->UseRealTime();

// Lookup of random keys among kLookupKeys completed ones (in the sync-off
// store; reads do not depend on sync).
void BM_Lookup(benchmark::State& state) {
  StoreEnv& env = StoreEnv::Get(false);
  static std::once_flag populated;
  std::call_once(populated, [&env] {
    const idemkey::v1::StoredResponse response = MakeResponse(256);
    for (int i = 0; i < kLookupKeys; ++i) {
      const std::string key = absl::StrCat("lookup-", i);
      auto r = env.store().Reserve({.tenant = kTenant,
                                    .key = key,
                                    .fingerprint = kFingerprint,
                                    .attempt_id = key});
      if (r.ok()) {
        (void)env.store().Complete(kTenant, key, r->fencing_token, response);
      }
    }
  });
  uint64_t x = 0x9e3779b97f4a7c15ULL * (state.thread_index() + 1);
  for (auto _ : state) {
    x ^= x << 13;  // xorshift64
    x ^= x >> 7;
    x ^= x << 17;
    absl::StatusOr<Record> r =
        env.store().Lookup(kTenant, absl::StrCat("lookup-", x % kLookupKeys));
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Lookup)->Threads(1)->Threads(8)->UseRealTime();

// range(0): body bytes. Bytes: the body's.
void BM_Fingerprint(benchmark::State& state) {
  const std::string body(static_cast<size_t>(state.range(0)), 'b');
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        idemkey::rules::Fingerprint("POST", "/v1/charges", body));
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Fingerprint)->Arg(0)->Arg(1 << 10)->Arg(64 << 10)->Arg(1 << 20);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  StoreEnv::DestroyAll();
  return 0;
}
