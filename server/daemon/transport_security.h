// transport_security.h — the server credentials idemkeyd listens with.
//
// Plaintext is allowed by default only on loopback; anything else needs TLS
// (server certificate and key, optionally a client CA for mutual TLS) or an
// explicit --insecure.
//
//   TlsOptions tls;
//   tls.cert_file = "/etc/idemkey/server.crt";
//   tls.key_file = "/etc/idemkey/server.key";
//   tls.client_ca_file = "/etc/idemkey/clients-ca.crt";  // optional: mTLS
//   std::string warning;
//   absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> creds =
//       ServerCredentialsFor("0.0.0.0:50051", tls, &warning);

#ifndef IDEMKEY_SERVER_DAEMON_TRANSPORT_SECURITY_H_
#define IDEMKEY_SERVER_DAEMON_TRANSPORT_SECURITY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/security/server_credentials.h"

namespace idemkey {

struct TlsOptions {
  std::string cert_file;  // PEM server certificate (chain)
  std::string key_file;   // PEM private key of that certificate
  // PEM CA bundle; when set, clients must present a certificate it signed.
  std::string client_ca_file;
  // Serve plaintext on a non-loopback address anyway.
  bool insecure = false;
};

// Whether `host` (of "host:port") is a loopback address: 127.0.0.0/8,
// localhost or ::1.
bool IsLoopbackHost(absl::string_view host);

// INVALID_ARGUMENT for contradictory options or plaintext on a non-loopback
// address without `insecure`; NOT_FOUND / PERMISSION_DENIED naming the file
// that cannot be read. Sets `*warning` when serving plaintext off loopback.
// Key material is never put in a message.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFor(
    absl::string_view listen_address, const TlsOptions& tls,
    std::string* warning);

}  // namespace idemkey

#endif  // IDEMKEY_SERVER_DAEMON_TRANSPORT_SECURITY_H_
