#include "server/daemon.h"

#include <signal.h>

#include <cstdio>
#include <fstream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/service/admin_service.h"
#include "server/service/key_service.h"
#include "server/util/log.h"
#include "server/util/thread_pool.h"

namespace idemkey {
namespace {

using util::Log;
using util::LogLevel;

sigset_t TerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}

// Written to a temporary name and renamed, so a reader never sees half a port.
bool WritePortFile(const std::string& path, int port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << "\n";
    if (!out.good()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

void BlockTerminationSignals() {
  sigset_t set = TerminationSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int RunDaemon(const DaemonOptions& options) {
  std::string warning;
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      ServerCredentialsFor(options.listen, options.tls, &warning);
  if (!credentials.ok()) {
    Log(LogLevel::kError,
        absl::StrCat("cannot start: ", credentials.status().message()));
    return 1;
  }
  if (!warning.empty()) Log(LogLevel::kWarning, warning);
  absl::StatusOr<std::unique_ptr<store::RocksDbBackend>> backend =
      store::RocksDbBackend::Open(options.rocksdb);
  if (!backend.ok()) {
    Log(LogLevel::kError,
        absl::StrCat("cannot start: ", backend.status().message()));
    return 1;
  }
  store::KeyStore key_store(backend->get(), options.key_store);
  util::ThreadPool pool(options.store_threads);
  service::KeyServiceImpl key_service(&key_store, &pool);
  service::AdminServiceImpl admin_service(&key_store, &pool);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // Without this a second server on the same port starts silently and takes
  // half the connections.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Room for a response at the limit plus the request around it, so an
  // oversized response reaches the store's clear error rather than a
  // transport error.
  builder.SetMaxReceiveMessageSize(static_cast<int>(
      options.key_store.limits.max_response_bytes + (1 << 20)));
  int port = 0;
  builder.AddListeningPort(options.listen, *credentials, &port);
  builder.RegisterService(&key_service);
  builder.RegisterService(&admin_service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    Log(LogLevel::kError,
        absl::StrCat("cannot listen on ", options.listen,
                     ": the address is in use or invalid (see --listen)"));
    pool.Shutdown();
    (void)(*backend)->Close();
    return 1;
  }
  if (!options.port_file.empty() && !WritePortFile(options.port_file, port)) {
    Log(LogLevel::kError,
        absl::StrCat("cannot write --port_file ", options.port_file));
    server->Shutdown();
    pool.Shutdown();
    (void)(*backend)->Close();
    return 1;
  }
  const std::string host = options.listen.substr(0, options.listen.rfind(':'));
  Log(LogLevel::kInfo,
      absl::StrCat("idemkeyd serving on ", host, ":", port, ", data in ",
                   options.rocksdb.path, " (sync ",
                   options.rocksdb.sync ? "on" : "off", ", ",
                   options.tls.cert_file.empty()        ? "plaintext"
                   : options.tls.client_ca_file.empty() ? "TLS"
                                                        : "mutual TLS",
                   ", ", key_store.ListTenants().size(), " tenants)"));

  sigset_t signals = TerminationSignals();
  int sig = 0;
  do {
    sigwait(&signals, &sig);
  } while (sig == SIGHUP);  // reserved for reloading configuration
  Log(LogLevel::kInfo,
      absl::StrCat("signal ", sig, ": draining in-flight calls"));

  server->GetHealthCheckService()->Shutdown();  // NOT_SERVING from now on
  server->Shutdown(std::chrono::system_clock::now() +
                   absl::ToChronoNanoseconds(options.drain_timeout));
  pool.Shutdown();  // runs the store calls already queued
  server->Wait();
  server.reset();

  if (absl::Status s = (*backend)->Close(); !s.ok()) {
    Log(LogLevel::kError, absl::StrCat("closing the store: ", s.message()));
    return 3;
  }
  Log(LogLevel::kInfo, "stopped cleanly");
  return 0;
}

}  // namespace idemkey
