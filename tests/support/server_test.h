// server_test.h — a GoogleTest fixture with a real idemkeyd per test.
//
//   class LifecycleTest : public ServerTest {};
//   TEST_F(LifecycleTest, FirstReserveOwns) {
//     auto r = client().Reserve(ReserveReq("acme", "k", "body", "a1"));
//     ...
//     RestartServer();  // clean stop and start on the same data
//   }
//
// Subclasses pass extra idemkeyd flags by overriding ServerFlags().

#ifndef IDEMKEY_TESTS_SUPPORT_SERVER_TEST_H_
#define IDEMKEY_TESTS_SUPPORT_SERVER_TEST_H_

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/idemkeyd_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_client.h"

namespace idemkey::testing {

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ =
        std::make_unique<IdemkeydProcess>(dir_.path() + "/data", ServerFlags());
    ASSERT_TRUE(server_->Start());
    client_ = std::make_unique<TestClient>(server_->NewChannel());
  }

  void TearDown() override {
    // Idle connections delay a graceful stop (the server waits for their
    // GOAWAY ping acks, and nobody polls an idle synchronous channel).
    client_.reset();
    if (server_->running()) {
      EXPECT_TRUE(server_->Stop());
    }
  }

  virtual std::vector<std::string> ServerFlags() const { return {}; }

  // SIGTERM, then start again on the same data directory.
  void RestartServer() {
    StopServer();
    StartAgain();
  }

  // SIGKILL, then start again on the same data directory.
  void CrashAndRestartServer() {
    server_->Kill9();
    StartAgain();
  }

  // SIGTERM, expecting a clean exit; the fixture's client goes first (an idle
  // connection would slow the stop down).
  void StopServer() {
    client_.reset();
    ASSERT_TRUE(server_->Stop());
  }

  // Starts the stopped server again on its data directory and reconnects.
  void StartAgain() {
    ASSERT_TRUE(server_->Start());
    client_ = std::make_unique<TestClient>(server_->NewChannel());
  }

  TestClient& client() { return *client_; }
  IdemkeydProcess& server() { return *server_; }
  const TempDir& dir() const { return dir_; }

 private:
  TempDir dir_;
  std::unique_ptr<IdemkeydProcess> server_;
  std::unique_ptr<TestClient> client_;
};

}  // namespace idemkey::testing

#endif  // IDEMKEY_TESTS_SUPPORT_SERVER_TEST_H_
