// idemkeyd — the idemkey key service. `idemkeyd --help` lists every flag.

#include <cstdlib>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/daemon/daemon.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "gRPC address to listen on, host:port (port 0 picks a free port)");
ABSL_FLAG(std::string, backend, "rocksdb",
          "where records are kept: rocksdb (embedded, in --data_dir) or "
          "postgres (a PostgreSQL database, --postgres_dsn; idemkeyd then "
          "keeps no state and several replicas may serve one database)");
ABSL_FLAG(std::string, postgres_dsn, "",
          "with --backend=postgres: libpq connection string or URI; for a "
          "replicated cluster list every host and add "
          "target_session_attrs=read-write (e.g. \"host=db1,db2,db3 "
          "dbname=idemkey user=idemkey target_session_attrs=read-write\"); "
          "a password is better in ~/.pgpass or PGPASSWORD than here");
ABSL_FLAG(std::string, postgres_clusters_file, "",
          "with --backend=postgres, instead of --postgres_dsn: tenants "
          "spread over several PostgreSQL clusters; the file has one line "
          "per cluster, \"NAME DSN\" (# comments), and the first cluster "
          "also keeps where each tenant is (docs/backends.md)");
ABSL_FLAG(int64_t, postgres_pool_size, 16,
          "with --backend=postgres: connections to PostgreSQL at most");
ABSL_FLAG(int64_t, postgres_transactions_in_flight, 1,
          "with --backend=postgres: Updates waiting for PostgreSQL share "
          "transactions (group commit, up to 32 a transaction); at most this "
          "many run at once, 1 to --postgres_pool_size");
ABSL_FLAG(absl::Duration, postgres_statement_timeout, absl::Seconds(5),
          "with --backend=postgres: statement and lock timeout of every "
          "statement but COMMIT (a COMMIT waiting for the synchronous "
          "standby is never cancelled)");
ABSL_FLAG(absl::Duration, postgres_sweep_interval, absl::Minutes(1),
          "with --backend=postgres: how often expired records are deleted "
          "(by one replica at a time); 0: only by `idemctl compact`");
ABSL_FLAG(std::string, data_dir, "./data",
          "RocksDB data directory; created if missing");
ABSL_FLAG(bool, sync, true,
          "fsync the write-ahead log before acknowledging a write; "
          "--sync=false survives a process crash but may lose the last "
          "writes on a machine crash");
ABSL_FLAG(absl::Duration, default_ttl, absl::Hours(24),
          "retention of a completed record when Reserve sets no ttl");
ABSL_FLAG(absl::Duration, min_ttl, absl::Minutes(1), "shortest ttl accepted");
ABSL_FLAG(absl::Duration, max_ttl, absl::Hours(24 * 30),
          "longest ttl accepted");
ABSL_FLAG(absl::Duration, default_lease, absl::Seconds(30),
          "lease of an attempt when Reserve or Heartbeat sets none");
ABSL_FLAG(absl::Duration, max_lease, absl::Hours(1), "longest lease accepted");
ABSL_FLAG(int64_t, max_response_bytes, 4 << 20,
          "largest stored response (status + headers + body, encoded)");
ABSL_FLAG(int64_t, max_key_bytes, 256, "longest Idempotency-Key accepted");
ABSL_FLAG(int64_t, max_tenants, 1000,
          "tenants the server accepts; each is a RocksDB column family and "
          "creating one costs more as their number grows");
ABSL_FLAG(std::string, auto_create_tenants, "auto",
          "whether the first Reserve of an unknown tenant creates it: auto "
          "(with --tokens_file, for a token naming that tenant; without, "
          "only while listening on loopback), true (any caller allowed on "
          "the tenant) or false (admins create tenants)");
ABSL_FLAG(int64_t, store_threads, 32,
          "threads for store calls that must wait for the disk (cold "
          "reads, write stalls, tenant creation, admin calls)");
ABSL_FLAG(int64_t, cache_mb, 512,
          "shared RocksDB block cache in MiB (memtables are charged to it)");
ABSL_FLAG(int64_t, write_buffer_mb, 128,
          "memtables of all tenants together, in MiB");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(10),
          "on SIGTERM/SIGINT, how long in-flight calls may take to finish");
ABSL_FLAG(absl::Duration, max_connection_age, absl::ZeroDuration(),
          "ask a client connection to go after this long (+-10 %), so that "
          "clients of several replicas spread over ones added since; its "
          "calls then get --drain_timeout to finish. 0: never (set it, e.g. "
          "5m, for replicas behind a DNS name)");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM server certificate; with --tls_key, serve TLS");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle; clients must present a certificate it signed "
          "(mutual TLS)");
ABSL_FLAG(std::string, tokens_file, "",
          "bearer tokens (lines of \"SHA256HEX TENANT|admin\"); turns on "
          "tenant auth; reloaded on SIGHUP");
ABSL_FLAG(bool, insecure, false,
          "allow plaintext on a non-loopback --listen address");
ABSL_FLAG(
    std::string, port_file, "",
    "write the bound port to this file once serving (for --listen=...:0)");
ABSL_FLAG(std::string, metrics_listen, "",
          "serve Prometheus metrics at http://HOST:PORT/metrics (e.g. "
          "127.0.0.1:9464; port 0 picks a free port); empty: no endpoint");
ABSL_FLAG(std::string, metrics_port_file, "",
          "write the bound --metrics_listen port to this file once serving");

namespace {

// Exits with status 1 and a one-line reason when flags contradict each other.
void CheckFlag(bool ok, const std::string& message) {
  if (ok) return;
  std::cerr << "idemkeyd: " << message << " (see --help)\n";
  std::exit(1);
}

int64_t Millis(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

}  // namespace

int main(int argc, char** argv) {
  idemkey::BlockTerminationSignals();
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view path) {
    return absl::StrContains(path, "idemkeyd_main");
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  usage.version_string = [] { return std::string("idemkeyd 0.1.0\n"); };
  absl::SetFlagsUsageConfig(usage);
  absl::SetProgramUsageMessage(
      "the idemkey key service: Idempotency-Key records for many tenants over "
      "RocksDB (the default) or PostgreSQL.\nUsage: idemkeyd "
      "[--listen=127.0.0.1:50051] [--data_dir=./data | --backend=postgres "
      "--postgres_dsn=...] [flags]\nStops cleanly on SIGTERM or SIGINT.");
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  CheckFlag(rest.size() == 1, absl::StrCat("unexpected argument \"",
                                           rest.size() > 1 ? rest[1] : "",
                                           "\"; every option is a --flag"));

  idemkey::DaemonOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.port_file = absl::GetFlag(FLAGS_port_file);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.metrics_port_file = absl::GetFlag(FLAGS_metrics_port_file);
  options.tls.cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls.key_file = absl::GetFlag(FLAGS_tls_key);
  options.tls.client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  options.tls.insecure = absl::GetFlag(FLAGS_insecure);
  options.tokens_file = absl::GetFlag(FLAGS_tokens_file);
  options.drain_timeout = absl::GetFlag(FLAGS_drain_timeout);
  options.max_connection_age = absl::GetFlag(FLAGS_max_connection_age);
  // gRPC takes milliseconds as an int.
  CheckFlag(options.max_connection_age == absl::ZeroDuration() ||
                (options.max_connection_age >= absl::Seconds(1) &&
                 options.max_connection_age <= absl::Hours(24 * 24)),
            "--max_connection_age must be 0 (never) or between 1s and 576h");
  CheckFlag(options.drain_timeout >= absl::ZeroDuration() &&
                options.drain_timeout <= absl::Hours(24 * 24),
            "--drain_timeout must be between 0 and 576h");
  options.backend = absl::GetFlag(FLAGS_backend);
  CheckFlag(options.backend == "rocksdb" || options.backend == "postgres",
            absl::StrCat("--backend must be rocksdb or postgres, not \"",
                         options.backend, "\""));
  options.postgres.dsn = absl::GetFlag(FLAGS_postgres_dsn);
  options.postgres_clusters_file = absl::GetFlag(FLAGS_postgres_clusters_file);
  CheckFlag(options.backend != "postgres" ||
                options.postgres.dsn.empty() !=
                    options.postgres_clusters_file.empty(),
            "--backend=postgres needs --postgres_dsn or, for several "
            "clusters, --postgres_clusters_file (one of them)");
  CheckFlag(
      options.backend == "postgres" || (options.postgres.dsn.empty() &&
                                        options.postgres_clusters_file.empty()),
      "--postgres_dsn and --postgres_clusters_file are only for "
      "--backend=postgres");
  const int64_t pool_size = absl::GetFlag(FLAGS_postgres_pool_size);
  CheckFlag(pool_size >= 1 && pool_size <= 1000,
            "--postgres_pool_size must be between 1 and 1000");
  options.postgres.pool_size = static_cast<size_t>(pool_size);
  const int64_t transactions =
      absl::GetFlag(FLAGS_postgres_transactions_in_flight);
  CheckFlag(transactions >= 1 && transactions <= pool_size,
            "--postgres_transactions_in_flight must be between 1 and "
            "--postgres_pool_size");
  options.postgres.transactions_in_flight = static_cast<size_t>(transactions);
  options.postgres.statement_timeout =
      absl::GetFlag(FLAGS_postgres_statement_timeout);
  CheckFlag(options.postgres.statement_timeout >= absl::Milliseconds(100),
            "--postgres_statement_timeout must be at least 100ms");
  options.postgres.sweep_interval =
      absl::GetFlag(FLAGS_postgres_sweep_interval);
  CheckFlag(options.postgres.sweep_interval >= absl::ZeroDuration(),
            "--postgres_sweep_interval must not be negative");
  options.rocksdb.path = absl::GetFlag(FLAGS_data_dir);
  options.rocksdb.sync = absl::GetFlag(FLAGS_sync);
  options.auto_create_tenants = absl::GetFlag(FLAGS_auto_create_tenants);

  idemkey::rules::Limits& limits = options.key_store.limits;
  limits.default_ttl_ms = Millis(absl::GetFlag(FLAGS_default_ttl));
  limits.min_ttl_ms = Millis(absl::GetFlag(FLAGS_min_ttl));
  limits.max_ttl_ms = Millis(absl::GetFlag(FLAGS_max_ttl));
  limits.default_lease_ms = Millis(absl::GetFlag(FLAGS_default_lease));
  limits.max_lease_ms = Millis(absl::GetFlag(FLAGS_max_lease));
  CheckFlag(
      limits.min_ttl_ms > 0 && limits.min_ttl_ms <= limits.default_ttl_ms &&
          limits.default_ttl_ms <= limits.max_ttl_ms,
      "ttl flags must satisfy 0 < --min_ttl <= --default_ttl <= --max_ttl");
  CheckFlag(limits.min_lease_ms <= limits.default_lease_ms &&
                limits.default_lease_ms <= limits.max_lease_ms,
            "lease flags must satisfy 1s <= --default_lease <= --max_lease");

  const int64_t max_response = absl::GetFlag(FLAGS_max_response_bytes);
  CheckFlag(max_response >= 1024 && max_response <= (1LL << 30),
            "--max_response_bytes must be between 1024 and 1073741824");
  limits.max_response_bytes = static_cast<size_t>(max_response);
  const int64_t max_key = absl::GetFlag(FLAGS_max_key_bytes);
  CheckFlag(max_key >= 1 && max_key <= 4096,
            "--max_key_bytes must be between 1 and 4096");
  limits.max_key_bytes = static_cast<size_t>(max_key);

  const int64_t max_tenants = absl::GetFlag(FLAGS_max_tenants);
  const int64_t threads = absl::GetFlag(FLAGS_store_threads);
  const int64_t cache_mb = absl::GetFlag(FLAGS_cache_mb);
  const int64_t write_buffer_mb = absl::GetFlag(FLAGS_write_buffer_mb);
  CheckFlag(max_tenants >= 1, "--max_tenants must be at least 1");
  CheckFlag(threads >= 1 && threads <= 1024,
            "--store_threads must be between 1 and 1024");
  CheckFlag(cache_mb >= 8, "--cache_mb must be at least 8");
  CheckFlag(write_buffer_mb >= 4 && write_buffer_mb < cache_mb,
            "--write_buffer_mb must be at least 4 and below --cache_mb");
  options.rocksdb.max_tenants = static_cast<size_t>(max_tenants);
  options.postgres.max_tenants = static_cast<size_t>(max_tenants);
  options.store_threads = static_cast<size_t>(threads);
  options.rocksdb.block_cache_bytes = static_cast<size_t>(cache_mb) << 20;
  options.rocksdb.write_buffer_bytes = static_cast<size_t>(write_buffer_mb)
                                       << 20;

  return idemkey::RunDaemon(options);
}
