// idemkeyd with its data directory on a full disk (a small tmpfs): the write
// that does not fit is refused with a status that says so, every write
// acknowledged before stays readable, the server keeps running, and once
// space is freed it writes again without a restart.

#include <sys/mount.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/idemkeyd_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_client.h"

namespace idemkey::testing {
namespace {

using grpc::StatusCode;

// A tmpfs mounted on `dir` (created) for the object's lifetime, unmounted
// however the test ends. Needs root (CAP_SYS_ADMIN): mounted() says whether
// the kernel allowed it, error() why not.
class TmpfsMount {
 public:
  TmpfsMount(std::string dir, const std::string& size) : dir_(std::move(dir)) {
    std::filesystem::create_directories(dir_);
    if (mount("tmpfs", dir_.c_str(), "tmpfs", 0, ("size=" + size).c_str()) ==
        0) {
      mounted_ = true;
    } else {
      error_ = std::strerror(errno);
    }
  }
  ~TmpfsMount() {
    // Lazily, so that it goes even if something still holds a file there.
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
  }
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;

  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

  // Grows (or shrinks) the filesystem in place, as freeing space would.
  bool Resize(const std::string& size) {
    return mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT,
                 ("size=" + size).c_str()) == 0;
  }

 private:
  const std::string dir_;
  bool mounted_ = false;
  std::string error_;
};

// A response of about 256 KiB that names its key, so that a mixed-up record
// shows.
idemkey::v1::StoredResponse BigResponse(const std::string& key) {
  idemkey::v1::StoredResponse r;
  r.set_status_code(201);
  r.set_body(key + std::string(256 << 10, '.'));
  return r;
}

TEST(DiskFullTest, FullDiskRefusesWritesClearlyAndKeepsEveryAcknowledgedOne) {
  if (UsingPostgres()) GTEST_SKIP() << "fills RocksDB's data directory";
  TempDir dir;
  // The data directory is the tmpfs itself; idemkeyd's port file and log sit
  // next to it, on a disk with room.
  const std::string data = dir.path() + "/data";
  TmpfsMount disk(data, "16m");
  if (!disk.mounted()) {
    GTEST_SKIP() << "cannot mount a tmpfs on " << data
                 << " (needs root or CAP_SYS_ADMIN): " << disk.error();
  }
  // Declared after the mount: stopped (or killed) before it is unmounted.
  IdemkeydProcess server(data);
  ASSERT_TRUE(server.Start());
  auto client = std::make_unique<TestClient>(server.NewChannel());

  std::vector<std::string> completed;  // acknowledged Completes
  std::string reserved;  // a Reserve acknowledged, its Complete refused
  grpc::Status refused;
  for (int i = 0; i < 1000 && refused.ok(); ++i) {
    const std::string key = "k" + std::to_string(i);
    auto r = client->Reserve(ReserveReq("acme", key, key, "a1"));
    refused = r.status;
    if (!refused.ok()) break;
    refused =
        client->Complete("acme", key, r.reply.fencing_token(), BigResponse(key))
            .status;
    if (refused.ok()) {
      completed.push_back(key);
    } else {
      reserved = key;
    }
  }
  ASSERT_FALSE(refused.ok()) << "16 MiB took 1000 responses of 256 KiB";
  ASSERT_FALSE(completed.empty()) << refused.error_message();
  auto disk_full = [&](const grpc::Status& s) -> ::testing::AssertionResult {
    if (s.error_code() == StatusCode::RESOURCE_EXHAUSTED &&
        s.error_message().find(
            "the data directory's disk is full; free space there (IO error: "
            "No space left on device") != std::string::npos) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure()
           << "status " << s.error_code() << ": " << s.error_message()
           << "\nidemkeyd's log:\n"
           << server.Log();
  };
  ASSERT_TRUE(disk_full(refused));

  // Every acknowledged write reads back as it was.
  auto expect_intact = [&](TestClient& c) {
    for (const std::string& key : completed) {
      auto l = c.Lookup("acme", key);
      ASSERT_TRUE(l.status.ok()) << key << ": " << l.status.error_message();
      EXPECT_EQ(l.reply.record().state(), idemkey::v1::STATE_COMPLETED) << key;
      EXPECT_EQ(l.reply.record().response().SerializeAsString(),
                BigResponse(key).SerializeAsString())
          << key;
    }
    if (!reserved.empty()) {  // its refused Complete may have applied
      auto l = c.Lookup("acme", reserved);
      ASSERT_TRUE(l.status.ok())
          << reserved << ": " << l.status.error_message();
      if (l.reply.record().state() == idemkey::v1::STATE_COMPLETED) {
        EXPECT_EQ(l.reply.record().response().SerializeAsString(),
                  BigResponse(reserved).SerializeAsString());
      } else {
        EXPECT_EQ(l.reply.record().state(), idemkey::v1::STATE_IN_PROGRESS);
      }
    }
  };
  expect_intact(*client);
  // Still serving, and every write is refused alike until space is freed.
  EXPECT_EQ(client->HealthCheck().reply, 1);  // SERVING
  EXPECT_TRUE(disk_full(
      client->Reserve(ReserveReq("acme", "while-full", "b", "a1")).status));

  // RocksDB resumes by itself once its reserved buffer (the largest write
  // buffer of a column family, 64 MiB) is free; it looks every few seconds.
  ASSERT_TRUE(disk.Resize("256m")) << std::strerror(errno);
  Result<idemkey::v1::ReserveResponse> after;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(60);
  do {
    after = client->Reserve(ReserveReq("acme", "after", "after", "a1"));
    if (after.status.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  } while (std::chrono::steady_clock::now() < deadline);
  ASSERT_TRUE(after.status.ok()) << "no write 60 s after space was freed: "
                                 << after.status.error_message();
  ASSERT_TRUE(client
                  ->Complete("acme", "after", after.reply.fencing_token(),
                             BigResponse("after"))
                  .status.ok());
  completed.push_back("after");
  expect_intact(*client);

  // A clean stop, and a restart that finds everything.
  client.reset();
  ASSERT_TRUE(server.Stop());
  ASSERT_TRUE(server.Start());
  client = std::make_unique<TestClient>(server.NewChannel());
  expect_intact(*client);
}

}  // namespace
}  // namespace idemkey::testing
