// Tenant auth with bearer tokens: each token reaches its own tenant only,
// admin calls need an admin token, tokens reload on SIGHUP, and idemctl
// makes tokens the server accepts.

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "idemkey/client/client.h"
#include "tests/support/command.h"
#include "tests/support/idemkeyd_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_client.h"

namespace idemkey::testing {
namespace {

using absl::StatusCode;

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    acme_ = NewToken("acme");
    globex_ = NewToken("globex");
    admin_ = NewToken("admin");
    WriteTokens({acme_.line, globex_.line, admin_.line});
    server_ = std::make_unique<IdemkeydProcess>(
        dir_.path() + "/data",
        std::vector<std::string>{"--tokens_file=" + TokensFile()});
    ASSERT_TRUE(server_->Start());
  }

  void TearDown() override { EXPECT_TRUE(server_->Stop()); }

  struct Token {
    std::string token;
    std::string line;  // for the tokens file
  };

  // A token made by `idemctl token new`, as an operator would.
  static Token NewToken(const std::string& who) {
    CommandOutput r = RunCommand({IDEMCTL_PATH, "token", "new", who});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> lines = absl::StrSplit(r.out, '\n');
    Token t;
    t.token = lines[0].substr(lines[0].rfind(' ') + 1);
    t.line = lines[1].substr(std::string("tokens_file line ").size());
    return t;
  }

  std::string TokensFile() const { return dir_.path() + "/tokens"; }

  void WriteTokens(const std::vector<std::string>& lines) {
    std::ofstream out(TokensFile());
    out << "# test tokens\n";
    for (const std::string& l : lines) out << l << "\n";
  }

  std::shared_ptr<client::Client> ClientWith(const std::string& token) {
    client::ClientOptions options;
    options.address = server_->address();
    options.token = token;
    return client::Client::Create(options);
  }

  static idemkey::v1::ReserveRequest Req(const std::string& tenant) {
    return ReserveReq(tenant, "order-1", "body", "attempt-1");
  }

  TempDir dir_;
  Token acme_, globex_, admin_;
  std::unique_ptr<IdemkeydProcess> server_;
};

// The rotation recipe of docs/operations.md, "Rotating tokens", step by
// step, with an app whose client reads its token from a file: no call fails
// and the app is never restarted.
TEST_F(AuthTest, ATokenIsRotatedWithoutRestartingTheApp) {
  const std::string app_token_file = dir_.path() + "/app-token";
  auto write_app_token = [&](const std::string& token) {
    const std::string tmp = app_token_file + ".tmp";
    std::ofstream(tmp) << token << "\n";
    ASSERT_EQ(std::rename(tmp.c_str(), app_token_file.c_str()), 0);
  };
  auto reload = [&] {
    ASSERT_EQ(kill(server_->pid(), SIGHUP), 0);
    // SIGHUP is handled asynchronously; the log says when it is done.
    for (int i = 0; i < 500; ++i) {
      if (server_->Log().find("SIGHUP: reloaded") != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  };
  write_app_token(acme_.token);
  client::ClientOptions options;
  options.address = server_->address();
  options.token_provider = client::TokenFromFile(app_token_file);
  auto app = client::Client::Create(options);
  int n = 0;
  auto call = [&] {
    return app
        ->Reserve(ReserveReq("acme", "rot-" + std::to_string(++n), "b", "a"))
        .status();
  };
  ASSERT_TRUE(call().ok());

  // 1. Add the new token beside the old one; reload.
  const Token next = NewToken("acme");
  WriteTokens({acme_.line, next.line, globex_.line, admin_.line});
  reload();
  EXPECT_TRUE(call().ok());
  // 2. Switch the app: rewrite its token file.
  write_app_token(next.token);
  EXPECT_TRUE(call().ok());
  // 3. Remove the old token; reload. The app keeps working, the old token
  //    does not.
  WriteTokens({next.line, globex_.line, admin_.line});
  std::string log_before = server_->Log();
  ASSERT_EQ(kill(server_->pid(), SIGHUP), 0);
  for (int i = 0; i < 500 && server_->Log() == log_before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(call().ok());
  EXPECT_EQ(ClientWith(acme_.token)->Reserve(Req("acme")).status().code(),
            StatusCode::kUnauthenticated);
}

// --auto_create_tenants=auto with tokens: a tenant token's first Reserve
// creates its own tenant; an admin token's does not (admins create tenants).
TEST_F(AuthTest, OnlyATokenNamingTheTenantCreatesItByReserving) {
  auto by_admin = ClientWith(admin_.token)->Reserve(Req("acme"));
  EXPECT_EQ(by_admin.status().code(), StatusCode::kNotFound)
      << by_admin.status();
  auto by_acme = ClientWith(acme_.token)->Reserve(Req("acme"));
  ASSERT_TRUE(by_acme.ok()) << by_acme.status();
  EXPECT_EQ(by_acme->outcome(), idemkey::v1::OUTCOME_OWNER);
  // Once it exists, the admin token reaches it like any tenant.
  EXPECT_TRUE(ClientWith(admin_.token)
                  ->Reserve(ReserveReq("acme", "order-2", "body", "a2"))
                  .ok());
}

TEST_F(AuthTest, ATenantTokenReachesItsTenantOnly) {
  auto acme = ClientWith(acme_.token);
  ASSERT_TRUE(acme->Reserve(Req("acme")).ok());
  ASSERT_TRUE(ClientWith(globex_.token)->Reserve(Req("globex")).ok());

  // Another tenant's key, existing or not: the same refusal, before the
  // store is asked, so it tells nothing about that tenant's keys.
  absl::Status existing = acme->Lookup("globex", "order-1").status();
  absl::Status missing = acme->Lookup("globex", "no-such-key").status();
  EXPECT_EQ(existing.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(existing.message(), missing.message());
  EXPECT_EQ(acme->Reserve(Req("globex")).status().code(),
            StatusCode::kPermissionDenied);
  idemkey::v1::CompleteRequest complete;
  complete.set_tenant("globex");
  complete.set_key("order-1");
  complete.set_fencing_token(1);
  EXPECT_EQ(acme->Complete(complete).status().code(),
            StatusCode::kPermissionDenied);
}

// A Batch is authorized op by op, exactly as the calls it carries.
TEST_F(AuthTest, EachBatchOpIsAuthorizedForItsOwnTenant) {
  client::ClientOptions options;
  options.address = server_->address();
  options.token = acme_.token;
  options.batch_calls = true;
  auto batched = client::Client::Create(options);
  EXPECT_TRUE(batched->Reserve(Req("acme")).ok());
  absl::Status other = batched->Reserve(Req("globex")).status();
  EXPECT_EQ(other.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(other.message(),
            ClientWith(acme_.token)->Reserve(Req("globex")).status().message());
  EXPECT_EQ(
      ClientWith(admin_.token)->Lookup("globex", "order-1").status().code(),
      StatusCode::kNotFound);
}

TEST_F(AuthTest, MissingOrWrongTokenIsUnauthenticated) {
  EXPECT_EQ(ClientWith("")->Reserve(Req("acme")).status().code(),
            StatusCode::kUnauthenticated);
  EXPECT_EQ(
      ClientWith("idk_not-a-real-token")->Reserve(Req("acme")).status().code(),
      StatusCode::kUnauthenticated);
  // Health and Ping stay open: probes carry no token.
  EXPECT_TRUE(ClientWith("")->Ping().ok());
  EXPECT_TRUE(ClientWith("")->CheckHealth().ok());
}

TEST_F(AuthTest, AdminCallsNeedAnAdminToken) {
  EXPECT_EQ(ClientWith(acme_.token)->ListTenants().status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(ClientWith(acme_.token)->CreateTenant("other").status().code(),
            StatusCode::kPermissionDenied);
  auto admin = ClientWith(admin_.token);
  EXPECT_TRUE(admin->CreateTenant("other").ok());
  EXPECT_TRUE(admin->ListTenants().ok());
  // An admin may also read any tenant's records (idemctl get).
  ASSERT_TRUE(ClientWith(acme_.token)->Reserve(Req("acme")).ok());
  EXPECT_TRUE(admin->Lookup("acme", "order-1").ok());
}

TEST_F(AuthTest, RemovedTokenStopsWorkingAfterSighup) {
  auto acme = ClientWith(acme_.token);
  ASSERT_TRUE(acme->Reserve(Req("acme")).ok());
  WriteTokens({globex_.line, admin_.line});
  kill(server_->pid(), SIGHUP);
  absl::Status s;
  for (int i = 0; i < 200; ++i) {  // the reload is asynchronous
    s = acme->Lookup("acme", "order-1").status();
    if (s.code() == StatusCode::kUnauthenticated) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(s.code(), StatusCode::kUnauthenticated);
  EXPECT_TRUE(ClientWith(globex_.token)->Reserve(Req("globex")).ok());
  EXPECT_NE(server_->Log().find("SIGHUP: reloaded 2 tokens"), std::string::npos)
      << server_->Log();
  // Neither a token nor its hash is ever logged.
  EXPECT_EQ(server_->Log().find(acme_.token), std::string::npos);
  EXPECT_EQ(server_->Log().find(acme_.line.substr(0, 64)), std::string::npos);
}

TEST_F(AuthTest, IdemctlUsesTheTokenAndExitsFourWhenDenied) {
  ASSERT_TRUE(ClientWith(acme_.token)->Reserve(Req("acme")).ok());
  CommandOptions with_env;
  with_env.env = {"IDEMKEY_TOKEN=" + acme_.token};
  CommandOutput ok = RunCommand(
      {IDEMCTL_PATH, "--addr", server_->address(), "get", "acme", "order-1"},
      with_env);
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  CommandOutput denied = RunCommand(
      {IDEMCTL_PATH, "--addr", server_->address(), "tenants", "list"},
      with_env);
  EXPECT_EQ(denied.exit_code, 4) << denied.out << denied.err;
  CommandOutput none = RunCommand(
      {IDEMCTL_PATH, "--addr", server_->address(), "get", "acme", "order-1"});
  EXPECT_EQ(none.exit_code, 4) << none.err;
  CommandOutput admin =
      RunCommand({IDEMCTL_PATH, "--addr", server_->address(), "--token",
                  admin_.token, "tenants", "list"});
  EXPECT_EQ(admin.exit_code, 0) << admin.err;
}

TEST(AuthStartupTest, BadTokensFileFailsClearly) {
  TempDir dir;
  std::ofstream(dir.path() + "/tokens") << "not-a-hash acme\n";
  CommandResult r =
      RunIdemkeyd({"--listen=127.0.0.1:0", "--data_dir=" + dir.path() + "/data",
                   "--tokens_file=" + dir.path() + "/tokens"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("tokens line 1: expected \"SHA256HEX TENANT\""),
            std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace idemkey::testing
