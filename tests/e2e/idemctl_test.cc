// idemctl against a real idemkeyd: records are made through
// idemkey::client::Client, then the real idemctl binary is run and its
// stdout, stderr and exit code checked, in table and in JSON form.
//
// Exit code 4 (permission denied) cannot be produced yet: idemkeyd has no
// authentication until the security issue lands, so no call can answer
// PERMISSION_DENIED or UNAUTHENTICATED. Add its test with the auth flags.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "idemctl/args.h"
#include "idemctl/cli.h"
#include "idemctl/format.h"
#include "idemkey/client/client.h"
#include "tests/support/command.h"
#include "tests/support/server_test.h"

namespace idemkey::testing {
namespace {

using google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;

constexpr char kIdemctl[] = IDEMCTL_PATH;

// Lines of `text`, without the trailing empty one.
std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

// Parses one JSON object into `T`, failing the test on a parse error.
template <typename T>
T FromJson(const std::string& json) {
  T message;
  auto s = google::protobuf::util::JsonStringToMessage(json, &message);
  EXPECT_TRUE(s.ok()) << s.ToString() << " in: " << json;
  return message;
}

CommandOutput Idemctl(const std::vector<std::string>& args,
                      const CommandOptions& options = {}) {
  std::vector<std::string> argv = {kIdemctl};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, options);
}

// What a usage error looks like: one error line, then the usage, exit 2.
void ExpectUsageError(const CommandOutput& r, const std::string& message) {
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.out, "");
  const std::vector<std::string> lines = Lines(r.err);
  ASSERT_GE(lines.size(), 2u) << r.err;
  EXPECT_TRUE(absl::StartsWith(lines[0], "idemctl: ")) << r.err;
  EXPECT_THAT(lines[0], HasSubstr(message));
  EXPECT_THAT(r.err, HasSubstr("Usage:"));
}

class IdemctlTest : public ServerTest {
 protected:
  std::vector<std::string> ServerFlags() const override {
    return {"--sync=false"};
  }

  void SetUp() override {
    ServerTest::SetUp();
    idemkey::client::ClientOptions options;
    options.address = server().address();
    options.call_timeout = absl::Seconds(30);
    client_ = idemkey::client::Client::Create(options);
  }

  void TearDown() override {
    client_.reset();  // an idle channel would slow the server's drain
    ServerTest::TearDown();
  }

  // idemctl with --addr of the test's server.
  CommandOutput Ctl(std::vector<std::string> args,
                    const CommandOptions& options = {}) {
    args.insert(args.begin(), {"--addr", server().address()});
    return Idemctl(args, options);
  }

  // Reserves `key` of `tenant` and returns the reply (OWNER expected).
  idemkey::v1::ReserveResponse Reserve(const std::string& tenant,
                                       const std::string& key,
                                       const std::string& attempt = "a-1") {
    auto r = client_->Reserve(ReserveReq(tenant, key, "body:" + key, attempt));
    EXPECT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->outcome(), idemkey::v1::OUTCOME_OWNER);
    return *r;
  }

  // Reserves and completes `key` with `response`.
  void Put(const std::string& tenant, const std::string& key,
           const idemkey::v1::StoredResponse& response) {
    const auto owner = Reserve(tenant, key);
    idemkey::v1::CompleteRequest req;
    req.set_tenant(tenant);
    req.set_key(key);
    req.set_fencing_token(owner.fencing_token());
    *req.mutable_response() = response;
    auto r = client_->Complete(req);
    ASSERT_TRUE(r.ok()) << r.status();
  }

  idemkey::v1::Record Lookup(const std::string& tenant,
                             const std::string& key) {
    auto r = client_->Lookup(tenant, key);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : idemkey::v1::Record();
  }

  idemkey::client::Client& client_lib() { return *client_; }

 private:
  std::shared_ptr<idemkey::client::Client> client_;
};

idemkey::v1::StoredResponse TextResponse() {
  idemkey::v1::StoredResponse r;
  r.set_status_code(201);
  auto* h = r.add_headers();
  h->set_name("Content-Type");
  h->set_value("application/json");
  r.set_body("{\"charge\":\"ch_1\"}");
  return r;
}

TEST_F(IdemctlTest, GetShowsCompletedRecordAsTable) {
  Put("acme", "order-1", TextResponse());
  const auto rec = Lookup("acme", "order-1");

  CommandOutput r = Ctl({"get", "acme", "order-1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const std::string& out = r.out;
  EXPECT_THAT(out, HasSubstr("tenant         acme\n"));
  EXPECT_THAT(out, HasSubstr("key            order-1\n"));
  EXPECT_THAT(out, HasSubstr("state          COMPLETED\n"));
  EXPECT_THAT(out,
              HasSubstr(absl::StrCat(
                  "fingerprint    ",
                  absl::BytesToHexString(Fingerprint("body:order-1")), "\n")));
  EXPECT_THAT(out, HasSubstr("attempt id     a-1\n"));
  EXPECT_THAT(out, HasSubstr(absl::StrCat("fencing token  ",
                                          rec.fencing_token(), "\n")));
  EXPECT_THAT(out, HasSubstr(absl::StrCat("created        ",
                                          idemctl::FormatTime(rec.created_at()),
                                          "\n")));
  EXPECT_THAT(out, HasSubstr(absl::StrCat(
                       "completed      ",
                       idemctl::FormatTime(rec.completed_at()), "\n")));
  // Default retention: 24 h from completion, a moment ago.
  EXPECT_THAT(out, HasSubstr(absl::StrCat("expires        ",
                                          idemctl::FormatTime(rec.expires_at()),
                                          " (in 23h59m)\n")));
  EXPECT_THAT(out, HasSubstr("ttl            24h\n"));
  EXPECT_THAT(out, HasSubstr("status         201\n"));
  EXPECT_THAT(out,
              HasSubstr("header         Content-Type: application/json\n"));
  EXPECT_THAT(out,
              HasSubstr("\nbody (17 bytes, text):\n{\"charge\":\"ch_1\"}\n"));
  EXPECT_FALSE(absl::StrContains(out, "lease expires"));
}

TEST_F(IdemctlTest, GetShowsBinaryBodyAndHeaderInBase64) {
  const idemkey::v1::StoredResponse resp = SampleResponse("ch_2");
  Put("acme", "order-2", resp);

  CommandOutput r = Ctl({"get", "acme", "order-2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("header         Set-Cookie: a=1\n"
                               "header         Set-Cookie: b=2\n"
                               "header         trace-bin: AP8B (base64)\n"));
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat(
                         "\nbody (", resp.body().size(), " bytes, base64):\n",
                         absl::Base64Escape(resp.body()), "\n")));
}

TEST_F(IdemctlTest, GetShowsLeaseOfInProgressRecord) {
  const auto owner = Reserve("acme", "running", "attempt-7");
  CommandOutput r = Ctl({"get", "acme", "running"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("state          IN_PROGRESS\n"));
  EXPECT_THAT(r.out, HasSubstr("attempt id     attempt-7\n"));
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("fencing token  ",
                                            owner.fencing_token(), "\n")));
  // Default lease 30 s, granted a moment ago.
  EXPECT_THAT(r.out,
              HasSubstr(absl::StrCat(
                  "lease expires  ",
                  idemctl::FormatTime(owner.lease_expires_at()), " (in 2")));
  EXPECT_FALSE(absl::StrContains(r.out, "status"));
  EXPECT_FALSE(absl::StrContains(r.out, "body"));
}

TEST_F(IdemctlTest, GetJsonIsTheRecordMessage) {
  Put("acme", "order-1", SampleResponse("ch_1"));
  Reserve("acme", "running");
  for (const std::string key : {"order-1", "running"}) {
    // The global flag works before and after the verb.
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"-o", "json", "get", "acme", key},
             {"get", "acme", key, "--output=json"}}) {
      CommandOutput r = Ctl(args);
      ASSERT_EQ(r.exit_code, 0) << r.err;
      ASSERT_EQ(Lines(r.out).size(), 1u) << r.out;
      EXPECT_THAT(r.out, HasSubstr("\"fencing_token\""));  // proto names
      const auto parsed = FromJson<idemkey::v1::Record>(r.out);
      EXPECT_TRUE(MessageDifferencer::Equals(parsed, Lookup("acme", key)))
          << parsed.DebugString();
    }
  }
}

TEST_F(IdemctlTest, GetRawWritesExactBodyBytes) {
  idemkey::v1::StoredResponse resp = TextResponse();
  std::string body;
  for (int i = 0; i < 256; ++i) body.push_back(static_cast<char>(255 - i));
  body += std::string("\r\n\0tail", 7);
  resp.set_body(body);
  Put("acme", "binary", resp);

  CommandOutput r = Ctl({"get", "acme", "binary", "--raw"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, body);
  EXPECT_EQ(r.err, "");

  // An empty body is zero bytes, not a newline.
  resp.clear_body();
  Put("acme", "empty", resp);
  r = Ctl({"get", "--raw", "acme", "empty"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");

  // In progress: no response yet, exit 1.
  Reserve("acme", "running");
  r = Ctl({"get", "acme", "running", "--raw"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, HasSubstr("IN_PROGRESS"));

  ExpectUsageError(Ctl({"get", "acme", "binary", "--raw", "-o", "json"}),
                   "exclude each other");
}

TEST_F(IdemctlTest, GetOfMissingRecordOrTenantExitsOne) {
  Put("acme", "order-1", TextResponse());
  CommandOutput r = Ctl({"get", "acme", "nope"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, HasSubstr("no record for key \"nope\""));
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));

  r = Ctl({"get", "globex", "order-1"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));
}

TEST_F(IdemctlTest, ValueRefusedByServerIsUsageError) {
  CommandOutput r = Ctl({"get", "Not-A-Tenant", "k"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT"));
}

TEST_F(IdemctlTest, ListPagesThroughEveryRecordInKeyOrder) {
  // More records than one default page (100).
  std::vector<std::string> keys;
  for (int i = 0; i < 130; ++i) {
    char key[16];
    snprintf(key, sizeof key, "order-%03d", i);
    keys.push_back(key);
    if (i % 3 == 0) {
      Reserve("acme", key);
    } else {
      Put("acme", key, TextResponse());
    }
  }
  Put("acme", "refund-1", TextResponse());
  keys.push_back("refund-1");

  auto table_keys = [](const CommandOutput& r) {
    std::vector<std::string> out;
    const std::vector<std::string> lines = Lines(r.out);
    EXPECT_FALSE(lines.empty());
    if (lines.empty()) return out;
    EXPECT_TRUE(absl::StartsWith(lines[0], "KEY "));
    EXPECT_THAT(lines[0], HasSubstr("STATE"));
    EXPECT_THAT(lines[0], HasSubstr("TOKEN"));
    EXPECT_THAT(lines[0], HasSubstr("EXPIRES"));
    for (size_t i = 1; i < lines.size(); ++i) {
      out.push_back(lines[i].substr(0, lines[i].find(' ')));
    }
    return out;
  };

  CommandOutput r = Ctl({"list", "acme"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(table_keys(r), keys);
  // Columns are aligned: every row has STATE where the header has it.
  const size_t state_col = Lines(r.out)[0].find("STATE");
  for (const std::string& line : Lines(r.out)) {
    const std::string state =
        line.substr(state_col, line.find(' ', state_col) - state_col);
    EXPECT_TRUE(state == "STATE" || state == "COMPLETED" ||
                state == "IN_PROGRESS")
        << line;
  }

  // --limit across the page boundary, and with small pages.
  r = Ctl({"list", "acme", "--limit", "120"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(table_keys(r),
            std::vector<std::string>(keys.begin(), keys.begin() + 120));
  r = Ctl({"list", "acme", "--limit=23", "--page-size=5"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(table_keys(r),
            std::vector<std::string>(keys.begin(), keys.begin() + 23));

  // JSON: one Record per line, in key order, without responses.
  r = Ctl({"list", "acme", "-o", "json", "--page-size", "7"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), keys.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto rec = FromJson<idemkey::v1::Record>(lines[i]);
    EXPECT_EQ(rec.key(), keys[i]);
    idemkey::v1::Record want = Lookup("acme", keys[i]);
    want.clear_response();
    EXPECT_TRUE(MessageDifferencer::Equals(rec, want)) << rec.DebugString();
  }

  // Filters.
  r = Ctl({"list", "acme", "--state", "in_progress", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Lines(r.out).size(), 44u);  // 0, 3, ..., 129
  for (const std::string& line : Lines(r.out)) {
    EXPECT_EQ(FromJson<idemkey::v1::Record>(line).state(),
              idemkey::v1::STATE_IN_PROGRESS);
  }
  r = Ctl({"list", "acme", "--prefix", "refund-", "--state=completed"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(table_keys(r), std::vector<std::string>{"refund-1"});

  // An unknown tenant is not found; bad values are usage errors.
  EXPECT_EQ(Ctl({"list", "globex"}).exit_code, 1);
  ExpectUsageError(Ctl({"list", "acme", "--state", "done"}), "--state");
  ExpectUsageError(Ctl({"list", "acme", "--limit", "0"}), "--limit");
  ExpectUsageError(Ctl({"list", "acme", "--page-size", "1001"}), "--page-size");
}

TEST_F(IdemctlTest, DeleteNeedsYesWhenStdinIsNotATerminal) {
  Put("acme", "order-1", TextResponse());

  // Stdin is /dev/null: refused, and the record is still there.
  CommandOutput r = Ctl({"delete", "acme", "order-1"});
  ExpectUsageError(r, "--yes");
  EXPECT_TRUE(client_lib().Lookup("acme", "order-1").ok());

  r = Ctl({"delete", "acme", "order-1", "--yes"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "deleted key \"order-1\" of tenant \"acme\"\n");
  EXPECT_EQ(client_lib().Lookup("acme", "order-1").status().code(),
            absl::StatusCode::kNotFound);

  // Gone: a second delete is not found.
  r = Ctl({"delete", "--yes", "acme", "order-1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));

  // JSON: the (empty) DeleteRecordResponse.
  Put("acme", "order-2", TextResponse());
  r = Ctl({"delete", "acme", "order-2", "--yes", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "{}\n");
}

TEST_F(IdemctlTest, TenantsListCreateDrop) {
  CommandOutput r = Ctl({"tenants", "create", "globex"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("created tenant \"globex\" at "));

  r = Ctl({"tenants", "create", "initech", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto initech = FromJson<idemkey::v1::Tenant>(r.out);
  EXPECT_EQ(initech.name(), "initech");
  EXPECT_GT(initech.created_at().seconds(), 0);

  // An existing tenant: ALREADY_EXISTS is "another service error", 5.
  r = Ctl({"tenants", "create", "globex"});
  EXPECT_EQ(r.exit_code, 5);
  EXPECT_THAT(r.err, HasSubstr("ALREADY_EXISTS"));

  auto want = client_lib().ListTenants();
  ASSERT_TRUE(want.ok());
  ASSERT_EQ(want->tenants_size(), 2);
  r = Ctl({"tenants", "list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_TRUE(absl::StartsWith(lines[0], "NAME     CREATED")) << r.out;
  EXPECT_EQ(lines[1],
            absl::StrCat("globex   ",
                         idemctl::FormatTime(want->tenants(0).created_at())));
  EXPECT_EQ(lines[2],
            absl::StrCat("initech  ",
                         idemctl::FormatTime(want->tenants(1).created_at())));

  r = Ctl({"tenants", "list", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(
        FromJson<idemkey::v1::Tenant>(lines[i]), want->tenants(i)));
  }

  // Drop requires --yes, whatever stdin is.
  ExpectUsageError(Ctl({"tenants", "drop", "globex"}), "--yes");
  EXPECT_EQ(client_lib().ListTenants()->tenants_size(), 2);
  r = Ctl({"tenants", "drop", "globex", "--yes"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "dropped tenant \"globex\"\n");
  ASSERT_EQ(client_lib().ListTenants()->tenants_size(), 1);
  EXPECT_EQ(Ctl({"tenants", "drop", "globex", "--yes"}).exit_code, 1);

  ExpectUsageError(Ctl({"tenants"}), "tenants needs a verb");
  ExpectUsageError(Ctl({"tenants", "rename", "x"}), "unknown verb");
}

TEST_F(IdemctlTest, Stats) {
  Put("acme", "order-1", TextResponse());
  Put("globex", "order-1", TextResponse());

  CommandOutput r = Ctl({"stats"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("tenants                  2 of 1000 allowed\n"));
  EXPECT_THAT(r.out, HasSubstr("uptime  "));
  EXPECT_THAT(r.out, HasSubstr("block cache  "));
  EXPECT_THAT(r.out, HasSubstr("\nTENANT  RECORDS (EST.)  DISK"));
  EXPECT_THAT(r.out, HasSubstr("\nacme    "));
  EXPECT_THAT(r.out, HasSubstr("\nglobex  "));

  r = Ctl({"stats", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(Lines(r.out).size(), 1u);
  const auto stats = FromJson<idemkey::v1::GetStatsResponse>(r.out);
  EXPECT_EQ(stats.tenant_count(), 2u);
  EXPECT_EQ(stats.max_tenants(), 1000u);
  ASSERT_EQ(stats.tenants_size(), 2);
  EXPECT_EQ(stats.tenants(0).name(), "acme");
  EXPECT_EQ(stats.tenants(1).name(), "globex");
  if (!UsingPostgres()) {  // RocksDB's figures
    EXPECT_GT(stats.block_cache_capacity_bytes(), 0u);
    EXPECT_THAT(r.out, HasSubstr("\"block_cache_capacity_bytes\""));
  }
}

// Expiry itself is covered with an injected clock in the unit tests
// (RocksDbBackendTest.CompactDropsExpiredRecordsAndGivesTheSpaceBack); here
// the verb reaches the server, live records stay, and errors map to exits.
TEST_F(IdemctlTest, CompactKeepsLiveRecords) {
  Put("acme", "order-1", TextResponse());
  Put("globex", "order-1", TextResponse());

  CommandOutput r = Ctl({"compact"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("compacted 2 tenants: table files "));
  EXPECT_THAT(r.out, HasSubstr(" 0 expired records dropped\n"));

  r = Ctl({"compact", "--tenant=acme", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto compacted = FromJson<idemkey::v1::CompactResponse>(r.out);
  EXPECT_EQ(compacted.tenants(), 1u);
  // Both records were flushed into a table file by the first compact.
  EXPECT_GT(compacted.disk_bytes_after(), 0u);
  EXPECT_EQ(Lookup("acme", "order-1").response().body(), TextResponse().body());
  EXPECT_EQ(Lookup("globex", "order-1").state(), idemkey::v1::STATE_COMPLETED);

  EXPECT_EQ(Ctl({"compact", "--tenant=nope"}).exit_code, 1);
  EXPECT_EQ(Ctl({"compact", "--tenant=Not Valid"}).exit_code, 2);
}

TEST_F(IdemctlTest, Health) {
  CommandOutput r = Ctl({"health"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, absl::StrCat(server().address(), " is SERVING\n"));
  r = Ctl({"health", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"status\":\"SERVING\"}\n");
}

TEST_F(IdemctlTest, AddressFromEnvironmentAndFlagWins) {
  CommandOptions env_good;
  env_good.env = {"IDEMKEY_ADDR=" + server().address()};
  CommandOutput r = Idemctl({"health"}, env_good);
  EXPECT_EQ(r.exit_code, 0) << r.err;

  CommandOptions env_bad;
  env_bad.env = {"IDEMKEY_ADDR=127.0.0.1:1"};
  r = Idemctl({"health", "--addr", server().address()}, env_bad);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = Idemctl({"--addr=127.0.0.1:1", "health"}, env_good);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, HasSubstr("127.0.0.1:1"));
}

// A port nobody listens on: connection refused.
TEST(IdemctlUnreachable, RefusedConnectionExitsThreeNamingTheAddress) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const std::string addr = absl::StrCat("127.0.0.1:", ntohs(a.sin_port));
  // Bound but not listening: connects are refused.
  for (const auto& verb :
       std::vector<std::vector<std::string>>{{"get", "acme", "k"},
                                             {"list", "acme"},
                                             {"stats"},
                                             {"health"},
                                             {"tenants", "list"}}) {
    std::vector<std::string> args = {"--addr", addr, "--timeout", "2s"};
    args.insert(args.end(), verb.begin(), verb.end());
    CommandOutput r = Idemctl(args);
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_THAT(r.err,
                HasSubstr(absl::StrCat("cannot reach idemkeyd at ", addr)));
    EXPECT_LT(r.elapsed, std::chrono::seconds(2));
  }
  close(fd);
}

// A server that accepts the connection and never answers: the call runs into
// --timeout, and idemctl exits 3 within it.
TEST(IdemctlUnreachable, SilentServerExitsThreeWithinTimeout) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(fd, 16), 0);  // the kernel completes handshakes; no reply
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const std::string addr = absl::StrCat("127.0.0.1:", ntohs(a.sin_port));

  CommandOutput r = Idemctl({"stats", "--addr", addr, "--timeout", "1s"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_THAT(r.err,
              HasSubstr(absl::StrCat("cannot reach idemkeyd at ", addr)));
  // The call's deadline, or the client's 1 s connect timeout
  // (ClientOptions::min_connect_timeout), whichever gRPC hits first.
  EXPECT_TRUE(absl::StrContains(r.err, "DEADLINE_EXCEEDED") ||
              absl::StrContains(r.err, "connection attempt timed out"))
      << r.err;
  // It waited for the answer, but not longer than the timeout (plus the
  // process's start and exit).
  EXPECT_GE(r.elapsed, std::chrono::milliseconds(1000));
  EXPECT_LT(r.elapsed, std::chrono::milliseconds(1000 + 700));
  close(fd);
}

TEST(IdemctlUsage, BadCommandLinesPrintOneLineAndUsageAndExitTwo) {
  ExpectUsageError(Idemctl({}), "missing verb");
  ExpectUsageError(Idemctl({"frobnicate"}), "unknown verb \"frobnicate\"");
  ExpectUsageError(Idemctl({"get", "acme"}), "get needs TENANT KEY");
  ExpectUsageError(Idemctl({"get"}), "get needs TENANT KEY");
  ExpectUsageError(Idemctl({"list"}), "list needs TENANT");
  ExpectUsageError(Idemctl({"stats", "extra"}), "unexpected argument");
  ExpectUsageError(Idemctl({"stats", "--bogus"}), "unknown flag \"--bogus\"");
  ExpectUsageError(Idemctl({"stats", "--timeout"}), "--timeout needs a value");
  ExpectUsageError(Idemctl({"stats", "--timeout", "soon"}), "--timeout");
  ExpectUsageError(Idemctl({"stats", "--timeout=-1s"}), "--timeout");
  ExpectUsageError(Idemctl({"stats", "-o", "yaml"}), "--output");
  ExpectUsageError(Idemctl({"stats", "--yes=1"}), "takes no value");
  ExpectUsageError(Idemctl({"stats", "--yes"}), "does not apply to stats");
  ExpectUsageError(Idemctl({"get", "a", "k", "--limit", "3"}),
                   "does not apply to get");
  ExpectUsageError(Idemctl({"stats", "--addr="}), "--addr");
}

TEST(IdemctlUsage, VersionPrintsTheVersion) {
  CommandOutput r = Idemctl({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "idemctl 0.1.0\n");
}

TEST(IdemctlUsage, HelpListsEveryVerbFlagAndExitCode) {
  CommandOutput r = Idemctl({"--help"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  for (const char* s : {"get TENANT KEY",
                        "list TENANT",
                        "delete TENANT KEY",
                        "tenants list",
                        "tenants create NAME",
                        "tenants drop NAME",
                        "stats",
                        "health",
                        "--addr HOST:PORT",
                        "IDEMKEY_ADDR",
                        "--timeout DURATION",
                        "-o, --output FORMAT",
                        "-h, --help",
                        "Exit codes:",
                        "  0  ok",
                        "  1  not found",
                        "  2  usage error",
                        "  3  service unreachable",
                        "  4  permission denied",
                        "  5  any other error"}) {
    EXPECT_THAT(r.out, HasSubstr(s));
  }
  EXPECT_EQ(Idemctl({"-h"}).out, r.out);
  EXPECT_EQ(Idemctl({"help"}).out, r.out);

  // Each verb's help lists its flags and the global ones, one line each.
  const std::vector<
      std::pair<std::vector<std::string>, std::vector<std::string>>>
      verbs = {
          {{"get"}, {"--raw"}},
          {{"list"}, {"--prefix P", "--state S", "--limit N", "--page-size N"}},
          {{"delete"}, {"--yes"}},
          {{"tenants", "list"}, {}},
          {{"tenants", "create"}, {}},
          {{"tenants", "drop"}, {"--yes"}},
          {{"stats"}, {}},
          {{"health"}, {}},
      };
  for (const auto& [verb, flags] : verbs) {
    std::vector<std::string> args = verb;
    args.push_back("--help");
    r = Idemctl(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(absl::StartsWith(r.out, "Usage: idemctl " + verb[0])) << r.out;
    std::vector<std::string> all = flags;
    all.insert(all.end(), {"--addr HOST:PORT", "--timeout DURATION",
                           "-o, --output FORMAT", "-h, --help"});
    for (const std::string& f : all) {
      bool found = false;
      for (const std::string& line : Lines(r.out)) {
        if (absl::StartsWith(line, "  " + f + "  ")) {
          found = true;
          // name, padding, then a one-line meaning
          EXPECT_GT(line.size(), f.size() + 6) << line;
        }
      }
      EXPECT_TRUE(found) << f << " missing from:\n" << r.out;
    }
  }
  r = Idemctl({"help", "list"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(absl::StartsWith(r.out, "Usage: idemctl list TENANT"));
  r = Idemctl({"tenants", "-h"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("idemctl tenants drop NAME --yes"));
}

// The splitter and formatters, in-process.
TEST(IdemctlArgs, SplitsWordsAndFlagsAnywhere) {
  const std::vector<idemctl::FlagSpec> specs = {
      {"output", 'o', "FORMAT", ""}, {"yes", 0, "", ""}, {"limit", 0, "N", ""}};
  auto p = idemctl::ParseArgs(
      {"-o", "json", "delete", "acme", "--limit=5", "k", "--yes", "-o=table"},
      specs);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->words, (std::vector<std::string>{"delete", "acme", "k"}));
  EXPECT_EQ(p->flags.at("output"), "table");  // last one wins
  EXPECT_EQ(p->flags.at("limit"), "5");
  EXPECT_EQ(p->flags.at("yes"), "");

  // "--" ends the flags: keys may start with "-".
  p = idemctl::ParseArgs({"get", "acme", "--", "--yes", "-k"}, specs);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->words, (std::vector<std::string>{"get", "acme", "--yes", "-k"}));
  EXPECT_TRUE(p->flags.empty());
  // A lone "-" is a word; a value may start with "-".
  p = idemctl::ParseArgs({"-", "--limit", "-3"}, specs);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->words, std::vector<std::string>{"-"});
  EXPECT_EQ(p->flags.at("limit"), "-3");

  EXPECT_FALSE(idemctl::ParseArgs({"--nope"}, specs).ok());
  EXPECT_FALSE(idemctl::ParseArgs({"-x"}, specs).ok());
  EXPECT_FALSE(idemctl::ParseArgs({"--limit"}, specs).ok());
  EXPECT_FALSE(idemctl::ParseArgs({"--yes=no"}, specs).ok());
  EXPECT_FALSE(idemctl::ParseArgs({"-oj"}, specs).ok());
}

TEST(IdemctlArgs, TimeoutBudgetCoversEveryAttempt) {
  for (absl::Duration t : {absl::Milliseconds(200), absl::Seconds(1),
                           absl::Seconds(5), absl::Minutes(1)}) {
    const auto o = idemctl::ClientOptionsFor("x:1", t);
    // Backoff before attempt n+1 is at most min(initial * 2^(n-1), max).
    absl::Duration worst = o.call_timeout * o.max_attempts;
    absl::Duration backoff = o.initial_backoff;
    for (int i = 1; i < o.max_attempts; ++i) {
      worst += backoff;
      backoff = std::min(backoff * 2, o.max_backoff);
    }
    EXPECT_LE(worst, t) << t;
    EXPECT_GE(o.call_timeout, t / 4) << t;
  }
}

TEST(IdemctlFormat, HumanForms) {
  using idemctl::HumanDuration;
  EXPECT_EQ(
      HumanDuration(absl::Hours(23) + absl::Minutes(59) + absl::Seconds(59)),
      "23h59m");
  EXPECT_EQ(HumanDuration(absl::Hours(24)), "24h");
  EXPECT_EQ(HumanDuration(absl::Minutes(5) + absl::Seconds(30)), "5m30s");
  EXPECT_EQ(HumanDuration(absl::Seconds(12)), "12s");
  EXPECT_EQ(HumanDuration(absl::Milliseconds(300)), "0s");
  EXPECT_EQ(HumanDuration(-absl::Seconds(90)), "-1m30s");

  google::protobuf::Timestamp ts;
  EXPECT_EQ(idemctl::FormatTime(ts), "-");
  ts.set_seconds(1714564800);  // 2024-05-01T12:00:00Z
  ts.set_nanos(999);
  EXPECT_EQ(idemctl::FormatTime(ts), "2024-05-01T12:00:00Z");
  EXPECT_EQ(idemctl::FormatTimeFromNow(
                ts, absl::FromUnixSeconds(1714564800) - absl::Hours(2)),
            "2024-05-01T12:00:00Z (in 2h)");
  EXPECT_EQ(idemctl::FormatTimeFromNow(ts, absl::FromUnixSeconds(1714564812)),
            "2024-05-01T12:00:00Z (11s ago)");

  EXPECT_EQ(idemctl::FormatBytes(0), "0 B");
  EXPECT_EQ(idemctl::FormatBytes(1023), "1023 B");
  EXPECT_EQ(idemctl::FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(idemctl::FormatBytes(512ull << 20), "512.0 MiB");

  EXPECT_TRUE(idemctl::IsPrintableText("plain {json}\n\ttab"));
  EXPECT_TRUE(
      idemctl::IsPrintableText("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_TRUE(idemctl::IsPrintableText(""));
  EXPECT_FALSE(idemctl::IsPrintableText(std::string("a\0b", 3)));
  EXPECT_FALSE(idemctl::IsPrintableText("esc \x1b[31m"));
  EXPECT_FALSE(idemctl::IsPrintableText("\x80"));          // lone continuation
  EXPECT_FALSE(idemctl::IsPrintableText("\xc3"));          // truncated
  EXPECT_FALSE(idemctl::IsPrintableText("\xc0\xaf"));      // overlong
  EXPECT_FALSE(idemctl::IsPrintableText("\xed\xa0\x80"));  // surrogate
  EXPECT_FALSE(idemctl::IsPrintableText("\xf4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_EQ(idemctl::TextOrBase64(std::string("\x00\xff\x01", 3)),
            "AP8B (base64)");
}

}  // namespace
}  // namespace idemkey::testing
