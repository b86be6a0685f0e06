#include "server/store/postgres/postgres_backend.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/store/postgres/schema.h"
#include "server/util/log.h"

namespace idemkey::store {
namespace {

using postgres::Connection;
using postgres::Pipeline;
using postgres::Result;
using postgres::Statement;

// The record's columns, in the order RecordFromRow reads them from
// `first` on.
constexpr char kRecordColumns[] =
    "r.key, r.state, r.fingerprint, r.fencing_token, r.attempt_id, "
    "r.lease_expires_ms, r.created_ms, r.expires_ms, r.ttl_ms, "
    "r.completed_ms, r.response";

// The tenant's id and the record of (tenant $1, key $2) from column 1 on:
// one row when the tenant exists (the record's columns NULL when it has no
// such record), none when it does not.
std::string ReadRecordSql() {
  return absl::StrCat("SELECT t.id, ", kRecordColumns,
                      " FROM idemkey_tenants t LEFT JOIN idemkey_records r"
                      " ON r.tenant_id = t.id AND r.key = $2"
                      " WHERE t.name = $1");
}

absl::StatusOr<Record> RecordFromRow(const Result& rows, int row, int first) {
  Record r;
  int c = first;
  r.key = std::string(rows.Bytes(row, c++));
  r.state = static_cast<RecordState>(rows.Int16(row, c++));
  r.fingerprint = std::string(rows.Bytes(row, c++));
  r.fencing_token = static_cast<uint64_t>(rows.Int64(row, c++));
  r.attempt_id = std::string(rows.Bytes(row, c++));
  r.lease_expires_ms = rows.Int64(row, c++);
  r.created_ms = rows.Int64(row, c++);
  r.expires_ms = rows.Int64(row, c++);
  r.ttl_ms = rows.Int64(row, c++);
  r.completed_ms = rows.Int64(row, c++);
  if (!rows.IsNull(row, c)) {
    const absl::string_view bytes = rows.Bytes(row, c);
    if (!r.response.ParseFromArray(bytes.data(),
                                   static_cast<int>(bytes.size()))) {
      return absl::DataLossError(absl::StrCat("the stored response of key \"",
                                              r.key, "\" does not parse"));
    }
  }
  return r;
}

// Records to write in one statement: the columns of idemkey_records, one
// array each (unnest() turns them back into rows).
class RecordWrites {
 public:
  void Add(int64_t tenant_id, absl::string_view key, const Record& r) {
    tenant_ids_.push_back(tenant_id);
    keys_.push_back(key);
    states_.push_back(static_cast<int64_t>(r.state));
    fingerprints_.push_back(r.fingerprint);
    fencing_tokens_.push_back(static_cast<int64_t>(r.fencing_token));
    attempt_ids_.push_back(r.attempt_id);
    lease_expires_ms_.push_back(r.lease_expires_ms);
    created_ms_.push_back(r.created_ms);
    expires_ms_.push_back(r.expires_ms);
    ttl_ms_.push_back(r.ttl_ms);
    completed_ms_.push_back(r.completed_ms);
    if (r.state == RecordState::kCompleted) {
      serialized_.push_back(
          std::make_unique<std::string>(r.response.SerializeAsString()));
      responses_.push_back(*serialized_.back());
    } else {
      responses_.push_back(std::nullopt);
    }
  }
  bool empty() const { return keys_.empty(); }

  // One upsert of every record added.
  void AddUpsertTo(Pipeline& p) const {
    p.Add(
         "INSERT INTO idemkey_records (tenant_id, key, state, fingerprint, "
         "fencing_token, attempt_id, lease_expires_ms, created_ms, "
         "expires_ms, ttl_ms, completed_ms, response) "
         "SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bigint[], "
         "$4::bytea[], $5::bigint[], $6::bytea[], $7::bigint[], $8::bigint[], "
         "$9::bigint[], $10::bigint[], $11::bigint[], $12::bytea[]) "
         "ON CONFLICT (tenant_id, key) DO UPDATE SET state = EXCLUDED.state, "
         "fingerprint = EXCLUDED.fingerprint, "
         "fencing_token = EXCLUDED.fencing_token, "
         "attempt_id = EXCLUDED.attempt_id, "
         "lease_expires_ms = EXCLUDED.lease_expires_ms, "
         "created_ms = EXCLUDED.created_ms, expires_ms = EXCLUDED.expires_ms, "
         "ttl_ms = EXCLUDED.ttl_ms, completed_ms = EXCLUDED.completed_ms, "
         "response = EXCLUDED.response")
        .Int64Array(tenant_ids_)
        .BytesArray(keys_)
        .Int64Array(states_)
        .BytesArray(fingerprints_)
        .Int64Array(fencing_tokens_)
        .BytesArray(attempt_ids_)
        .Int64Array(lease_expires_ms_)
        .Int64Array(created_ms_)
        .Int64Array(expires_ms_)
        .Int64Array(ttl_ms_)
        .Int64Array(completed_ms_)
        .BytesArray(responses_);
  }

 private:
  using Bytes = std::optional<absl::string_view>;
  std::vector<int64_t> tenant_ids_;
  std::vector<Bytes> keys_;
  std::vector<int64_t> states_;
  std::vector<Bytes> fingerprints_;
  std::vector<int64_t> fencing_tokens_;
  std::vector<Bytes> attempt_ids_;
  std::vector<int64_t> lease_expires_ms_;
  std::vector<int64_t> created_ms_;
  std::vector<int64_t> expires_ms_;
  std::vector<int64_t> ttl_ms_;
  std::vector<int64_t> completed_ms_;
  // Stable while responses_ points into them.
  std::vector<std::unique_ptr<std::string>> serialized_;
  std::vector<Bytes> responses_;
};

// The smallest string greater than every string starting with `prefix`;
// empty when there is none (the prefix is all 0xff, or empty).
std::string PrefixEnd(absl::string_view prefix) {
  std::string end(prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) {
    end.pop_back();
  }
  if (!end.empty()) end.back() = static_cast<char>(end.back() + 1);
  return end;
}

// The token Update drew under the key's lock, for KeyStore's
// NextFencingToken call from inside the UpdateFn on the same thread.
thread_local std::optional<uint64_t>* drawn_token = nullptr;

constexpr int64_t kSweepLock = 0x6964656d6b657932;  // "idemkey2"
constexpr int kSweepBatch = 5000;

// Updates in one group transaction at most (PostgresBackend::TakeGroup).
constexpr size_t kMaxGroupSize = 32;

// $1 tokens, one a row, in the order drawn.
constexpr char kDrawTokens[] =
    "SELECT nextval('idemkey_fencing_tokens') FROM generate_series(1, $1)";
// Stats counts each tenant's rows below this many rows in all.
constexpr int64_t kCountedStatsRows = 1000000;

}  // namespace

PostgresBackend::PostgresBackend(const PostgresOptions& options)
    : options_(options),
      pool_(options.dsn, {.size = options.pool_size,
                          .statement_timeout = options.statement_timeout}) {}

absl::StatusOr<std::unique_ptr<PostgresBackend>> PostgresBackend::Open(
    const PostgresOptions& options) {
  {
    absl::StatusOr<std::unique_ptr<Connection>> c =
        Connection::Open(options.dsn, options.statement_timeout);
    if (!c.ok()) return c.status();
    if (absl::Status s = postgres::Migrate(**c); !s.ok()) return s;
  }
  std::unique_ptr<PostgresBackend> backend(new PostgresBackend(options));
  if (absl::Status s = backend->WithConnection([&](Connection& c, bool* r) {
        *r = true;
        return backend->ReadTokenLayout(c);
      });
      !s.ok()) {
    return s;
  }
  if (options.sweep_interval > absl::ZeroDuration()) {
    backend->sweeper_ = std::thread([b = backend.get()] { b->SweepLoop(); });
  }
  return backend;
}

PostgresBackend::~PostgresBackend() {
  {
    sync::MutexLock lock(&sweeper_mu_);
    stopping_ = true;
    sweeper_wake_.SignalAll();
  }
  if (sweeper_.joinable()) sweeper_.join();
}

template <typename Work>
auto PostgresBackend::WithConnection(Work work)
    -> decltype(work(std::declval<postgres::Connection&>(),
                     std::declval<bool*>())) {
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<postgres::ConnectionPool::Lease> c = pool_.Borrow();
    if (!c.ok()) return c.status();
    bool retryable = false;
    auto result = work(**c, &retryable);
    if (result.ok() || !(*c)->broken()) return result;
    pool_.DropIdle();
    if (!retryable || attempt > 0) return result;
  }
}

struct PostgresBackend::PendingUpdate {
  PendingUpdate(absl::string_view tenant, absl::string_view key, UpdateFn fn)
      : tenant(tenant), key(key), fn(fn) {}

  absl::string_view tenant;
  absl::string_view key;
  UpdateFn fn;
  absl::Status status;  // set when kDone
  enum class State { kWaiting, kTaken, kDone } state = State::kWaiting;
  // Signalled (under group_mu_) when it is done, or when a transaction
  // slot is free for it to lead. Each waiter has its own, so that the end
  // of a group wakes its Updates and the next leader, not every waiter
  // (waking all of them at each commit was 5 % of idemkeyd's profile at 64
  // in flight, in pthread_cond_broadcast alone).
  sync::CondVar wake;
};

absl::Status PostgresBackend::Update(absl::string_view tenant,
                                     absl::string_view key,
                                     const CallOptions& options, UpdateFn fn) {
  if (!options.may_wait_for_io) return WouldBlockError();
  using State = PendingUpdate::State;
  PendingUpdate me(tenant, key, fn);
  const size_t max_groups =
      std::clamp<size_t>(options_.transactions_in_flight, 1,
                         std::max<size_t>(options_.pool_size, 1));
  group_mu_.Lock();
  waiting_.push_back(&me);
  while (me.state != State::kDone) {
    if (me.state == State::kWaiting && groups_running_ < max_groups) {
      // Run a transaction for what waits now (this Update among it unless
      // 32 others were ahead; then it leads the next).
      std::vector<PendingUpdate*> group = TakeGroup();
      ++groups_running_;
      group_mu_.Unlock();
      RunGroup(group);
      group_mu_.Lock();
      --groups_running_;
      for (PendingUpdate* u : group) {
        u->state = State::kDone;
        u->wake.Signal();
      }
      // The first waiting Updates lead the next groups, one per free slot
      // (a slot freed again before its leader woke signals it again; the
      // leader's loop checks).
      const size_t free_slots = max_groups - groups_running_;
      for (size_t i = 0; i < std::min(free_slots, waiting_.size()); ++i) {
        waiting_[i]->wake.Signal();
      }
    } else {
      me.wake.Wait(&group_mu_);
    }
  }
  group_mu_.Unlock();
  return me.status;
}

size_t PostgresBackend::UpdatesWaitingForTesting() {
  sync::MutexLock lock(&group_mu_);
  return waiting_.size();
}

std::vector<PostgresBackend::PendingUpdate*> PostgresBackend::TakeGroup() {
  std::vector<PendingUpdate*> group;
  absl::flat_hash_set<std::pair<absl::string_view, absl::string_view>> records;
  for (auto it = waiting_.begin();
       it != waiting_.end() && group.size() < kMaxGroupSize;) {
    PendingUpdate* u = *it;
    // A second Update of a record waits for the next group: it must see
    // the first one's write.
    if (!records.emplace(u->tenant, u->key).second) {
      ++it;
      continue;
    }
    u->state = PendingUpdate::State::kTaken;
    group.push_back(u);
    it = waiting_.erase(it);
  }
  return group;
}

void PostgresBackend::RunGroup(std::vector<PendingUpdate*>& group) {
  absl::Status s = WithConnection([&](Connection& c, bool* retryable) {
    return RunGroupOn(c, retryable, group);
  });
  if (s.ok()) return;
  // Decisions that failed on their own keep their errors; every other
  // Update of the group shares the transaction's fate.
  for (PendingUpdate* u : group) {
    if (u->status.ok()) u->status = s;
  }
}

absl::Status PostgresBackend::RunGroupOn(Connection& c, bool* retryable,
                                         std::vector<PendingUpdate*>& group) {
  const int n = static_cast<int>(group.size());
  std::vector<int64_t> lock_keys;
  std::vector<absl::string_view> tenants;
  std::vector<std::optional<absl::string_view>> keys;
  for (const PendingUpdate* u : group) {
    lock_keys.push_back(postgres::AdvisoryLockKey(u->tenant, u->key));
    tenants.push_back(u->tenant);
    keys.push_back(u->key);
  }
  std::sort(lock_keys.begin(), lock_keys.end());
  Pipeline read;
  read.Add("BEGIN");
  // unnest yields the keys in the array's order, and each lock is taken as
  // its row is: the locks are taken in ascending order.
  read.Add("SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k")
      .Int64Array(lock_keys);
  // Every Update's tenant and record in one statement (per statement,
  // PostgreSQL's own overhead costs more than reading a row by its key):
  // the row of Update i (from 1) has i in column 0; none when its tenant
  // does not exist. FOR KEY SHARE: a DropTenant waits for this
  // transaction, so a write never finds its tenant gone (the foreign key
  // would fail the whole group's transaction, every Update in it). The
  // LATERAL subqueries (which LIMIT keeps from being merged into the join)
  // hold the plan to one primary-key lookup per Update: as a plain join,
  // the plan cached while the table was small looked records up by
  // tenant_id alone and filtered on the key: 2.8 ms for 2 Updates at 3,100
  // records.
  read.Add(absl::StrCat(
               "SELECT q.i, t.id, ", kRecordColumns,
               " FROM unnest($1::text[], $2::bytea[]) WITH ORDINALITY"
               " AS q(tenant, key, i)"
               " CROSS JOIN LATERAL (SELECT id FROM idemkey_tenants"
               " WHERE name = q.tenant FOR KEY SHARE) t"
               " LEFT JOIN LATERAL (SELECT * FROM idemkey_records"
               " WHERE tenant_id = t.id AND key = q.key LIMIT 1) r ON true"))
      .TextArray(tenants)
      .BytesArray(keys);
  read.Add(kDrawTokens).Int64(n);
  absl::StatusOr<std::vector<Result>> got = c.Run(read);
  if (!got.ok()) {
    *retryable = true;  // nothing was written
    return got.status();
  }
  const Result& rows = (*got)[2];
  const Result& tokens = (*got)[3];
  std::vector<int> row_of(n, -1);
  for (int row = 0; row < rows.rows(); ++row) {
    row_of[rows.Int64(row, 0) - 1] = row;
  }

  // The records written point into these until the COMMIT.
  std::vector<std::optional<Record>> records(n);
  RecordWrites puts;
  Pipeline write;
  for (int i = 0; i < n; ++i) {
    PendingUpdate& u = *group[i];
    const int row = row_of[i];
    if (row < 0) {
      u.status = UnknownTenantError(u.tenant);
      continue;
    }
    const int64_t tenant_id = rows.Int64(row, 1);
    std::optional<Record>& record = records[i];
    if (!rows.IsNull(row, 2)) {
      absl::StatusOr<Record> r = RecordFromRow(rows, row, 2);
      if (!r.ok()) {
        u.status = r.status();
        continue;
      }
      record = *std::move(r);
    }
    std::optional<uint64_t> token = TokenOf(tokens.Int64(i, 0));
    drawn_token = &token;
    absl::StatusOr<WriteAction> action = u.fn(record);
    drawn_token = nullptr;
    if (!action.ok()) {
      u.status = action.status();
    } else if (*action == WriteAction::kPut) {
      puts.Add(tenant_id, u.key, *record);
    } else if (*action == WriteAction::kDelete) {
      // One statement each: a Release is rare next to Reserve and Complete.
      write.Add("DELETE FROM idemkey_records WHERE tenant_id = $1 AND key = $2")
          .Int64(tenant_id)
          .Bytes(u.key);
    }
  }
  if (!puts.empty()) puts.AddUpsertTo(write);
  // A cancelled wait for the synchronous standby would commit without
  // it: COMMIT must never time out.
  write.Add("SET LOCAL statement_timeout = 0");
  write.Add("COMMIT");
  absl::StatusOr<std::vector<Result>> done = c.Run(write);
  if (!done.ok()) {
    if (absl::IsUnavailable(done.status()) && c.broken()) {
      return absl::UnavailableError(absl::StrCat(
          "the write may or may not have been applied (retry it: a "
          "retried Reserve or Complete is safe): ",
          done.status().message()));
    }
    return done.status();
  }
  if (c.warned()) {
    return absl::UnavailableError(
        "PostgreSQL warned during COMMIT (a cancelled wait for the "
        "synchronous standby?): the write may not be replicated; retry it");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<Record>> PostgresBackend::Get(
    absl::string_view tenant, absl::string_view key,
    const CallOptions& options) {
  if (!options.may_wait_for_io) return WouldBlockError();
  return WithConnection(
      [&](Connection& c,
          bool* retryable) -> absl::StatusOr<std::optional<Record>> {
        *retryable = true;  // a read
        Pipeline p;
        p.Add(ReadRecordSql()).Text(tenant).Bytes(key);
        absl::StatusOr<std::vector<Result>> got = c.Run(p);
        if (!got.ok()) return got.status();
        const Result& rows = (*got)[0];
        if (rows.rows() == 0) return UnknownTenantError(tenant);
        if (rows.IsNull(0, 1)) return std::optional<Record>();
        absl::StatusOr<Record> r = RecordFromRow(rows, 0, 1);
        if (!r.ok()) return r.status();
        return std::optional<Record>(*std::move(r));
      });
}

absl::Status PostgresBackend::Scan(absl::string_view tenant,
                                   absl::string_view prefix,
                                   absl::string_view start, ScanFn fn) {
  return WithConnection([&](Connection& c, bool* retryable) -> absl::Status {
    *retryable = true;
    Pipeline find;
    find.Add("SELECT id FROM idemkey_tenants WHERE name = $1").Text(tenant);
    absl::StatusOr<std::vector<Result>> found = c.Run(find);
    if (!found.ok()) return found.status();
    if ((*found)[0].rows() == 0) return UnknownTenantError(tenant);
    *retryable = false;  // `fn` has seen records: do not show them twice
    const int64_t tenant_id = (*found)[0].Int64(0, 0);
    const std::string end = PrefixEnd(prefix);
    std::string from(std::max(prefix, start));
    bool first_page = true;
    for (;;) {
      Pipeline page;
      Statement& s = page.Add(absl::StrCat(
          "SELECT ", kRecordColumns,
          " FROM idemkey_records r WHERE r.tenant_id = $1 AND r.key ",
          first_page ? ">=" : ">", " $2", end.empty() ? "" : " AND r.key < $3",
          " ORDER BY r.key LIMIT 500"));
      s.Int64(tenant_id).Bytes(from);
      if (!end.empty()) s.Bytes(end);
      absl::StatusOr<std::vector<Result>> got = c.Run(page);
      if (!got.ok()) return got.status();
      const Result& rows = (*got)[0];
      for (int i = 0; i < rows.rows(); ++i) {
        absl::StatusOr<Record> r = RecordFromRow(rows, i, 0);
        if (!r.ok()) return r.status();
        from = r->key;
        if (!fn(*std::move(r))) return absl::OkStatus();
      }
      if (rows.rows() < 500) return absl::OkStatus();
      first_page = false;
    }
  });
}

absl::StatusOr<uint64_t> PostgresBackend::NextFencingToken(
    const CallOptions& options) {
  if (drawn_token != nullptr && drawn_token->has_value()) {
    const uint64_t token = **drawn_token;
    drawn_token->reset();
    return token;
  }
  if (!options.may_wait_for_io) return WouldBlockError();
  return WithConnection(
      [&](Connection& c, bool* retryable) -> absl::StatusOr<uint64_t> {
        *retryable = true;  // an unused token is no harm
        Pipeline p;
        p.Add("SELECT nextval('idemkey_fencing_tokens')");
        absl::StatusOr<std::vector<Result>> got = c.Run(p);
        if (!got.ok()) return got.status();
        return TokenOf((*got)[0].Int64(0, 0));
      });
}

uint64_t PostgresBackend::TokenOf(int64_t drawn) const {
  return (static_cast<uint64_t>(drawn) + token_layout_.base) *
             token_layout_.stride +
         token_layout_.offset;
}

absl::Status PostgresBackend::ReadTokenLayout(Connection& c) {
  Pipeline p;
  p.Add("SELECT token_stride, token_offset, token_base FROM idemkey_schema");
  absl::StatusOr<std::vector<Result>> got = c.Run(p);
  if (!got.ok()) return got.status();
  token_layout_ = {.stride = static_cast<uint64_t>((*got)[0].Int64(0, 0)),
                   .offset = static_cast<uint64_t>((*got)[0].Int64(0, 1)),
                   .base = static_cast<uint64_t>((*got)[0].Int64(0, 2))};
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> PostgresBackend::TokenCeiling() {
  return WithConnection(
      [&](Connection& c, bool* retryable) -> absl::StatusOr<uint64_t> {
        *retryable = true;
        Pipeline p;
        p.Add("SELECT last_value FROM idemkey_fencing_tokens");
        absl::StatusOr<std::vector<Result>> got = c.Run(p);
        if (!got.ok()) return got.status();
        return TokenOf((*got)[0].Int64(0, 0)) + 1;
      });
}

absl::StatusOr<PostgresBackend::TokenLayout> PostgresBackend::JoinPlacement(
    const TokenLayout& layout) {
  absl::Status s = WithConnection([&](Connection& c, bool* retryable) {
    *retryable = true;  // one statement: all or nothing
    Pipeline p;
    // The first replica to start with the placement sets it; the others
    // (and every later start) read what it set.
    p.Add(
         "UPDATE idemkey_schema SET token_stride = $1, token_offset = $2, "
         "token_base = $3 WHERE token_stride = 1")
        .Int64(static_cast<int64_t>(layout.stride))
        .Int64(static_cast<int64_t>(layout.offset))
        .Int64(static_cast<int64_t>(layout.base));
    absl::StatusOr<std::vector<Result>> done = c.Run(p);
    if (!done.ok()) return done.status();
    return ReadTokenLayout(c);
  });
  if (!s.ok()) return s;
  return token_layout_;
}

absl::StatusOr<TenantInfo> PostgresBackend::CreateTenant(
    absl::string_view name, const CallOptions& options) {
  if (!options.may_wait_for_io) return WouldBlockError();
  const int64_t now_ms = options_.clock->NowMillis();
  return WithConnection(
      [&](Connection& c, bool* retryable) -> absl::StatusOr<TenantInfo> {
        *retryable = true;  // one transaction: all or nothing
        Pipeline p;
        p.Add("BEGIN");
        // Replicas creating tenants at once count one after the other.
        p.Add("LOCK TABLE idemkey_tenants IN SHARE ROW EXCLUSIVE MODE");
        p.Add(
             "INSERT INTO idemkey_tenants (name, created_ms) "
             "SELECT $1, $2 WHERE (SELECT count(*) FROM idemkey_tenants) < $3 "
             "ON CONFLICT (name) DO NOTHING")
            .Text(name)
            .Int64(now_ms)
            .Int64(static_cast<int64_t>(options_.max_tenants));
        p.Add("SELECT 1 FROM idemkey_tenants WHERE name = $1").Text(name);
        p.Add("COMMIT");
        absl::StatusOr<std::vector<Result>> got = c.Run(p);
        if (!got.ok()) return got.status();
        if ((*got)[2].affected() == 1) {
          return TenantInfo{.name = std::string(name), .created_ms = now_ms};
        }
        if ((*got)[3].rows() == 1) {
          return absl::AlreadyExistsError(
              absl::StrCat("tenant \"", name, "\" already exists"));
        }
        return TenantCapError(name, options_.max_tenants);
      });
}

absl::Status PostgresBackend::DropTenant(absl::string_view name,
                                         const CallOptions& options) {
  if (!options.may_wait_for_io) return WouldBlockError();
  return WithConnection([&](Connection& c, bool* retryable) -> absl::Status {
    *retryable = true;
    Pipeline p;
    // Its records go with it (ON DELETE CASCADE), in this one transaction:
    // other tenants' rows are not touched, so their calls go on.
    p.Add("BEGIN");
    p.Add("SET LOCAL statement_timeout = 0");  // however many rows it has
    p.Add("DELETE FROM idemkey_tenants WHERE name = $1").Text(name);
    p.Add("COMMIT");
    absl::StatusOr<std::vector<Result>> got = c.Run(p);
    if (!got.ok()) return got.status();
    if ((*got)[2].affected() == 0) return UnknownTenantError(name);
    return absl::OkStatus();
  });
}

std::vector<TenantInfo> PostgresBackend::ListTenants() {
  absl::StatusOr<std::vector<TenantInfo>> tenants = WithConnection(
      [&](Connection& c,
          bool* retryable) -> absl::StatusOr<std::vector<TenantInfo>> {
        *retryable = true;
        Pipeline p;
        p.Add("SELECT name, created_ms FROM idemkey_tenants ORDER BY name");
        absl::StatusOr<std::vector<Result>> got = c.Run(p);
        if (!got.ok()) return got.status();
        std::vector<TenantInfo> out;
        const Result& rows = (*got)[0];
        for (int i = 0; i < rows.rows(); ++i) {
          out.push_back({.name = std::string(rows.Bytes(i, 0)),
                         .created_ms = rows.Int64(i, 1)});
        }
        return out;
      });
  if (!tenants.ok()) {
    util::Log(util::LogLevel::kWarning,
              absl::StrCat("listing tenants: ", tenants.status().message()));
    return {};
  }
  return *std::move(tenants);
}

absl::StatusOr<BackendStats> PostgresBackend::Stats() {
  return WithConnection([&](Connection& c,
                            bool* retryable) -> absl::StatusOr<BackendStats> {
    *retryable = true;
    Pipeline p;
    // Counted while the table is small; past that, a count on every
    // metrics scrape would cost more than the traffic it reports, and
    // the planner's estimate for the table is shared out evenly.
    p.Add(
        "SELECT greatest(reltuples, 0)::bigint, "
        "pg_total_relation_size('idemkey_records') FROM pg_class "
        "WHERE oid = 'idemkey_records'::regclass");
    p.Add(
         "SELECT t.name, CASE WHEN (SELECT reltuples FROM pg_class WHERE "
         "oid = 'idemkey_records'::regclass) < $1 THEN (SELECT count(*) "
         "FROM idemkey_records r WHERE r.tenant_id = t.id) END "
         "FROM idemkey_tenants t ORDER BY t.name")
        .Int64(kCountedStatsRows);
    absl::StatusOr<std::vector<Result>> got = c.Run(p);
    if (!got.ok()) return got.status();
    BackendStats stats;
    stats.max_tenants = options_.max_tenants;
    const uint64_t table_rows = static_cast<uint64_t>((*got)[0].Int64(0, 0));
    const uint64_t table_bytes = static_cast<uint64_t>((*got)[0].Int64(0, 1));
    const Result& rows = (*got)[1];
    const auto n = static_cast<uint64_t>(std::max(rows.rows(), 1));
    for (int i = 0; i < rows.rows(); ++i) {
      stats.tenants.push_back(
          {.name = std::string(rows.Bytes(i, 0)),
           .estimated_records = rows.IsNull(i, 1)
                                    ? table_rows / n
                                    : static_cast<uint64_t>(rows.Int64(i, 1)),
           .disk_bytes = table_bytes / n});
    }
    return stats;
  });
}

absl::StatusOr<uint64_t> PostgresBackend::DeleteExpired(
    Connection& c, std::optional<int64_t> tenant_id) {
  const int64_t now_ms = options_.clock->NowMillis();
  uint64_t deleted = 0;
  for (;;) {
    Pipeline p;
    // Each batch its own transaction, so no lock is held for long. An
    // Update that read such a row took it for absent and upserts: deleting
    // it under the Update changes nothing it decided. ORDER BY keeps the
    // expiry index in the plan: without it, the generic plan a prepared
    // statement switches to after five runs guesses a third of the rows
    // match and scans the whole table, even when nothing has expired
    // (bench/postgres/README.md: 2.0 s against 7.5 ms at 10 M records).
    Statement& s = p.Add(absl::StrCat(
        "DELETE FROM idemkey_records WHERE ctid IN (SELECT ctid FROM "
        "idemkey_records WHERE expires_ms <= $1",
        tenant_id ? " AND tenant_id = $2" : "", " ORDER BY expires_ms LIMIT ",
        kSweepBatch, ")"));
    s.Int64(now_ms);
    if (tenant_id) s.Int64(*tenant_id);
    absl::StatusOr<std::vector<Result>> got = c.Run(p);
    if (!got.ok()) return got.status();
    const int64_t batch = (*got)[0].affected();
    deleted += static_cast<uint64_t>(batch);
    if (batch < kSweepBatch) return deleted;
  }
}

absl::StatusOr<CompactionResult> PostgresBackend::Compact(
    absl::string_view tenant) {
  std::optional<int64_t> tenant_id;
  if (!tenant.empty()) {
    absl::StatusOr<int64_t> id = WithConnection(
        [&](Connection& c, bool* retryable) -> absl::StatusOr<int64_t> {
          *retryable = true;
          Pipeline p;
          p.Add("SELECT id FROM idemkey_tenants WHERE name = $1").Text(tenant);
          absl::StatusOr<std::vector<Result>> got = c.Run(p);
          if (!got.ok()) return got.status();
          if ((*got)[0].rows() == 0) return UnknownTenantError(tenant);
          return (*got)[0].Int64(0, 0);
        });
    if (!id.ok()) return id.status();
    tenant_id = *id;
  }
  absl::StatusOr<BackendStats> before = Stats();
  absl::StatusOr<uint64_t> deleted = WithConnection(
      [&](Connection& c, bool* retryable) -> absl::StatusOr<uint64_t> {
        *retryable = true;  // batches done stay done; the rest is redone
        return DeleteExpired(c, tenant_id);
      });
  if (!deleted.ok()) return deleted.status();
  absl::StatusOr<BackendStats> after = Stats();
  CompactionResult result;
  result.tenants = tenant.empty() && before.ok()
                       ? static_cast<uint32_t>(before->tenants.size())
                       : 1;
  // Space inside the table is reused by later rows; the files shrink only
  // under VACUUM FULL, which would lock every tenant out.
  auto bytes = [](const absl::StatusOr<BackendStats>& s) {
    uint64_t total = 0;
    if (s.ok()) {
      for (const TenantStats& t : s->tenants) total += t.disk_bytes;
    }
    return total;
  };
  result.disk_bytes_before = bytes(before);
  result.disk_bytes_after = bytes(after);
  result.expired_records_dropped = *deleted;
  return result;
}

absl::StatusOr<uint64_t> PostgresBackend::Checkpoint(const std::string&) {
  return absl::FailedPreconditionError(
      "the PostgreSQL backend keeps no files of its own: back the database "
      "up with PostgreSQL's tools (pg_basebackup, or your provider's "
      "snapshots)");
}

void PostgresBackend::SweepLoop() {
  for (;;) {
    {
      sync::MutexLock lock(&sweeper_mu_);
      if (!stopping_)
        sweeper_wake_.WaitFor(&sweeper_mu_, options_.sweep_interval);
      if (stopping_) return;
    }
    // One replica sweeps at a time (a session lock, taken and released on
    // the one connection the sweep runs on); the others skip their turn.
    absl::Status swept =
        WithConnection([&](Connection& c, bool* retryable) -> absl::Status {
          *retryable = true;
          Pipeline lock;
          lock.Add("SELECT pg_try_advisory_lock($1)").Int64(kSweepLock);
          absl::StatusOr<std::vector<Result>> got = c.Run(lock);
          if (!got.ok()) return got.status();
          if ((*got)[0].Bytes(0, 0) != absl::string_view("\1", 1)) {
            return absl::OkStatus();
          }
          absl::Status s = DeleteExpired(c, std::nullopt).status();
          Pipeline unlock;
          unlock.Add("SELECT pg_advisory_unlock($1)").Int64(kSweepLock);
          absl::Status unlocked = c.Run(unlock).status();
          return s.ok() ? unlocked : s;
        });
    if (!swept.ok()) {
      util::Log(util::LogLevel::kWarning,
                absl::StrCat("expiry sweep: ", swept.message()));
    }
  }
}

}  // namespace idemkey::store
