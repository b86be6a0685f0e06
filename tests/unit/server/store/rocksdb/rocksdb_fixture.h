// rocksdb_fixture.h — a RocksDB in a temporary directory with one extra
// column family, for the engine's unit tests that need a real DB but not a
// whole RocksDbBackend.
//
//   class FencingTokensTest : public RocksDbFixture {};
//   ... db(), extra_cf(), Reopen() ...

#ifndef IDEMKEY_TESTS_UNIT_SERVER_STORE_ROCKSDB_ROCKSDB_FIXTURE_H_
#define IDEMKEY_TESTS_UNIT_SERVER_STORE_ROCKSDB_ROCKSDB_FIXTURE_H_

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "tests/support/temp_dir.h"

namespace idemkey::store {

class RocksDbFixture : public ::testing::Test {
 protected:
  RocksDbFixture() { Open(); }
  ~RocksDbFixture() override { Close(); }

  rocksdb::DB* db() { return db_.get(); }
  rocksdb::ColumnFamilyHandle* extra_cf() { return handles_[1]; }
  const std::string& path() const { return dir_.path(); }

  void Reopen() {
    Close();
    Open();
  }

 private:
  void Open() {
    rocksdb::DBOptions options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
        {rocksdb::kDefaultColumnFamilyName, {}}, {"extra", {}}};
    rocksdb::DB* db = nullptr;
    rocksdb::Status s =
        rocksdb::DB::Open(options, dir_.path(), cfs, &handles_, &db);
    ASSERT_TRUE(s.ok()) << s.ToString();
    db_.reset(db);
  }
  void Close() {
    for (rocksdb::ColumnFamilyHandle* h : handles_) {
      db_->DestroyColumnFamilyHandle(h);
    }
    handles_.clear();
    db_.reset();
  }

  idemkey::testing::TempDir dir_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

}  // namespace idemkey::store

#endif  // IDEMKEY_TESTS_UNIT_SERVER_STORE_ROCKSDB_ROCKSDB_FIXTURE_H_
