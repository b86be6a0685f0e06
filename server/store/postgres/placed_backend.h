// placed_backend.h — tenants spread over several PostgreSQL clusters, each
// tenant on one, by a placement kept in the first.
//
//   std::vector<PlacedCluster> clusters = {{"east", east}, {"west", west}};
//   absl::StatusOr<std::unique_ptr<PlacedBackend>> backend =
//       PlacedBackend::Open(std::move(clusters));
//
// Past one primary: each cluster is a PostgresBackend (postgres_backend.h)
// with its own primary, standbys and failover, and the service holds as many
// tenants and takes as many writes as its clusters together. The first
// cluster also keeps idemkey_placement, one row per tenant naming its
// cluster; every replica reads the same rows. A new tenant goes to the
// cluster with the fewest tenants placed on it; replicas creating one tenant
// at once agree (the first row inserted wins). A tenant never moves by
// itself: docs/backends.md, "Moving a tenant", says how to move one.
//
// Replicas cache where a tenant is, which stays right as tenants do not
// move; when a cluster no longer has a cached tenant (dropped, or moved by
// hand), the placement is read again and the call goes where it says.
//
// Fencing tokens: the i-th cluster of the file hands out (n + base) * 64 + i
// for its sequence's n, from the day it joined (idemkey_schema keeps its
// layout), so no two clusters ever hand out one token, and a key's tokens
// grow with its cluster's sequence. `base` puts a joining cluster's tokens
// above every token any cluster handed out before, alone or placed. So the
// clusters keep their places in the file: new ones are appended.
//
// Thread-safe (Backend's contract).

#ifndef IDEMKEY_SERVER_STORE_POSTGRES_PLACED_BACKEND_H_
#define IDEMKEY_SERVER_STORE_POSTGRES_PLACED_BACKEND_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "server/store/backend.h"
#include "server/store/postgres/connection_pool.h"
#include "server/store/postgres/postgres_backend.h"

namespace idemkey::store {

struct PlacedCluster {
  // Names the cluster in idemkey_placement: never rename one that holds
  // tenants.
  std::string name;
  PostgresOptions options;
};

class PlacedBackend final : public Backend {
 public:
  // Clusters at most (the stride of their tokens).
  static constexpr size_t kMaxClusters = 64;

  // Opens (and migrates) every cluster, then checks the placement against
  // what the clusters hold: a tenant a cluster holds without a placement
  // (a database that ran alone before) is placed where it is; a tenant held
  // by two clusters, or placed on a cluster `clusters` does not name, is
  // FAILED_PRECONDITION, naming it. At least two clusters, names unique.
  static absl::StatusOr<std::unique_ptr<PlacedBackend>> Open(
      std::vector<PlacedCluster> clusters);

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
  absl::StatusOr<CompactionResult> Compact(absl::string_view tenant) override;
  absl::Status Close() override;
  absl::StatusOr<uint64_t> Checkpoint(const std::string& dir) override;

 private:
  PlacedBackend(std::vector<std::string> names,
                std::vector<std::unique_ptr<PostgresBackend>> clusters,
                const PostgresOptions& home);

  // Gives each cluster its token layout, or checks the one it has (Open).
  static absl::Status LayTokens(
      const std::vector<std::string>& names,
      const std::vector<std::unique_ptr<PostgresBackend>>& clusters);
  // The index of the cluster `name` names; FAILED_PRECONDITION for a name
  // the configuration lacks.
  absl::StatusOr<size_t> IndexOf(absl::string_view name,
                                 absl::string_view tenant) const;
  // Where idemkey_placement puts `tenant`: UnknownTenantError when nowhere.
  absl::StatusOr<size_t> ReadPlacement(absl::string_view tenant);
  // `call` on the cluster of `tenant` (cached, else read); when that
  // cluster no longer has it, once more where the placement says now.
  absl::Status Routed(absl::string_view tenant,
                      absl::FunctionRef<absl::Status(PostgresBackend&)> call);
  // Reads every placement row and checks it against the clusters (Open).
  absl::Status CheckPlacement();

  const std::vector<std::string> names_;
  const std::vector<std::unique_ptr<PostgresBackend>> clusters_;
  // The first cluster's connections, for idemkey_placement.
  postgres::ConnectionPool home_;
  const Clock* const clock_;  // the first cluster's
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, size_t> placed_ ABSL_GUARDED_BY(mu_);
};

}  // namespace idemkey::store

#endif  // IDEMKEY_SERVER_STORE_POSTGRES_PLACED_BACKEND_H_
