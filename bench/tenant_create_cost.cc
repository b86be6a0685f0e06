// tenant_create_cost.cc — how the cost of creating a tenant grows with the
// number of tenants.
//
// Each tenant is a RocksDB column family, and creating one rewrites the
// OPTIONS file, which lists every column family: the Nth creation costs more
// than the first. This opens a RocksDbBackend (default options: sync on) in a
// fresh temporary directory, creates --tenants tenants one by one and prints,
// for N = 10, 100, 500, 1000 (those up to --tenants), the time of creating
// the Nth tenant in milliseconds: mean, min and max over creations N-4..N,
// and the size of the OPTIONS file after the Nth.
//
//   build/bench/idemkey-tenant-create-cost [--tenants=1000] [--dir=/tmp/x]

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/store/rocksdb/rocksdb_backend.h"

ABSL_FLAG(int32_t, tenants, 1000, "number of tenants to create");
ABSL_FLAG(int32_t, window, 5,
          "creations averaged at each reported N: N-window+1 .. N");
ABSL_FLAG(std::string, dir, "",
          "data directory, which must not exist yet; empty: a fresh directory "
          "under $TMPDIR, removed at the end");
ABSL_FLAG(bool, sync, true, "RocksDbOptions::sync");

namespace {

namespace fs = std::filesystem;

void Die(const std::string& message) {
  std::cerr << "idemkey-tenant-create-cost: " << message << "\n";
  std::exit(1);
}

// Size of the newest OPTIONS-<number> file RocksDB wrote in `dir`.
uintmax_t OptionsFileBytes(const fs::path& dir) {
  uint64_t newest = 0;
  uintmax_t bytes = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (!absl::StartsWith(name, "OPTIONS-")) continue;
    const uint64_t number = std::strtoull(name.c_str() + 8, nullptr, 10);
    if (number >= newest) {
      newest = number;
      bytes = entry.file_size();
    }
  }
  return bytes;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "time of creating the Nth tenant (RocksDB column family) of a "
      "RocksDbBackend.\nUsage: idemkey-tenant-create-cost [--tenants=1000]");
  absl::ParseCommandLine(argc, argv);
  const int tenants = absl::GetFlag(FLAGS_tenants);
  const int window = absl::GetFlag(FLAGS_window);
  if (tenants < 1) Die("--tenants must be at least 1");
  if (window < 1) Die("--window must be at least 1");

  fs::path dir = absl::GetFlag(FLAGS_dir);
  const bool temporary = dir.empty();
  if (temporary) {
    std::string pattern =
        (fs::temp_directory_path() / "idemkey-tenant-cost-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) Die("cannot create a temp dir");
    dir = pattern;
  } else if (fs::exists(dir)) {
    Die(absl::StrCat("--dir ", dir.string(), " already exists"));
  }

  idemkey::store::RocksDbOptions options;
  options.path = dir.string();
  options.sync = absl::GetFlag(FLAGS_sync);
  options.max_tenants = static_cast<size_t>(tenants);
  absl::StatusOr<std::unique_ptr<idemkey::store::RocksDbBackend>> backend =
      idemkey::store::RocksDbBackend::Open(options);
  if (!backend.ok()) Die(backend.status().ToString());

  std::vector<int> report_at;
  for (int n : {10, 100, 500, 1000}) {
    if (n <= tenants) report_at.push_back(n);
  }
  if (report_at.empty() || report_at.back() != tenants) {
    report_at.push_back(tenants);
  }

  std::cout << absl::StrFormat(
      "idemkey-tenant-create-cost: %d tenants in %s, sync %s\n", tenants,
      dir.string(), options.sync ? "on" : "off");
  std::cout << "       N   mean ms    min ms    max ms  OPTIONS KiB\n";
  std::vector<double> ms(tenants + 1, 0);  // ms[i]: creation of tenant i
  const auto all_start = std::chrono::steady_clock::now();
  size_t next_report = 0;
  for (int i = 1; i <= tenants; ++i) {
    const std::string name = absl::StrFormat("tenant-%05d", i);
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<idemkey::store::TenantInfo> created =
        (*backend)->CreateTenant(name, idemkey::store::CallOptions());
    ms[i] = std::chrono::duration<double, std::milli>(
                std::chrono::steady_clock::now() - start)
                .count();
    if (!created.ok()) Die(created.status().ToString());

    if (next_report < report_at.size() && i == report_at[next_report]) {
      ++next_report;
      const int first = std::max(1, i - window + 1);
      double sum = 0, lo = ms[first], hi = ms[first];
      for (int j = first; j <= i; ++j) {
        sum += ms[j];
        lo = std::min(lo, ms[j]);
        hi = std::max(hi, ms[j]);
      }
      std::cout << absl::StrFormat("%8d %9.2f %9.2f %9.2f %12.1f\n", i,
                                   sum / (i - first + 1), lo, hi,
                                   OptionsFileBytes(dir) / 1024.0)
                << std::flush;
    }
  }
  const double total_s = std::chrono::duration<double>(
                             std::chrono::steady_clock::now() - all_start)
                             .count();
  std::cout << absl::StrFormat("total: %d tenants in %.2f s (%.2f ms each)\n",
                               tenants, total_s, total_s * 1e3 / tenants);

  if (absl::Status s = (*backend)->Close(); !s.ok()) Die(s.ToString());
  backend->reset();
  if (temporary) fs::remove_all(dir);
  return 0;
}
