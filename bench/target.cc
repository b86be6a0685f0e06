#include "bench/target.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace idemkey::bench {

std::vector<std::string> TenantNames(const ScenarioOptions& options) {
  if (options.tenants <= 1) return {options.tenant};
  std::vector<std::string> names;
  for (int i = 0; i < options.tenants; ++i) {
    names.push_back(absl::StrCat(options.tenant, "-", i));
  }
  return names;
}

std::string NewRunId() {
  return absl::StrFormat("%08x", std::random_device{}());
}

std::string RandomBytes(size_t n) {
  std::mt19937_64 rng(std::random_device{}());
  std::string bytes(n, '\0');
  for (char& c : bytes) c = static_cast<char>(rng());
  return bytes;
}

}  // namespace idemkey::bench
