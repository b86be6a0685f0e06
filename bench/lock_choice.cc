// lock_choice.cc — Google Benchmark: is RocksDbBackend::Update's locking
// (striped std::mutex around DB::Get + decide + DB::Put) worth keeping over
// RocksDB's pessimistic TransactionDB (GetForUpdate + Put + Commit)?
//
// Both sides run the same logical operation directly on RocksDB (not through
// RocksDbBackend, so neither pays for our tenant lookup or record decoding):
// read a key, find it absent, write a ~200-byte value made by EncodeRecord
// (an in-progress record, as Reserve writes it).
//
//   BM_StripedMutex/sync:{0,1}   4096 std::mutex stripes picked by
//                                absl::Hash of the key, held around
//                                DB::Get + DB::Put, on a plain DB;
//   BM_TransactionDb/sync:{0,1}  a TransactionDB (default
//                                TransactionDBOptions), one Transaction per
//                                op: GetForUpdate + Put + Commit;
// each at 1, 8 and 64 threads, every thread writing keys no other thread or
// run uses; and, with sync off,
//   BM_HotKeyStripedMutex, BM_HotKeyTransactionDb
//                                the same RMW, but every thread cycles over
//                                the same 16 keys (contention; the keys exist
//                                after their first write).
// items_per_second is operations per second over all threads, in real time.
// Every (variant, sync, hot) family opens a fresh DB in its own directory
// under $TMPDIR with the same options (those of a tenant column family in
// RocksDbBackend, minus the TTL compaction filter); it is closed and removed
// when the next family starts, or at exit.
//
//   build/bench/idemkey-lock-choice --benchmark_min_time=0.5
//   build/bench/idemkey-lock-choice --benchmark_filter=HotKey

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "benchmark/benchmark.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/transaction.h"
#include "rocksdb/utilities/transaction_db.h"
#include "server/store/record.h"
#include "server/store/rocksdb/record_codec.h"

namespace {

namespace fs = std::filesystem;

constexpr size_t kStripes = 4096;
constexpr int kHotKeys = 16;
constexpr size_t kValueBytes = 200;

enum class Variant { kStripedMutex, kTransactionDb };

[[noreturn]] void Fail(const std::string& message) {
  std::cerr << "idemkey-lock-choice: " << message << "\n";
  std::exit(1);
}

// The value every op writes: an in-progress record as Reserve leaves it, its
// attempt id padded until the encoding is kValueBytes long.
std::string MakeValue() {
  idemkey::store::Record r;
  r.state = idemkey::store::RecordState::kInProgress;
  r.fingerprint = std::string(32, '\xab');
  r.fencing_token = 123456789;
  r.attempt_id = "attempt-0b6d1c2e-3f4a-4b5c-8d9e-0f1a2b3c4d5e";
  r.created_ms = 1'700'000'000'000;
  r.lease_expires_ms = r.created_ms + 30'000;
  r.expires_ms = r.lease_expires_ms;
  r.ttl_ms = 24 * 3600 * 1000LL;
  std::string value = idemkey::store::EncodeRecord(r);
  while (value.size() < kValueBytes) {
    r.attempt_id.push_back('x');
    value = idemkey::store::EncodeRecord(r);
  }
  return value;
}

// The options of a tenant column family in RocksDbBackend (bloom filter, so
// that reads of absent keys skip data blocks; 16 MiB memtables), on a plain
// DB or a TransactionDB alike.
rocksdb::Options MakeOptions() {
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(512 << 20);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  rocksdb::Options options;
  options.create_if_missing = true;
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  options.level_compaction_dynamic_level_bytes = true;
  options.write_buffer_size = 16 << 20;
  return options;
}

// One open DB of one variant and sync mode in a fresh temp directory.
class DbEnv {
 public:
  // The env of `family`; closes and removes the previous family's env first
  // (benchmark families run one after another), so no idle DB flushes or
  // compacts in the background of another family's measurement.
  static DbEnv& Get(Variant variant, bool sync, bool hot) {
    const std::string family =
        absl::StrCat(variant == Variant::kStripedMutex ? "mutex" : "txn",
                     "/sync:", sync ? 1 : 0, hot ? "/hot" : "");
    std::lock_guard<std::mutex> lock(mu_);
    if (current_ == nullptr || current_family_ != family) {
      current_.reset();
      current_.reset(new DbEnv(variant, sync));
      current_family_ = family;
    }
    return *current_;
  }

  static void DestroyAll() {
    std::lock_guard<std::mutex> lock(mu_);
    current_.reset();
  }

  ~DbEnv() {
    rocksdb::Status s = db_->Close();
    if (!s.ok())
      std::cerr << "closing " << dir_ << ": " << s.ToString() << "\n";
    db_.reset();
    fs::remove_all(dir_);
  }

  rocksdb::DB* db() { return db_.get(); }
  rocksdb::TransactionDB* txn_db() { return txn_db_; }
  const rocksdb::WriteOptions& write_options() const { return write_options_; }

  std::mutex& StripeFor(const std::string& key) {
    return stripes_[absl::Hash<absl::string_view>()(absl::string_view(key)) %
                    stripes_.size()];
  }

  // A number no other thread of any run in this env has: the prefix of that
  // thread's keys for one run.
  uint64_t NextKeyBlock() {
    std::lock_guard<std::mutex> lock(mu_);
    return next_block_++;
  }

 private:
  DbEnv(Variant variant, bool sync) : stripes_(kStripes) {
    std::string pattern =
        (fs::temp_directory_path() / "idemkey-lock-choice-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) Fail("cannot create a temp dir");
    dir_ = pattern;
    write_options_.sync = sync;
    const rocksdb::Options options = MakeOptions();
    rocksdb::Status s;
    if (variant == Variant::kStripedMutex) {
      rocksdb::DB* db = nullptr;
      s = rocksdb::DB::Open(options, dir_, &db);
      db_.reset(db);
    } else {
      s = rocksdb::TransactionDB::Open(options, rocksdb::TransactionDBOptions(),
                                       dir_, &txn_db_);
      db_.reset(txn_db_);
    }
    if (!s.ok()) Fail(absl::StrCat("opening ", dir_, ": ", s.ToString()));
  }

  static std::mutex mu_;  // guards the statics and next_block_
  static std::unique_ptr<DbEnv> current_;
  static std::string current_family_;

  std::string dir_;
  rocksdb::WriteOptions write_options_;
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::TransactionDB* txn_db_ = nullptr;  // == db_ for kTransactionDb
  std::vector<std::mutex> stripes_;
  uint64_t next_block_ = 0;
};

std::mutex DbEnv::mu_;
std::unique_ptr<DbEnv> DbEnv::current_;
std::string DbEnv::current_family_;

// Get + decide + Put under the key's stripe. `fresh`: the key must be absent.
bool RmwStripedMutex(benchmark::State& state, DbEnv& env,
                     const std::string& key, const std::string& value,
                     bool fresh) {
  std::lock_guard<std::mutex> lock(env.StripeFor(key));
  rocksdb::DB* db = env.db();
  rocksdb::PinnableSlice existing;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), db->DefaultColumnFamily(),
                              key, &existing);
  if (s.ok() ? fresh : !s.IsNotFound()) {
    state.SkipWithError(s.ok() ? "a fresh key exists" : s.ToString().c_str());
    return false;
  }
  benchmark::DoNotOptimize(existing.size());
  s = db->Put(env.write_options(), key, value);
  if (!s.ok()) {
    state.SkipWithError(s.ToString().c_str());
    return false;
  }
  return true;
}

// One Transaction: GetForUpdate + decide + Put + Commit. A lock timeout or
// conflict rolls back and starts over, counted in `retries`.
bool RmwTransaction(benchmark::State& state, DbEnv& env, const std::string& key,
                    const std::string& value, bool fresh, int64_t& retries) {
  rocksdb::TransactionDB* db = env.txn_db();
  for (;;) {
    std::unique_ptr<rocksdb::Transaction> txn(
        db->BeginTransaction(env.write_options()));
    rocksdb::PinnableSlice existing;
    rocksdb::Status s = txn->GetForUpdate(
        rocksdb::ReadOptions(), db->DefaultColumnFamily(), key, &existing);
    if (s.IsTimedOut() || s.IsBusy() || s.IsTryAgain()) {
      (void)txn->Rollback();
      ++retries;
      continue;
    }
    if (s.ok() ? fresh : !s.IsNotFound()) {
      state.SkipWithError(s.ok() ? "a fresh key exists" : s.ToString().c_str());
      return false;
    }
    benchmark::DoNotOptimize(existing.size());
    s = txn->Put(key, value);
    if (s.ok()) s = txn->Commit();
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      return false;
    }
    return true;
  }
}

void SetCounters(benchmark::State& state, size_t value_bytes, int64_t retries) {
  state.SetItemsProcessed(state.iterations());
  // Per thread; the report shows the mean over threads.
  state.counters["value_bytes"] =
      benchmark::Counter(value_bytes, benchmark::Counter::kAvgThreads);
  state.counters["retries"] = retries;  // summed over threads
}

// Fresh keys. range(0): WriteOptions::sync.
template <Variant kVariant>
void BM_FreshKey(benchmark::State& state) {
  DbEnv& env = DbEnv::Get(kVariant, state.range(0) != 0, /*hot=*/false);
  const std::string value = MakeValue();
  const std::string prefix = absl::StrCat(
      "order-", absl::Hex(env.NextKeyBlock(), absl::kZeroPad8), "-");
  uint64_t n = 0;
  int64_t retries = 0;
  for (auto _ : state) {
    const std::string key =
        absl::StrCat(prefix, absl::Hex(n++, absl::kZeroPad16));
    const bool ok =
        kVariant == Variant::kStripedMutex
            ? RmwStripedMutex(state, env, key, value, /*fresh=*/true)
            : RmwTransaction(state, env, key, value, /*fresh=*/true, retries);
    if (!ok) break;
  }
  SetCounters(state, value.size(), retries);
}

// kHotKeys keys shared by all threads; sync off.
template <Variant kVariant>
void BM_HotKey(benchmark::State& state) {
  DbEnv& env = DbEnv::Get(kVariant, /*sync=*/false, /*hot=*/true);
  const std::string value = MakeValue();
  std::vector<std::string> keys;
  for (int i = 0; i < kHotKeys; ++i) keys.push_back(absl::StrCat("hot-", i));
  size_t n = state.thread_index();
  int64_t retries = 0;
  for (auto _ : state) {
    const std::string& key = keys[n++ % keys.size()];
    const bool ok =
        kVariant == Variant::kStripedMutex
            ? RmwStripedMutex(state, env, key, value, /*fresh=*/false)
            : RmwTransaction(state, env, key, value, /*fresh=*/false, retries);
    if (!ok) break;
  }
  SetCounters(state, value.size(), retries);
}

void BM_StripedMutex(benchmark::State& state) {
  BM_FreshKey<Variant::kStripedMutex>(state);
}
void BM_TransactionDb(benchmark::State& state) {
  BM_FreshKey<Variant::kTransactionDb>(state);
}
void BM_HotKeyStripedMutex(benchmark::State& state) {
  BM_HotKey<Variant::kStripedMutex>(state);
}
void BM_HotKeyTransactionDb(benchmark::State& state) {
  BM_HotKey<Variant::kTransactionDb>(state);
}

void FreshKeyArgs(benchmark::internal::Benchmark* b) {
  b->ArgName("sync")
      ->Arg(0)
      ->Arg(1)
      ->Threads(1)
      ->Threads(8)
      ->Threads(64)
      ->UseRealTime();
}
void HotKeyArgs(benchmark::internal::Benchmark* b) {
  b->Threads(1)->Threads(8)->Threads(64)->UseRealTime();
}

BENCHMARK(BM_StripedMutex)->Apply(FreshKeyArgs);
BENCHMARK(BM_TransactionDb)->Apply(FreshKeyArgs);
BENCHMARK(BM_HotKeyStripedMutex)->Apply(HotKeyArgs);
BENCHMARK(BM_HotKeyTransactionDb)->Apply(HotKeyArgs);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  DbEnv::DestroyAll();
  return 0;
}
