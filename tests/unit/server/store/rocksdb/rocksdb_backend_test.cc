// RocksDbBackend specifics: the TTL compaction filter reclaims expired
// records physically, fencing tokens never repeat across reopen, and the
// tenant registry follows the column families.

#include "server/store/rocksdb/rocksdb_backend.h"

#include <atomic>
#include <set>
#include <thread>

#include "gtest/gtest.h"
#include "server/store/call_options.h"
#include "server/store/key_store.h"
#include "tests/support/temp_dir.h"

namespace idemkey::store {
namespace {

constexpr int64_t kStart = 1'700'000'000'000;

class RocksDbBackendTest : public ::testing::Test {
 protected:
  // Opens the backend with `options_` (path and clock set here).
  void Open() {
    RocksDbOptions options = options_;
    options.path = dir_.path() + "/db";
    options.clock = &clock_;
    auto opened = RocksDbBackend::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status();
    backend_ = std::move(*opened);
    KeyStoreOptions store_options;
    store_options.clock = &clock_;
    store_options.limits.min_ttl_ms = 1000;
    store_ = std::make_unique<KeyStore>(backend_.get(), store_options);
  }

  void Reopen() {
    store_.reset();
    ASSERT_TRUE(backend_->Close().ok());
    backend_.reset();
    Open();
  }

  // Reserves and completes `key` of `tenant` with retention `ttl_ms`.
  void PutCompleted(const std::string& key, int64_t ttl_ms,
                    const CallOptions& options = CallOptions(),
                    const std::string& tenant = "acme") {
    absl::StatusOr<ReserveResult> r =
        store_->Reserve({.tenant = tenant,
                         .key = key,
                         .fingerprint = std::string(32, 'f'),
                         .attempt_id = "a",
                         .ttl_ms = ttl_ms},
                        options);
    ASSERT_TRUE(r.ok()) << r.status();
    idemkey::v1::StoredResponse response;
    response.set_body("body of " + key);
    ASSERT_TRUE(
        store_->Complete(tenant, key, r->fencing_token, response, options)
            .ok());
  }

  // Keys physically present in the tenant's column family, expired or not.
  std::set<std::string> RawKeys(const std::string& tenant) {
    std::set<std::string> keys;
    std::unique_ptr<rocksdb::Iterator> it(backend_->db()->NewIterator(
        rocksdb::ReadOptions(), backend_->TenantHandleForTesting(tenant)));
    for (it->SeekToFirst(); it->Valid(); it->Next())
      keys.insert(it->key().ToString());
    EXPECT_TRUE(it->status().ok());
    return keys;
  }

  idemkey::testing::TempDir dir_;
  ManualClock clock_{kStart};
  RocksDbOptions options_;
  std::unique_ptr<RocksDbBackend> backend_;
  std::unique_ptr<KeyStore> store_;
};

TEST_F(RocksDbBackendTest, CompactionDropsExpiredRecordsAndKeepsLiveOnes) {
  Open();
  for (int i = 0; i < 100; ++i) {
    PutCompleted("short-" + std::to_string(i), 60'000);
    PutCompleted("long-" + std::to_string(i), 3'600'000);
  }
  rocksdb::ColumnFamilyHandle* cf = backend_->TenantHandleForTesting("acme");
  // Into table files while everything is live: the flush keeps all of it.
  ASSERT_TRUE(backend_->db()->Flush(rocksdb::FlushOptions(), cf).ok());
  ASSERT_EQ(RawKeys("acme").size(), 200u);

  clock_.Advance(absl::Minutes(2));
  rocksdb::CompactRangeOptions compact;
  compact.bottommost_level_compaction =
      rocksdb::BottommostLevelCompaction::kForce;
  ASSERT_TRUE(backend_->db()->CompactRange(compact, cf, nullptr, nullptr).ok());

  std::set<std::string> left = RawKeys("acme");
  EXPECT_EQ(left.size(), 100u);
  for (const std::string& k : left) EXPECT_EQ(k.rfind("long-", 0), 0u) << k;
  EXPECT_GE(backend_->Stats()->expired_records_dropped, 100u);
  EXPECT_TRUE(store_->Lookup("acme", "long-7").ok());
}

TEST_F(RocksDbBackendTest, FlushDropsRecordsThatExpiredInTheMemtable) {
  Open();
  for (int i = 0; i < 10; ++i) PutCompleted("k" + std::to_string(i), 60'000);
  PutCompleted("live", 3'600'000);
  clock_.Advance(absl::Minutes(2));
  rocksdb::ColumnFamilyHandle* cf = backend_->TenantHandleForTesting("acme");
  ASSERT_TRUE(backend_->db()->Flush(rocksdb::FlushOptions(), cf).ok());
  EXPECT_EQ(RawKeys("acme"), std::set<std::string>{"live"});
}

// A memtable is charged to the write buffer manager one arena block at a
// time once it outgrows its small inline block. With RocksDB's default 1 MiB
// blocks, 64 tenants of a few KiB each count 64 MiB against an 8 MiB write
// buffer, and the manager pushes memtables out on nearly every write.
TEST_F(RocksDbBackendTest, EveryTenantAllowedCanWriteWithoutForcingFlushes) {
  options_.write_buffer_bytes = 8 << 20;
  options_.max_tenants = 64;
  Open();
  constexpr int kKeysPerTenant = 40;  // some KiB: past the inline block
  for (size_t t = 0; t < options_.max_tenants; ++t) {
    for (int k = 0; k < kKeysPerTenant; ++k) {
      PutCompleted("k" + std::to_string(k), 3'600'000, CallOptions(),
                   "t" + std::to_string(t));
    }
  }
  for (size_t t = 0; t < options_.max_tenants; ++t) {
    const std::string tenant = "t" + std::to_string(t);
    uint64_t active = 0;
    ASSERT_TRUE(backend_->db()->GetIntProperty(
        backend_->TenantHandleForTesting(tenant),
        rocksdb::DB::Properties::kNumEntriesActiveMemTable, &active));
    // Reserve and Complete are one write each.
    EXPECT_EQ(active, 2u * kKeysPerTenant)
        << tenant << "'s memtable was switched out";
  }
}

TEST_F(RocksDbBackendTest, FencingTokensKeepGrowingAcrossReopen) {
  Open();
  uint64_t last = 0;
  for (int i = 0; i < 5; ++i) last = *backend_->NextFencingToken(CallOptions());
  Reopen();
  EXPECT_GT(*backend_->NextFencingToken(CallOptions()), last);
}

TEST_F(RocksDbBackendTest, RestoredBackupNeverReissuesLaterTokens) {
  Open();
  const std::string copy = dir_.path() + "/backup";
  ASSERT_TRUE(backend_->Checkpoint(copy).ok());
  // More tokens after the backup than one watermark block covers.
  uint64_t last = 0;
  for (int i = 0; i < 70'000; ++i)
    last = *backend_->NextFencingToken(CallOptions());
  store_.reset();
  ASSERT_TRUE(backend_->Close().ok());
  backend_.reset();

  clock_.Advance(absl::Seconds(1));  // the restore happens later
  RocksDbOptions options;
  options.path = copy;
  options.clock = &clock_;
  auto restored = RocksDbBackend::Open(options);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_GT(*(*restored)->NextFencingToken(CallOptions()), last);
}

TEST_F(RocksDbBackendTest, CheckpointRefusesAnExistingOrRelativeDirectory) {
  Open();
  EXPECT_EQ(backend_->Checkpoint(dir_.path()).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(backend_->Checkpoint("relative").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(RocksDbBackendTest, TenantsAndRecordsSurviveReopen) {
  Open();
  PutCompleted("k", 3'600'000);
  ASSERT_TRUE(backend_->CreateTenant("globex", CallOptions()).ok());
  const int64_t created = backend_->ListTenants()[1].created_ms;
  Reopen();
  std::vector<TenantInfo> tenants = backend_->ListTenants();
  ASSERT_EQ(tenants.size(), 2u);
  EXPECT_EQ(tenants[1].name, "globex");
  EXPECT_EQ(tenants[1].created_ms, created);
  absl::StatusOr<Record> r = store_->Lookup("acme", "k");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->response.body(), "body of k");
}

TEST_F(RocksDbBackendTest, DroppedTenantStaysDroppedAfterReopen) {
  Open();
  PutCompleted("k", 3'600'000);
  ASSERT_TRUE(backend_->DropTenant("acme", CallOptions()).ok());
  Reopen();
  EXPECT_TRUE(backend_->ListTenants().empty());
}

TEST_F(RocksDbBackendTest, SecondOpenOfTheSameDirectoryIsRefused) {
  Open();
  RocksDbOptions options;
  options.path = dir_.path() + "/db";
  auto second = RocksDbBackend::Open(options);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("in use by another process"),
            absl::string_view::npos);
}

TEST_F(RocksDbBackendTest, CompactDropsExpiredRecordsAndGivesTheSpaceBack) {
  Open();
  for (int i = 0; i < 200; ++i) {
    PutCompleted("short-" + std::to_string(i), 60'000);
    PutCompleted("long-" + std::to_string(i), 3'600'000);
  }
  ASSERT_TRUE(backend_->db()
                  ->Flush(rocksdb::FlushOptions(),
                          backend_->TenantHandleForTesting("acme"))
                  .ok());
  clock_.Advance(absl::Milliseconds(60'001));

  absl::StatusOr<CompactionResult> r = store_->Compact("");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->tenants, 1u);
  EXPECT_EQ(r->expired_records_dropped, 200u);
  EXPECT_GT(r->disk_bytes_before, 0u);
  EXPECT_LT(r->disk_bytes_after, r->disk_bytes_before);
  std::set<std::string> keys = RawKeys("acme");
  ASSERT_EQ(keys.size(), 200u);
  EXPECT_EQ(*keys.begin(), "long-0");

  EXPECT_EQ(store_->Compact("nope").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Compact("Not Valid").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// A call that may not wait does not read a record that is only on disk:
// it refuses with WouldBlockError, and works when it may wait.
TEST_F(RocksDbBackendTest, NonBlockingReadOfARecordOnlyOnDiskWouldBlock) {
  Open();
  PutCompleted("cold", 3'600'000);
  ASSERT_TRUE(backend_->db()
                  ->Flush(rocksdb::FlushOptions(),
                          backend_->TenantHandleForTesting("acme"))
                  .ok());
  Reopen();  // an empty block cache

  const CallOptions no_io{.may_wait_for_io = false};
  {
    absl::StatusOr<Record> r = store_->Lookup("acme", "cold", no_io);
    EXPECT_TRUE(IsWouldBlock(r.status())) << r.status();
  }
  absl::StatusOr<Record> r = store_->Lookup("acme", "cold");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->response.body(), "body of cold");
  {
    r = store_->Lookup("acme", "cold", no_io);  // the block is cached now
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->response.body(), "body of cold");
  }
}

// Creating a tenant writes files: refused when the call may not wait, with
// nothing created, and done when it may.
TEST_F(RocksDbBackendTest, NonBlockingReserveDoesNotCreateATenant) {
  Open();
  const std::string fingerprint(32, 'f');  // ReserveArgs holds views
  const ReserveArgs args{.tenant = "fresh",
                         .key = "k",
                         .fingerprint = fingerprint,
                         .attempt_id = "a"};
  {
    absl::StatusOr<ReserveResult> r =
        store_->Reserve(args, {.may_wait_for_io = false});
    EXPECT_TRUE(IsWouldBlock(r.status())) << r.status();
  }
  EXPECT_TRUE(store_->ListTenants().empty());
  absl::StatusOr<ReserveResult> r = store_->Reserve(args);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->outcome, ReserveOutcome::kOwner);
}

// Writes go to the WAL unsynced; WhenDurable answers after a shared sync.
TEST_F(RocksDbBackendTest, WhenDurableAnswersAfterAWalSync) {
  Open();
  // Creates the tenant and persists a token watermark: both block.
  PutCompleted("first", 3'600'000);
  const uint64_t syncs_before = backend_->wal_syncs();
  // Now nothing in Reserve + Complete waits.
  PutCompleted("warm", 3'600'000, {.may_wait_for_io = false});
  std::atomic<bool> done{false};
  store_->WhenDurable([&](absl::Status s) {
    EXPECT_TRUE(s.ok()) << s;
    done = true;
  });
  while (!done) std::this_thread::yield();
  EXPECT_GT(backend_->wal_syncs(), syncs_before);
}

}  // namespace
}  // namespace idemkey::store
