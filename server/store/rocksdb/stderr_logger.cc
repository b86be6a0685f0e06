#include "server/store/rocksdb/stderr_logger.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace idemkey::store {
namespace {

void WriteLine(const std::string& line) {
  if (write(STDERR_FILENO, line.data(), line.size()) < 0) {
    // Nowhere left to report it.
  }
}

}  // namespace

void StderrLogger::Logv(const char* format, va_list ap) {
  char text[1024];
  const int n = std::vsnprintf(text, sizeof text, format, ap);
  std::string line = absl::StrCat(
      "rocksdb: ",
      absl::string_view(text, std::clamp<size_t>(n, 0, sizeof text - 1)), "\n");
  {
    sync::MutexLock lock(&mu_);
    if (holding_) {
      held_.push_back(std::move(line));
      return;
    }
  }
  WriteLine(line);
}

void StderrLogger::EndHold(bool print_held) {
  std::vector<std::string> held;
  {
    sync::MutexLock lock(&mu_);
    holding_ = false;
    held.swap(held_);
  }
  if (!print_held) return;
  for (const std::string& line : held) WriteLine(line);
}

}  // namespace idemkey::store
