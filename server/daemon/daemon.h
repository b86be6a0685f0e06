// daemon.h — idemkeyd's life: open the store, serve gRPC, drain on a signal.
//
//   DaemonOptions options;          // main.cc fills it from flags
//   options.rocksdb.path = "./data";  // or: options.backend = "postgres";
//                                     //     options.postgres.dsn = "...";
//   return RunDaemon(options);      // blocks until SIGTERM or SIGINT
//
// Exit codes: 0 after a clean drain, 1 when the store or the listener could
// not be set up (the log line says why), 3 when closing the store failed.

#ifndef IDEMKEY_SERVER_DAEMON_DAEMON_H_
#define IDEMKEY_SERVER_DAEMON_DAEMON_H_

#include <string>

#include "absl/time/time.h"
#include "server/daemon/transport_security.h"
#include "server/store/key_store.h"
#include "server/store/postgres/postgres_backend.h"
#include "server/store/rocksdb/rocksdb_backend.h"

namespace idemkey {

struct DaemonOptions {
  // host:port; port 0 picks a free one (see port_file).
  std::string listen = "127.0.0.1:50051";
  // If set, the bound port is written here once the server accepts calls.
  std::string port_file;
  // TLS, mutual TLS, or plaintext (loopback, or with `insecure`).
  TlsOptions tls;
  // host:port of the Prometheus /metrics endpoint; empty: none. Port 0 picks
  // a free one, written to metrics_port_file if set.
  std::string metrics_listen;
  std::string metrics_port_file;
  // Bearer tokens (auth/token_table.h), reloaded on SIGHUP; empty: auth off.
  std::string tokens_file;
  // Which engine keeps the records: "rocksdb" (embedded, `rocksdb`) or
  // "postgres" (`postgres`; idemkeyd then keeps no state of its own).
  std::string backend = "rocksdb";
  store::RocksDbOptions rocksdb;
  store::PostgresOptions postgres;
  // With "postgres": a file of "NAME DSN" lines, one per cluster, to place
  // tenants over (placed_backend.h) instead of postgres.dsn's one database;
  // every cluster takes postgres's other options.
  std::string postgres_clusters_file;
  // Its auto_create_tenants is set from `auto_create_tenants` below.
  store::KeyStoreOptions key_store;
  // Who may create a tenant by Reserving in it: "auto", "true" or "false"
  // (tenant_creation.h).
  std::string auto_create_tenants = "auto";
  // Threads running store calls (each may wait on a WAL sync).
  size_t store_threads = 32;
  // How long SIGTERM waits for in-flight calls before cancelling them.
  absl::Duration drain_timeout = absl::Seconds(10);
  // Past this age a client connection is asked to go (GOAWAY), so that
  // clients reconnect and spread over replicas added since; calls on it
  // then get drain_timeout to finish. Zero: connections never age.
  absl::Duration max_connection_age = absl::ZeroDuration();
};

// SIGHUP reloads the tokens file. Must be called with SIGTERM, SIGINT and
// SIGHUP blocked in every thread (see
// BlockTerminationSignals); waits for them with sigwait.
int RunDaemon(const DaemonOptions& options);

// Blocks the signals RunDaemon waits for, in this thread and every thread it
// starts afterwards. Call first thing in main.
void BlockTerminationSignals();

}  // namespace idemkey

#endif  // IDEMKEY_SERVER_DAEMON_DAEMON_H_
