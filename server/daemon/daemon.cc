#include "server/daemon/daemon.h"

#include <signal.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/auth/authorizer.h"
#include "server/auth/token_table.h"
#include "server/daemon/listen_probe.h"
#include "server/daemon/tenant_creation.h"
#include "server/metrics/call_metrics.h"
#include "server/metrics/http_endpoint.h"
#include "server/metrics/process_metrics.h"
#include "server/metrics/store_metrics.h"
#include "server/service/admin_service.h"
#include "server/service/key_service.h"
#include "server/store/postgres/placed_backend.h"
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

// The clusters of --postgres_clusters_file: "NAME DSN" per line, blank
// lines and # comments left out. Messages name the line, never its DSN
// (which may hold a password).
absl::StatusOr<std::vector<store::PlacedCluster>> ReadClusters(
    const std::string& path, const store::PostgresOptions& each) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read --postgres_clusters_file ", path));
  }
  std::vector<store::PlacedCluster> clusters;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    const absl::string_view text = absl::StripAsciiWhitespace(line);
    if (text.empty() || text[0] == '#') continue;
    const size_t space = text.find_first_of(" \t");
    const absl::string_view dsn =
        space == absl::string_view::npos
            ? absl::string_view()
            : absl::StripLeadingAsciiWhitespace(text.substr(space));
    if (dsn.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--postgres_clusters_file ", path, " line ", n,
          ": expected \"NAME DSN\" (a cluster name, a space, its libpq "
          "connection string)"));
    }
    store::PlacedCluster& c = clusters.emplace_back();
    c.name = std::string(text.substr(0, space));
    c.options = each;
    c.options.dsn = std::string(dsn);
  }
  if (clusters.size() < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--postgres_clusters_file ", path, " names ", clusters.size(),
        " cluster(s); it is for two or more (one: --postgres_dsn)"));
  }
  return clusters;
}

absl::StatusOr<std::unique_ptr<store::Backend>> OpenBackend(
    const DaemonOptions& options) {
  if (!options.postgres_clusters_file.empty()) {
    absl::StatusOr<std::vector<store::PlacedCluster>> clusters =
        ReadClusters(options.postgres_clusters_file, options.postgres);
    if (!clusters.ok()) return clusters.status();
    absl::StatusOr<std::unique_ptr<store::PlacedBackend>> placed =
        store::PlacedBackend::Open(*std::move(clusters));
    if (!placed.ok()) return placed.status();
    return std::unique_ptr<store::Backend>(*std::move(placed));
  }
  if (options.backend == "postgres") {
    absl::StatusOr<std::unique_ptr<store::PostgresBackend>> pg =
        store::PostgresBackend::Open(options.postgres);
    if (!pg.ok()) return pg.status();
    return std::unique_ptr<store::Backend>(*std::move(pg));
  }
  absl::StatusOr<std::unique_ptr<store::RocksDbBackend>> rocks =
      store::RocksDbBackend::Open(options.rocksdb);
  if (!rocks.ok()) return rocks.status();
  return std::unique_ptr<store::Backend>(*std::move(rocks));
}

}  // namespace

void BlockTerminationSignals() {
  sigset_t set = TerminationSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int RunDaemon(const DaemonOptions& options) {
  // Debian's Abseil checks every absl::Mutex (gRPC's locks) for lock-order
  // cycles, recording a stack trace per acquisition: about 4% of the CPU of
  // a busy idemkeyd. The deadlocks it would find are gRPC's to test for.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::string warning;
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      ServerCredentialsFor(options.listen, options.tls, &warning);
  if (!credentials.ok()) {
    Log(LogLevel::kError,
        absl::StrCat("cannot start: ", credentials.status().message()));
    return 1;
  }
  if (!warning.empty()) Log(LogLevel::kWarning, warning);
  // Before the data directory is opened, so a taken port is the only line.
  if (absl::Status can_listen = ProbeListenAddress(options.listen);
      !can_listen.ok()) {
    Log(LogLevel::kError, absl::StrCat("cannot start: ", can_listen.message()));
    return 1;
  }
  std::unique_ptr<auth::TokenTable> tokens;
  if (!options.tokens_file.empty()) {
    absl::StatusOr<std::unique_ptr<auth::TokenTable>> loaded =
        auth::TokenTable::Load(options.tokens_file);
    if (!loaded.ok()) {
      Log(LogLevel::kError,
          absl::StrCat("cannot start: ", loaded.status().message()));
      return 1;
    }
    tokens = *std::move(loaded);
  }
  const auth::Authorizer authorizer(tokens.get());
  absl::StatusOr<TenantCreation> creation = ResolveTenantCreation(
      options.auto_create_tenants, tokens != nullptr,
      IsLoopbackHost(options.listen.substr(0, options.listen.rfind(':'))));
  if (!creation.ok()) {
    Log(LogLevel::kError,
        absl::StrCat("cannot start: ", creation.status().message()));
    return 1;
  }
  if (!creation->auto_create && options.auto_create_tenants == "auto") {
    Log(LogLevel::kInfo,
        "tenants are not created by Reserve: idemkeyd listens beyond "
        "loopback without --tokens_file, so any caller could; create them "
        "with `idemctl tenants create NAME` (or --auto_create_tenants=true)");
  }
  store::KeyStoreOptions key_store_options = options.key_store;
  key_store_options.auto_create_tenants = creation->auto_create;
  absl::StatusOr<std::unique_ptr<store::Backend>> backend =
      OpenBackend(options);
  if (!backend.ok()) {
    Log(LogLevel::kError,
        absl::StrCat("cannot start: ", backend.status().message()));
    return 1;
  }
  store::KeyStore key_store(backend->get(), key_store_options);
  util::ThreadPool pool(options.store_threads);
  // Every call of both services is counted and timed by one interceptor;
  // the ops of a Stream are counted by the stream, as their own calls.
  metrics::CallMetrics call_metrics(
      {idemkey::v1::KeyService::service_full_name(),
       idemkey::v1::AdminService::service_full_name()});
  service::KeyServiceImpl key_service(&key_store, &pool, &authorizer,
                                      creation->creators, &call_metrics);
  service::AdminServiceImpl admin_service(&key_store, &pool, &authorizer);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // Without this a second server on the same port starts silently and takes
  // half the connections.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  if (options.max_connection_age > absl::ZeroDuration()) {
    // gRPC adds +-10 % jitter, so a fleet's clients do not all reconnect
    // at once.
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                               static_cast<int>(absl::ToInt64Milliseconds(
                                   options.max_connection_age)));
    builder.AddChannelArgument(
        GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
        static_cast<int>(absl::ToInt64Milliseconds(options.drain_timeout)));
  }
  // Room for a response at the limit plus the request around it, so an
  // oversized response reaches the store's clear error rather than a
  // transport error.
  builder.SetMaxReceiveMessageSize(static_cast<int>(
      options.key_store.limits.max_response_bytes + (1 << 20)));
  int port = 0;
  builder.AddListeningPort(options.listen, *credentials, &port);
  builder.RegisterService(&key_service);
  builder.RegisterService(&admin_service);
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(
      metrics::NewCallMetricsInterceptorFactory(&call_metrics));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  const absl::Time start_time = absl::Now();
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    Log(LogLevel::kError,
        absl::StrCat("cannot listen on ", options.listen,
                     ": the address is in use or invalid (see --listen)"));
    pool.Shutdown();
    (void)(*backend)->Close();
    return 1;
  }
  // Health per service as well as for the whole server (""), so a client
  // can ask about the service it uses; Shutdown turns them all NOT_SERVING.
  for (const char* service : {idemkey::v1::KeyService::service_full_name(),
                              idemkey::v1::AdminService::service_full_name()}) {
    server->GetHealthCheckService()->SetServingStatus(service, true);
  }
  // After the gRPC server, before --port_file says the daemon is up.
  std::unique_ptr<metrics::MetricsEndpoint> metrics_endpoint;
  if (!options.metrics_listen.empty()) {
    store::Backend* store_backend = backend->get();
    absl::StatusOr<std::unique_ptr<metrics::MetricsEndpoint>> started =
        metrics::MetricsEndpoint::Start(
            options.metrics_listen, [&call_metrics, store_backend, start_time] {
              metrics::TextWriter out;
              call_metrics.Write(&out);
              metrics::WriteProcessMetrics(start_time, &out);
              absl::StatusOr<store::BackendStats> stats =
                  store_backend->Stats();
              if (stats.ok()) metrics::WriteStoreMetrics(*stats, &out);
              return out.Take();
            });
    if (started.ok() && !options.metrics_port_file.empty() &&
        !WritePortFile(options.metrics_port_file, (*started)->port())) {
      started = absl::InternalError(absl::StrCat(
          "cannot write --metrics_port_file ", options.metrics_port_file));
    }
    if (!started.ok()) {
      Log(LogLevel::kError, std::string(started.status().message()));
      server->Shutdown();
      pool.Shutdown();
      (void)(*backend)->Close();
      return 1;
    }
    metrics_endpoint = *std::move(started);
    Log(LogLevel::kInfo,
        absl::StrCat(
            "metrics on http://",
            options.metrics_listen.substr(0, options.metrics_listen.rfind(':')),
            ":", metrics_endpoint->port(), "/metrics"));
  }
  // Logged before --port_file appears, so whoever waits for that file
  // finds the line in the log.
  const std::string host = options.listen.substr(0, options.listen.rfind(':'));
  Log(LogLevel::kInfo,
      absl::StrCat(
          "idemkeyd serving on ", host, ":", port, ", ",
          options.backend == "postgres"
              ? absl::StrCat("records in PostgreSQL (pool ",
                             options.postgres.pool_size, ", ")
              : absl::StrCat("data in ", options.rocksdb.path, " (sync ",
                             options.rocksdb.sync ? "on" : "off", ", "),
          options.tls.cert_file.empty()        ? "plaintext"
          : options.tls.client_ca_file.empty() ? "TLS"
                                               : "mutual TLS",
          ", ",
          tokens ? absl::StrCat(tokens->size(), " tokens")
                 : std::string("no auth"),
          ", ", key_store.ListTenants().size(), " tenants)"));
  if (!options.port_file.empty() && !WritePortFile(options.port_file, port)) {
    Log(LogLevel::kError,
        absl::StrCat("cannot write --port_file ", options.port_file));
    metrics_endpoint.reset();
    server->Shutdown();
    pool.Shutdown();
    (void)(*backend)->Close();
    return 1;
  }

  sigset_t signals = TerminationSignals();
  int sig = 0;
  for (;;) {
    sigwait(&signals, &sig);
    if (sig != SIGHUP) break;
    if (tokens == nullptr) {
      Log(LogLevel::kInfo, "SIGHUP: nothing to reload (no --tokens_file)");
    } else if (absl::Status s = tokens->Reload(); !s.ok()) {
      Log(LogLevel::kError, absl::StrCat("SIGHUP: tokens not reloaded, the "
                                         "previous ones stay: ",
                                         s.message()));
    } else {
      Log(LogLevel::kInfo, absl::StrCat("SIGHUP: reloaded ", tokens->size(),
                                        " tokens from ", tokens->path()));
    }
  }
  Log(LogLevel::kInfo,
      absl::StrCat("signal ", sig, ": draining in-flight calls"));

  server->GetHealthCheckService()->Shutdown();  // NOT_SERVING from now on
  // Streams never end by themselves; each ends once its ops are answered.
  key_service.DrainStreams();
  server->Shutdown(std::chrono::system_clock::now() +
                   absl::ToChronoNanoseconds(options.drain_timeout));
  pool.Shutdown();  // runs the store calls already queued
  server->Wait();
  server.reset();
  // Scrapes were answered while draining; the store closes next.
  if (metrics_endpoint != nullptr) metrics_endpoint->Stop();

  if (absl::Status s = (*backend)->Close(); !s.ok()) {
    Log(LogLevel::kError, absl::StrCat("closing the store: ", s.message()));
    return 3;
  }
  Log(LogLevel::kInfo, "stopped cleanly");
  return 0;
}

}  // namespace idemkey
