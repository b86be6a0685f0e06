#include "server/store/rocksdb/stderr_logger.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace idemkey::store {

void StderrLogger::Logv(const char* format, va_list ap) {
  char text[1024];
  const int n = std::vsnprintf(text, sizeof text, format, ap);
  const std::string line = absl::StrCat(
      "rocksdb: ",
      absl::string_view(text, std::clamp<size_t>(n, 0, sizeof text - 1)), "\n");
  if (write(STDERR_FILENO, line.data(), line.size()) < 0) {
    // Nowhere left to report it.
  }
}

}  // namespace idemkey::store
