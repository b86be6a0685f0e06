#include "server/store/rocksdb/status.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "server/store/call_options.h"

namespace idemkey::store {

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  const std::string msg = absl::StrCat(what, ": ", s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(msg);
  // A full disk is an I/O error too, but not a transient one: no retry helps
  // until someone frees space.
  if (s.IsNoSpace()) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, ": the data directory's disk is full; free space ",
                     "there (", s.ToString(), ")"));
  }
  if (s.IsIOError() || s.IsBusy() || s.IsTimedOut() || s.IsTryAgain()) {
    return absl::UnavailableError(msg);
  }
  return absl::InternalError(msg);
}

absl::Status FromRecordIo(const rocksdb::Status& s, absl::string_view what) {
  if (s.IsIncomplete()) return WouldBlockError();
  return FromRocks(s, what);
}

}  // namespace idemkey::store
