// Transport security: TLS, mutual TLS, and plaintext only on loopback unless
// --insecure. Certificates come from a test CA made with openssl at test time.

#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "idemkey/client/client.h"
#include "tests/support/command.h"
#include "tests/support/idemkeyd_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_client.h"

namespace idemkey::testing {
namespace {

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MakeCa("ca");
    MakeCa("rogue-ca");
    MakeCert("ca", "server", "subjectAltName=IP:127.0.0.1,DNS:localhost");
    MakeCert("ca", "client", "extendedKeyUsage=clientAuth");
    MakeCert("rogue-ca", "rogue-client", "extendedKeyUsage=clientAuth");
  }

  std::string Path(const std::string& name) const {
    return dir_.path() + "/" + name;
  }

  void OpenSsl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/openssl"};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandOutput r = RunCommand(argv);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  void MakeCa(const std::string& name) {
    OpenSsl({"req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
             "/CN=" + name, "-keyout", Path(name + ".key"), "-out",
             Path(name + ".crt")});
  }

  void MakeCert(const std::string& ca, const std::string& name,
                const std::string& extension) {
    std::ofstream(Path(name + ".ext")) << extension << "\n";
    OpenSsl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-subj", "/CN=" + name, "-keyout", Path(name + ".key"),
             "-out", Path(name + ".csr")});
    OpenSsl({"x509", "-req", "-in", Path(name + ".csr"), "-CA",
             Path(ca + ".crt"), "-CAkey", Path(ca + ".key"), "-CAcreateserial",
             "-days", "2", "-extfile", Path(name + ".ext"), "-out",
             Path(name + ".crt")});
  }

  // A client over TLS that trusts `ca`, presenting `cert` if not empty.
  TestClient TlsClient(const IdemkeydProcess& server, const std::string& ca,
                       const std::string& cert = "") {
    auto creds = client::TlsCredentialsFromFiles(
        Path(ca + ".crt"), cert.empty() ? "" : Path(cert + ".crt"),
        cert.empty() ? "" : Path(cert + ".key"));
    EXPECT_TRUE(creds.ok()) << creds.status();
    return TestClient(grpc::CreateCustomChannel(server.address(), *creds,
                                                grpc::ChannelArguments()));
  }

  std::vector<std::string> ServerTlsFlags() const {
    return {"--tls_cert=" + Path("server.crt"),
            "--tls_key=" + Path("server.key")};
  }

  TempDir dir_;
};

TEST_F(TlsTest, ServesTlsToVerifyingClientsOnly) {
  IdemkeydProcess server(Path("data"), ServerTlsFlags());
  ASSERT_TRUE(server.Start());
  EXPECT_NE(server.Log().find(", TLS,"), std::string::npos) << server.Log();

  auto ok = TlsClient(server, "ca").Reserve(ReserveReq("acme", "k", "b", "a"));
  EXPECT_TRUE(ok.status.ok()) << ok.status.error_message();

  TestClient plaintext(server.NewChannel());
  EXPECT_EQ(plaintext.Lookup("acme", "k").status.error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // A client that does not trust the server's CA refuses the handshake.
  EXPECT_EQ(
      TlsClient(server, "rogue-ca").Lookup("acme", "k").status.error_code(),
      grpc::StatusCode::UNAVAILABLE);
  ASSERT_TRUE(server.Stop());
  EXPECT_EQ(server.Log().find("PRIVATE KEY"), std::string::npos);
}

TEST_F(TlsTest, MutualTlsRefusesClientsWithoutAGoodCertificate) {
  std::vector<std::string> flags = ServerTlsFlags();
  flags.push_back("--tls_client_ca=" + Path("ca.crt"));
  IdemkeydProcess server(Path("data"), flags);
  ASSERT_TRUE(server.Start());
  EXPECT_NE(server.Log().find("mutual TLS"), std::string::npos);

  EXPECT_EQ(TlsClient(server, "ca").Lookup("acme", "k").status.error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(TlsClient(server, "ca", "rogue-client")
                .Lookup("acme", "k")
                .status.error_code(),
            grpc::StatusCode::UNAVAILABLE);
  auto good = TlsClient(server, "ca", "client")
                  .Reserve(ReserveReq("acme", "k", "b", "a"));
  EXPECT_TRUE(good.status.ok()) << good.status.error_message();
  ASSERT_TRUE(server.Stop());
}

TEST_F(TlsTest, PlaintextOffLoopbackNeedsInsecure) {
  CommandResult refused =
      RunIdemkeyd({"--listen=0.0.0.0:0", "--data_dir=" + Path("data")});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.output.find("refusing to serve plaintext on non-loopback "
                                "address 0.0.0.0:0"),
            std::string::npos)
      << refused.output;

  IdemkeydProcess insecure(Path("data"), {"--listen=0.0.0.0:0", "--insecure"});
  ASSERT_TRUE(insecure.Start());
  EXPECT_NE(insecure.Log().find("WARN serving PLAINTEXT on 0.0.0.0:0"),
            std::string::npos)
      << insecure.Log();
  ASSERT_TRUE(insecure.Stop());
}

TEST_F(TlsTest, BadTlsFlagsFailClearly) {
  CommandResult half = RunIdemkeyd(
      {"--tls_cert=" + Path("server.crt"), "--data_dir=" + Path("data")});
  EXPECT_EQ(half.exit_code, 1);
  EXPECT_NE(half.output.find("--tls_cert and --tls_key go together"),
            std::string::npos)
      << half.output;
  CommandResult missing = RunIdemkeyd({"--tls_cert=" + Path("nope.crt"),
                                       "--tls_key=" + Path("server.key"),
                                       "--data_dir=" + Path("data")});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("cannot read --tls_cert file"),
            std::string::npos)
      << missing.output;
}

TEST_F(TlsTest, IdemctlTalksTls) {
  IdemkeydProcess server(Path("data"), ServerTlsFlags());
  ASSERT_TRUE(server.Start());
  CommandOutput ok = RunCommand({IDEMCTL_PATH, "--addr", server.address(),
                                 "--cacert", Path("ca.crt"), "health"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  CommandOutput plain = RunCommand(
      {IDEMCTL_PATH, "--addr", server.address(), "--timeout", "2s", "health"});
  EXPECT_EQ(plain.exit_code, 3) << plain.out << plain.err;
  ASSERT_TRUE(server.Stop());
}

}  // namespace
}  // namespace idemkey::testing
