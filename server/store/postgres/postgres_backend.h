// postgres_backend.h — a Backend over PostgreSQL, for several stateless
// idemkeyd replicas in front of one (replicated) database.
//
// Layout (schema.h): one table of tenants, one of records keyed by
// (tenant_id, key), one sequence of fencing tokens. The database is the
// only state: any replica answers for any key, and a replica may die or
// restart at any time.
//
// Atomic read-modify-write (Backend guarantee 1), in two round trips:
//   1. BEGIN; pg_advisory_xact_lock(hash(tenant, key)); read the record
//      (and its tenant); nextval() of the token sequence
//   2. the decision's INSERT .. ON CONFLICT DO UPDATE or DELETE; COMMIT
// The advisory lock serializes every Update of one key on every replica,
// also while the record does not exist yet (a row lock could not), so two
// replicas never both see "absent" and both make an OWNER. The token is
// drawn under that lock, so each key's tokens grow whichever replica draws
// them (guarantee 3; a sequence never repeats, and commits of the tokens
// it hands out reach the standby with the record). Updates that need no
// token waste one; tokens are 64-bit.
//
// Group commit: Updates that wait for the database share transactions.
// At most `transactions_in_flight` run at once; when one ends, the next
// takes every Update waiting then (up to 32, one per record) and runs the
// two round trips above for all of them: their locks in one statement, in
// the order of the lock keys (so that no two transactions, on any replica,
// wait for each other in a cycle), their reads in one statement and their
// tokens in another, their upserts in one (arrays through unnest), one
// COMMIT. A single Update on an idle backend
// starts at once; under load, statements and commits per Update fall with
// the group's size. An Update's function runs on the thread that runs the
// transaction (one of the group's callers). The reads lock their tenants'
// rows (FOR KEY SHARE), so a DropTenant waits for the transactions that
// read the tenant, and no write of a group fails on its tenant's foreign
// key (which would fail every Update of the group).
//
// Durability (guarantee 2): every session runs synchronous_commit=on, so
// Update returns only once PostgreSQL has committed (and, with synchronous
// replication, the standby has the commit); WhenDurable has nothing to wait
// for. COMMIT runs with no statement timeout, because a cancelled wait for
// the synchronous standby commits locally without the standby, and a
// WARNING during the COMMIT (which is how PostgreSQL says so) fails the
// call UNAVAILABLE instead of acknowledging it. A connection lost during a
// COMMIT answers UNAVAILABLE too: the write may or may not have happened,
// and the client's retry is safe (the same attempt_id owns again; a
// Complete with its token is OK again).
//
// Every call waits for the network: with CallOptions::may_wait_for_io false
// each returns WouldBlockError() at once, and idemkeyd runs it on a store
// thread. Expired records are absent on read (KeyStore); their rows go in
// the background sweep (`sweep_interval`) or in Compact.
//
// Thread-safe (Backend's contract).
//
//   PostgresOptions options;
//   options.dsn = "host=db1,db2 dbname=idemkey
//   target_session_attrs=read-write";
//   absl::StatusOr<std::unique_ptr<PostgresBackend>> backend =
//       PostgresBackend::Open(options);

#ifndef IDEMKEY_SERVER_STORE_POSTGRES_POSTGRES_BACKEND_H_
#define IDEMKEY_SERVER_STORE_POSTGRES_POSTGRES_BACKEND_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "idemkey/sync/mutex.h"
#include "server/store/backend.h"
#include "server/store/clock.h"
#include "server/store/postgres/connection_pool.h"

namespace idemkey::store {

struct PostgresOptions {
  // libpq connection string or URI. Give every host of a replicated cluster
  // and target_session_attrs=read-write, so connections follow a failover.
  std::string dsn;
  // Connections at most, shared by the store threads.
  size_t pool_size = 16;
  // statement_timeout and lock_timeout of every statement but COMMIT.
  absl::Duration statement_timeout = absl::Seconds(5);
  // CreateTenant refuses past this many tenants.
  size_t max_tenants = 1000;
  // How often one replica (an advisory lock picks it) deletes expired rows;
  // zero: never in the background (Compact still does).
  absl::Duration sweep_interval = absl::Minutes(1);
  // Group-commit transactions running at once (see above), 1 to
  // pool_size. Fewer make bigger groups, each Update then costing
  // PostgreSQL fewer statements and a share of one commit: on 2 vCPUs, 1
  // ran 1.3-2x the pairs/s of 2, 3 or 4 at 8 to 256 in flight
  // (bench/README.md). More may help when each commit waits long (a
  // distant synchronous standby).
  size_t transactions_in_flight = 1;
  // Not owned; must outlive the backend.
  const Clock* clock = SystemClock::Get();
};

class PostgresBackend final : public Backend {
 public:
  // Connects and migrates the schema (schema.h). UNAVAILABLE when
  // PostgreSQL cannot be reached, FAILED_PRECONDITION when its schema is
  // newer than this binary.
  static absl::StatusOr<std::unique_ptr<PostgresBackend>> Open(
      const PostgresOptions& options);

  // Stops the sweeper; the connections close.
  ~PostgresBackend() override;

  // How tokens are made from the sequence (idemkey_schema).
  struct TokenLayout {
    uint64_t stride = 1;
    uint64_t offset = 0;
    uint64_t base = 0;
  };
  TokenLayout token_layout() const { return token_layout_; }
  // Every token this database handed out is below it.
  absl::StatusOr<uint64_t> TokenCeiling();
  // For placed_backend.h, at start: a database that never joined a
  // placement takes `layout`; one that did keeps its own. Returns the
  // layout now in force.
  absl::StatusOr<TokenLayout> JoinPlacement(const TokenLayout& layout);

  absl::Status Update(absl::string_view tenant, absl::string_view key,
                      const CallOptions& options, UpdateFn fn) override;
  absl::StatusOr<std::optional<Record>> Get(
      absl::string_view tenant, absl::string_view key,
      const CallOptions& options) override;
  absl::Status Scan(absl::string_view tenant, absl::string_view prefix,
                    absl::string_view start, ScanFn fn) override;
  absl::StatusOr<uint64_t> NextFencingToken(
      const CallOptions& options) override;
  absl::StatusOr<TenantInfo> CreateTenant(absl::string_view name,
                                          const CallOptions& options) override;
  absl::Status DropTenant(absl::string_view name,
                          const CallOptions& options) override;
  std::vector<TenantInfo> ListTenants() override;
  absl::StatusOr<BackendStats> Stats() override;
  // Deletes the expired rows now, in batches (other calls go on).
  absl::StatusOr<CompactionResult> Compact(absl::string_view tenant) override;
  // FAILED_PRECONDITION: back up PostgreSQL with its own tools.
  absl::StatusOr<uint64_t> Checkpoint(const std::string& dir) override;

  // Updates waiting for a group transaction to take them.
  size_t UpdatesWaitingForTesting();

 private:
  explicit PostgresBackend(const PostgresOptions& options);
  // The token for the sequence's value `drawn`: (drawn + base) * stride +
  // offset, as the database's idemkey_schema says (1, 0, 0 until it joins
  // a placement).
  uint64_t TokenOf(int64_t drawn) const;
  // Reads the token layout into token_layout_.
  absl::Status ReadTokenLayout(postgres::Connection& c);
  // Runs `work` on a borrowed connection; when the connection turns out
  // lost before anything was sent that could have changed the database
  // (`work` returns a status with *retryable set), runs it once more on a
  // new connection.
  template <typename Work>
  auto WithConnection(Work work)
      -> decltype(work(std::declval<postgres::Connection&>(),
                       std::declval<bool*>()));
  // Deletes expired rows of `tenant_id` (every tenant when nullopt) on `c`;
  // returns how many.
  absl::StatusOr<uint64_t> DeleteExpired(postgres::Connection& c,
                                         std::optional<int64_t> tenant_id);
  void SweepLoop();

  // An Update waiting for a group transaction, taken into one, or done.
  struct PendingUpdate;
  // Moves the first waiting Updates, one per record, into a new group.
  std::vector<PendingUpdate*> TakeGroup()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(group_mu_);
  // Runs `group` in one transaction and sets each Update's status.
  void RunGroup(std::vector<PendingUpdate*>& group);
  // RunGroup on `c`: per-Update outcomes go into their statuses; an error
  // returned is the whole transaction's.
  absl::Status RunGroupOn(postgres::Connection& c, bool* retryable,
                          std::vector<PendingUpdate*>& group);

  const PostgresOptions options_;
  // Set at Open (and by JoinPlacement, before any call): read without a lock.
  TokenLayout token_layout_;
  postgres::ConnectionPool pool_;

  sync::Mutex sweeper_mu_;
  sync::CondVar sweeper_wake_;
  bool stopping_ ABSL_GUARDED_BY(sweeper_mu_) = false;
  std::thread sweeper_;

  sync::Mutex group_mu_;
  std::deque<PendingUpdate*> waiting_ ABSL_GUARDED_BY(group_mu_);
  size_t groups_running_ ABSL_GUARDED_BY(group_mu_) = 0;
};

}  // namespace idemkey::store

#endif  // IDEMKEY_SERVER_STORE_POSTGRES_POSTGRES_BACKEND_H_
