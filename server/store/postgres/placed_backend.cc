#include "server/store/postgres/placed_backend.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "server/store/postgres/connection.h"

namespace idemkey::store {
namespace {

using postgres::Pipeline;
using postgres::Result;

// The cluster whose Update runs on this thread, for the NextFencingToken
// that the Update's callback calls (KeyStore draws a key's token under the
// key's lock): the token must come from the key's cluster.
thread_local PostgresBackend* updating = nullptr;

bool ByName(const TenantInfo& a, const TenantInfo& b) {
  return a.name < b.name;
}

// `s`, saying which cluster it came from.
absl::Status InCluster(absl::string_view name, const absl::Status& s) {
  return absl::Status(s.code(),
                      absl::StrCat("cluster ", name, ": ", s.message()));
}

}  // namespace

PlacedBackend::PlacedBackend(
    std::vector<std::string> names,
    std::vector<std::unique_ptr<PostgresBackend>> clusters,
    const PostgresOptions& home)
    : names_(std::move(names)),
      clusters_(std::move(clusters)),
      home_(home.dsn, {.size = 4, .statement_timeout = home.statement_timeout}),
      clock_(home.clock) {}

absl::StatusOr<std::unique_ptr<PlacedBackend>> PlacedBackend::Open(
    std::vector<PlacedCluster> clusters) {
  if (clusters.size() < 2) {
    return absl::InvalidArgumentError(
        "tenants are placed over two clusters or more; for one, open a "
        "PostgresBackend");
  }
  std::vector<std::string> names;
  std::vector<std::unique_ptr<PostgresBackend>> backends;
  for (size_t i = 0; i < clusters.size(); ++i) {
    PlacedCluster& c = clusters[i];
    if (c.name.empty() ||
        std::find(names.begin(), names.end(), c.name) != names.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cluster names must be unique and not empty; \"", c.name,
                       "\" is not"));
    }
    absl::StatusOr<std::unique_ptr<PostgresBackend>> opened =
        PostgresBackend::Open(c.options);
    if (!opened.ok()) {
      return InCluster(c.name, opened.status());
    }
    names.push_back(c.name);
    backends.push_back(*std::move(opened));
  }
  if (absl::Status s = LayTokens(names, backends); !s.ok()) return s;
  std::unique_ptr<PlacedBackend> placed(new PlacedBackend(
      std::move(names), std::move(backends), clusters[0].options));
  if (absl::Status s = placed->CheckPlacement(); !s.ok()) return s;
  return placed;
}

absl::Status PlacedBackend::LayTokens(
    const std::vector<std::string>& names,
    const std::vector<std::unique_ptr<PostgresBackend>>& clusters) {
  if (clusters.size() > kMaxClusters) {
    return absl::InvalidArgumentError(absl::StrCat(
        "at most ", kMaxClusters, " clusters, not ", clusters.size()));
  }
  // Above every token any cluster handed out, alone or placed.
  uint64_t ceiling = 0;
  for (size_t i = 0; i < clusters.size(); ++i) {
    absl::StatusOr<uint64_t> c = clusters[i]->TokenCeiling();
    if (!c.ok()) {
      return InCluster(names[i], c.status());
    }
    ceiling = std::max(ceiling, *c);
  }
  for (size_t i = 0; i < clusters.size(); ++i) {
    // A cluster joining now: (n + base) * stride + i, from above `ceiling`.
    absl::StatusOr<PostgresBackend::TokenLayout> layout =
        clusters[i]->JoinPlacement({.stride = kMaxClusters,
                                    .offset = i,
                                    .base = ceiling / kMaxClusters + 1});
    if (!layout.ok()) return layout.status();
    if (layout->stride != kMaxClusters || layout->offset != i) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cluster ", names[i], " was cluster number ", layout->offset + 1,
          " of the file when it joined, and is number ", i + 1,
          " now: clusters keep their place in --postgres_clusters_file "
          "(their tokens depend on it); append new ones at the end"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> PlacedBackend::IndexOf(absl::string_view name,
                                              absl::string_view tenant) const {
  for (size_t i = 0; i < names_.size(); ++i) {
    if (names_[i] == name) return i;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "tenant \"", tenant, "\" is placed on cluster \"", name,
      "\", which is not configured (--postgres_clusters_file): add it back"));
}

absl::Status PlacedBackend::CheckPlacement() {
  absl::StatusOr<postgres::ConnectionPool::Lease> c = home_.Borrow();
  if (!c.ok()) return c.status();
  Pipeline read;
  read.Add("SELECT tenant, cluster FROM idemkey_placement");
  absl::StatusOr<std::vector<Result>> got = (*c)->Run(read);
  if (!got.ok()) return got.status();
  absl::flat_hash_map<std::string, size_t> placed;
  for (int row = 0; row < (*got)[0].rows(); ++row) {
    const std::string tenant((*got)[0].Bytes(row, 0));
    absl::StatusOr<size_t> i = IndexOf((*got)[0].Bytes(row, 1), tenant);
    if (!i.ok()) return i.status();
    placed[tenant] = *i;
  }
  absl::flat_hash_set<std::string> held;
  for (size_t i = 0; i < clusters_.size(); ++i) {
    for (const TenantInfo& t : clusters_[i]->ListTenants()) {
      if (!held.insert(t.name).second) {
        return absl::FailedPreconditionError(absl::StrCat(
            "tenant \"", t.name, "\" is held by two clusters (one is \"",
            names_[i], "\"): keep it on one (docs/backends.md)"));
      }
      auto it = placed.find(t.name);
      if (it != placed.end() && it->second != i) {
        return absl::FailedPreconditionError(
            absl::StrCat("tenant \"", t.name, "\" is held by cluster \"",
                         names_[i], "\" but placed on \"", names_[it->second],
                         "\" (an unfinished move?): see docs/backends.md"));
      }
      if (it != placed.end()) continue;
      // Held from before the clusters were placed: it stays where it is.
      Pipeline adopt;
      adopt
          .Add(
              "INSERT INTO idemkey_placement (tenant, cluster, placed_ms) "
              "VALUES ($1, $2, $3) ON CONFLICT (tenant) DO NOTHING")
          .Text(t.name)
          .Text(names_[i])
          .Int64(clock_->NowMillis());
      if (absl::StatusOr<std::vector<Result>> done = (*c)->Run(adopt);
          !done.ok()) {
        return done.status();
      }
      placed[t.name] = i;
    }
  }
  absl::MutexLock lock(&mu_);
  for (auto& [tenant, i] : placed) placed_[tenant] = i;
  return absl::OkStatus();
}

absl::StatusOr<size_t> PlacedBackend::ReadPlacement(absl::string_view tenant) {
  absl::StatusOr<postgres::ConnectionPool::Lease> c = home_.Borrow();
  if (!c.ok()) return c.status();
  Pipeline p;
  p.Add("SELECT cluster FROM idemkey_placement WHERE tenant = $1").Text(tenant);
  absl::StatusOr<std::vector<Result>> got = (*c)->Run(p);
  if (!got.ok()) return got.status();
  if ((*got)[0].rows() == 0) return UnknownTenantError(tenant);
  absl::StatusOr<size_t> i = IndexOf((*got)[0].Bytes(0, 0), tenant);
  if (!i.ok()) return i.status();
  absl::MutexLock lock(&mu_);
  placed_[std::string(tenant)] = *i;
  return *i;
}

absl::Status PlacedBackend::Routed(
    absl::string_view tenant,
    absl::FunctionRef<absl::Status(PostgresBackend&)> call) {
  std::optional<size_t> cached;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = placed_.find(tenant); it != placed_.end()) {
      cached = it->second;
    }
  }
  if (cached) {
    absl::Status s = call(*clusters_[*cached]);
    if (!IsUnknownTenant(s)) return s;
    absl::MutexLock lock(&mu_);
    placed_.erase(tenant);
  }
  absl::StatusOr<size_t> i = ReadPlacement(tenant);
  if (!i.ok()) return i.status();
  if (cached == *i) return UnknownTenantError(tenant);  // placed, not created
  return call(*clusters_[*i]);
}

absl::Status PlacedBackend::Update(absl::string_view tenant,
                                   absl::string_view key,
                                   const CallOptions& options, UpdateFn fn) {
  if (!options.may_wait_for_io) return WouldBlockError();
  return Routed(tenant, [&](PostgresBackend& cluster) {
    updating = &cluster;
    absl::Status s = cluster.Update(tenant, key, options, fn);
    updating = nullptr;
    return s;
  });
}

absl::StatusOr<std::optional<Record>> PlacedBackend::Get(
    absl::string_view tenant, absl::string_view key,
    const CallOptions& options) {
  if (!options.may_wait_for_io) return WouldBlockError();
  absl::StatusOr<std::optional<Record>> got;
  absl::Status s = Routed(tenant, [&](PostgresBackend& cluster) {
    got = cluster.Get(tenant, key, options);
    return got.status();
  });
  if (!s.ok()) return s;
  return got;
}

absl::Status PlacedBackend::Scan(absl::string_view tenant,
                                 absl::string_view prefix,
                                 absl::string_view start, ScanFn fn) {
  // A cluster without the tenant says so before it visits anything.
  return Routed(tenant, [&](PostgresBackend& cluster) {
    return cluster.Scan(tenant, prefix, start, fn);
  });
}

absl::StatusOr<uint64_t> PlacedBackend::NextFencingToken(
    const CallOptions& options) {
  PostgresBackend* cluster =
      updating != nullptr ? updating : clusters_[0].get();
  return cluster->NextFencingToken(options);
}

absl::StatusOr<TenantInfo> PlacedBackend::CreateTenant(
    absl::string_view name, const CallOptions& options) {
  if (!options.may_wait_for_io) return WouldBlockError();
  absl::StatusOr<postgres::ConnectionPool::Lease> c = home_.Borrow();
  if (!c.ok()) return c.status();
  Pipeline look;
  look.Add("SELECT cluster, count(*) FROM idemkey_placement GROUP BY cluster");
  look.Add("SELECT cluster FROM idemkey_placement WHERE tenant = $1")
      .Text(name);
  absl::StatusOr<std::vector<Result>> got = (*c)->Run(look);
  if (!got.ok()) return got.status();
  std::string cluster;
  if ((*got)[1].rows() == 1) {
    cluster = std::string((*got)[1].Bytes(0, 0));  // placed, maybe not made
  } else {
    // The cluster with the fewest tenants (the first of equals).
    std::vector<int64_t> tenants(names_.size(), 0);
    for (int row = 0; row < (*got)[0].rows(); ++row) {
      absl::StatusOr<size_t> i = IndexOf((*got)[0].Bytes(row, 0), name);
      if (i.ok()) tenants[*i] = (*got)[0].Int64(row, 1);
    }
    const size_t least =
        std::min_element(tenants.begin(), tenants.end()) - tenants.begin();
    Pipeline place;
    place
        .Add(
            "INSERT INTO idemkey_placement (tenant, cluster, placed_ms) "
            "VALUES ($1, $2, $3) ON CONFLICT (tenant) DO NOTHING")
        .Text(name)
        .Text(names_[least])
        .Int64(clock_->NowMillis());
    // Another replica's row, if it placed the tenant first.
    place.Add("SELECT cluster FROM idemkey_placement WHERE tenant = $1")
        .Text(name);
    absl::StatusOr<std::vector<Result>> placed = (*c)->Run(place);
    if (!placed.ok()) return placed.status();
    cluster = std::string((*placed)[1].Bytes(0, 0));
  }
  absl::StatusOr<size_t> i = IndexOf(cluster, name);
  if (!i.ok()) return i.status();
  absl::StatusOr<TenantInfo> created =
      clusters_[*i]->CreateTenant(name, options);
  if (created.ok() || absl::IsAlreadyExists(created.status())) {
    absl::MutexLock lock(&mu_);
    placed_[std::string(name)] = *i;
  }
  return created;
}

absl::Status PlacedBackend::DropTenant(absl::string_view name,
                                       const CallOptions& options) {
  if (!options.may_wait_for_io) return WouldBlockError();
  absl::Status dropped = Routed(name, [&](PostgresBackend& cluster) {
    return cluster.DropTenant(name, options);
  });
  if (!dropped.ok() && !IsUnknownTenant(dropped)) return dropped;
  // Then the placement: a tenant made again goes to the least loaded.
  absl::StatusOr<postgres::ConnectionPool::Lease> c = home_.Borrow();
  if (!c.ok()) return c.status();
  Pipeline forget;
  forget.Add("DELETE FROM idemkey_placement WHERE tenant = $1").Text(name);
  if (absl::StatusOr<std::vector<Result>> done = (*c)->Run(forget);
      !done.ok()) {
    return done.status();
  }
  absl::MutexLock lock(&mu_);
  placed_.erase(name);
  return dropped;
}

std::vector<TenantInfo> PlacedBackend::ListTenants() {
  std::vector<TenantInfo> all;
  for (const auto& cluster : clusters_) {
    std::vector<TenantInfo> some = cluster->ListTenants();
    all.insert(all.end(), some.begin(), some.end());
  }
  std::sort(all.begin(), all.end(), ByName);
  return all;
}

absl::StatusOr<BackendStats> PlacedBackend::Stats() {
  BackendStats all;
  for (size_t i = 0; i < clusters_.size(); ++i) {
    absl::StatusOr<BackendStats> s = clusters_[i]->Stats();
    if (!s.ok()) {
      return InCluster(names_[i], s.status());
    }
    all.tenants.insert(all.tenants.end(), s->tenants.begin(), s->tenants.end());
    all.max_tenants += s->max_tenants;
    all.expired_records_dropped += s->expired_records_dropped;
  }
  std::sort(all.tenants.begin(), all.tenants.end(),
            [](const TenantStats& a, const TenantStats& b) {
              return a.name < b.name;
            });
  return all;
}

absl::StatusOr<CompactionResult> PlacedBackend::Compact(
    absl::string_view tenant) {
  if (!tenant.empty()) {
    absl::StatusOr<CompactionResult> one;
    absl::Status s = Routed(tenant, [&](PostgresBackend& cluster) {
      one = cluster.Compact(tenant);
      return one.status();
    });
    if (!s.ok()) return s;
    return one;
  }
  CompactionResult all;
  for (const auto& cluster : clusters_) {
    absl::StatusOr<CompactionResult> r = cluster->Compact("");
    if (!r.ok()) return r.status();
    all.tenants += r->tenants;
    all.disk_bytes_before += r->disk_bytes_before;
    all.disk_bytes_after += r->disk_bytes_after;
    all.expired_records_dropped += r->expired_records_dropped;
  }
  return all;
}

absl::Status PlacedBackend::Close() {
  absl::Status first;
  for (const auto& cluster : clusters_) first.Update(cluster->Close());
  return first;
}

absl::StatusOr<uint64_t> PlacedBackend::Checkpoint(const std::string& dir) {
  return clusters_[0]->Checkpoint(dir);  // refuses, naming pg_basebackup
}

}  // namespace idemkey::store
