// stderr_logger.h — RocksDB's warnings and errors, to idemkeyd's stderr.
//
// Not to a LOG file in the data directory: Debian builds librocksdb with
// assertions on, and its file logger aborts the process when it writes after
// a failed write. On a full disk the first refused write would otherwise
// take idemkeyd down (RocksDB logs the error, to the same full disk).
//
// Lines written while the database opens are held back: when DB::Open fails,
// RocksDB logs the reason it also returns, and idemkeyd prints that reason
// itself, in one line that says what to do. The opener ends the hold:
//
//   auto logger = std::make_shared<StderrLogger>();
//   db_options.info_log = logger;
//   rocksdb::Status s = rocksdb::DB::Open(db_options, ...);
//   logger->EndHold(/*print_held=*/s.ok());
//
// Thread-safe: each line is one write(2), so concurrent lines stay whole.

#ifndef IDEMKEY_SERVER_STORE_ROCKSDB_STDERR_LOGGER_H_
#define IDEMKEY_SERVER_STORE_ROCKSDB_STDERR_LOGGER_H_

#include <cstdarg>
#include <string>
#include <vector>

#include "idemkey/sync/mutex.h"
#include "rocksdb/env.h"

namespace idemkey::store {

class StderrLogger final : public rocksdb::Logger {
 public:
  StderrLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override;

  // Prints the lines held so far if `print_held`, drops them otherwise; from
  // then on every line is printed as it comes. Later calls do nothing.
  void EndHold(bool print_held);

 private:
  sync::Mutex mu_;
  bool holding_ ABSL_GUARDED_BY(mu_) = true;
  std::vector<std::string> held_ ABSL_GUARDED_BY(mu_);
};

}  // namespace idemkey::store

#endif  // IDEMKEY_SERVER_STORE_ROCKSDB_STDERR_LOGGER_H_
