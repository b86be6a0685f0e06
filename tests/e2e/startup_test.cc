// idemkeyd's command line and its startup failures: each exits non-zero with
// a line that says what to fix.

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/support/idemkeyd_process.h"
#include "tests/support/temp_dir.h"

namespace idemkey::testing {
namespace {

// A startup failure is one line: idemkeyd's own, not gRPC's nested status or
// RocksDB's log of the same reason before it.
void ExpectOneLine(const CommandResult& r) {
  const std::vector<absl::string_view> lines =
      absl::StrSplit(r.output, '\n', absl::SkipEmpty());
  EXPECT_EQ(lines.size(), 1u) << r.output;
}

TEST(StartupTest, HelpDocumentsEveryFlag) {
  CommandResult r = RunIdemkeyd({"--help"});
  for (const char* flag : {"--listen",
                           "--data_dir",
                           "--sync",
                           "--default_ttl",
                           "--min_ttl",
                           "--max_ttl",
                           "--default_lease",
                           "--max_lease",
                           "--max_response_bytes",
                           "--max_key_bytes",
                           "--max_tenants",
                           "--auto_create_tenants",
                           "--store_threads",
                           "--cache_mb",
                           "--write_buffer_mb",
                           "--drain_timeout",
                           "--port_file",
                           "--tls_cert",
                           "--tls_key",
                           "--tls_client_ca",
                           "--insecure",
                           "--metrics_listen",
                           "--metrics_port_file",
                           "--tokens_file",
                           "--backend",
                           "--postgres_dsn",
                           "--postgres_pool_size",
                           "--postgres_statement_timeout",
                           "--postgres_sweep_interval"}) {
    EXPECT_NE(r.output.find(std::string(flag) + " ("), std::string::npos)
        << flag << " missing from --help:\n"
        << r.output;
  }
}

TEST(StartupTest, PortInUseFailsClearly) {
  TempDir dir;
  IdemkeydProcess first(dir.path() + "/a");
  ASSERT_TRUE(first.Start());
  CommandResult r = RunIdemkeyd(
      {"--listen=" + first.address(), "--data_dir=" + dir.path() + "/b"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("cannot start: cannot listen on " + first.address() +
                          ": Address already in use"),
            std::string::npos)
      << r.output;
  ExpectOneLine(r);
  // The port was checked before the data directory was touched.
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/b")) << r.output;
  ASSERT_TRUE(first.Stop());
}

TEST(StartupTest, AddressNotOfThisMachineFailsClearly) {
  TempDir dir;
  // 192.0.2.0/24 is reserved for documentation: no interface has it.
  CommandResult r = RunIdemkeyd({"--listen=192.0.2.1:0", "--insecure",
                                 "--data_dir=" + dir.path() + "/data"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("cannot listen on 192.0.2.1:0: Cannot assign "
                          "requested address; no network interface"),
            std::string::npos)
      << r.output;
  // The plaintext warning of --insecure, then the failure.
  EXPECT_TRUE(absl::StrContains(r.output, "PLAINTEXT")) << r.output;
}

TEST(StartupTest, ListenWithoutPortFailsClearly) {
  TempDir dir;
  CommandResult r =
      RunIdemkeyd({"--listen=127.0.0.1", "--data_dir=" + dir.path() + "/data"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--listen=127.0.0.1 has no port"), std::string::npos)
      << r.output;
  ExpectOneLine(r);
}

TEST(StartupTest, DataDirInUseFailsClearly) {
  if (UsingPostgres()) GTEST_SKIP() << "RocksDB's lock on its directory";
  TempDir dir;
  IdemkeydProcess first(dir.path() + "/data");
  ASSERT_TRUE(first.Start());
  CommandResult r = RunIdemkeyd(
      {"--listen=127.0.0.1:0", "--data_dir=" + dir.path() + "/data"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("is in use by another process"), std::string::npos)
      << r.output;
  ExpectOneLine(r);
  ASSERT_TRUE(first.Stop());
}

TEST(StartupTest, UnusableDataDirFailsClearly) {
  TempDir dir;
  // A path below a regular file can never be a directory, even for root.
  const std::string file = dir.path() + "/file";
  FILE* f = fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fclose(f);
  CommandResult r =
      RunIdemkeyd({"--listen=127.0.0.1:0", "--data_dir=" + file + "/data"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("cannot create data directory"), std::string::npos)
      << r.output;
  ExpectOneLine(r);
}

TEST(StartupTest, ContradictoryFlagsFailClearly) {
  CommandResult r = RunIdemkeyd({"--min_ttl=2h", "--default_ttl=1h"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("--min_ttl <= --default_ttl"), std::string::npos)
      << r.output;
  ExpectOneLine(r);
}

}  // namespace
}  // namespace idemkey::testing
