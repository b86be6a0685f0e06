// stderr_logger.h — RocksDB's warnings and errors, to idemkeyd's stderr.
//
// Not to a LOG file in the data directory: Debian builds librocksdb with
// assertions on, and its file logger aborts the process when it writes after
// a failed write. On a full disk the first refused write would otherwise
// take idemkeyd down (RocksDB logs the error, to the same full disk).
//
//   db_options.info_log = std::make_shared<StderrLogger>();
//
// Thread-safe: each line is one write(2), so concurrent lines stay whole.

#ifndef IDEMKEY_SERVER_STORE_ROCKSDB_STDERR_LOGGER_H_
#define IDEMKEY_SERVER_STORE_ROCKSDB_STDERR_LOGGER_H_

#include <cstdarg>

#include "rocksdb/env.h"

namespace idemkey::store {

class StderrLogger final : public rocksdb::Logger {
 public:
  StderrLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override;
};

}  // namespace idemkey::store

#endif  // IDEMKEY_SERVER_STORE_ROCKSDB_STDERR_LOGGER_H_
