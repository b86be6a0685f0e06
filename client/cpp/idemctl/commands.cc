#include "idemctl/commands.h"

#include <openssl/rand.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "idemctl/exit_codes.h"
#include "idemctl/format.h"
#include "idemkey/rules/tokens_file.h"
#include "idemkey/rules/validation.h"

namespace idemkey::idemctl {
namespace {

using idemkey::v1::Record;

// "IN_PROGRESS" for STATE_IN_PROGRESS.
std::string StateName(idemkey::v1::State state) {
  std::string name = idemkey::v1::State_Name(state);
  if (name.rfind("STATE_", 0) == 0) name = name.substr(6);
  return name;
}

// Header values are shown on one line: text only without line breaks.
std::string HeaderValue(const std::string& value) {
  if (value.find_first_of("\r\n\t") == std::string::npos &&
      IsPrintableText(value)) {
    return value;
  }
  return absl::StrCat(absl::Base64Escape(value), " (base64)");
}

// How long the lease still runs, or "lapsed"; "-" when not IN_PROGRESS.
std::string LeaseLeft(const Record& r, absl::Time now) {
  if (r.state() != idemkey::v1::STATE_IN_PROGRESS) return "-";
  const absl::Time expiry =
      absl::FromUnixSeconds(r.lease_expires_at().seconds()) +
      absl::Nanoseconds(r.lease_expires_at().nanos());
  if (expiry <= now) return "lapsed";
  return HumanDuration(expiry - now);
}

std::string Where(const std::string& tenant, const std::string& key) {
  return absl::StrCat("key \"", key, "\" of tenant \"", tenant, "\"");
}

// Asks on a terminal; true when the answer is y or yes.
bool Confirm(Context& ctx, const std::string& question) {
  *ctx.err << question << " [y/N] " << std::flush;
  std::string answer;
  if (ctx.in == nullptr || !std::getline(*ctx.in, answer)) return false;
  answer = absl::AsciiStrToLower(absl::StripAsciiWhitespace(answer));
  return answer == "y" || answer == "yes";
}

}  // namespace

int ServiceError(const Context& ctx, const absl::Status& status) {
  const ExitCode code = ExitCodeFor(status);
  const std::string what = absl::StatusCodeToString(status.code());
  if (code == kExitUnreachable) {
    *ctx.err << "idemctl: cannot reach idemkeyd at " << ctx.address << ": "
             << status.message() << " (" << what << ")\n";
  } else {
    *ctx.err << "idemctl: " << status.message() << " (" << what << ")\n";
  }
  return code;
}

int RunGet(Context& ctx) {
  const std::string& tenant = ctx.args[0];
  const std::string& key = ctx.args[1];
  const bool raw = ctx.parsed->Has("raw");
  if (raw && ctx.output == OutputFormat::kJson) {
    return ctx.usage_error("--raw and --output=json exclude each other");
  }
  absl::StatusOr<Record> r = ctx.client->Lookup(tenant, key);
  if (!r.ok()) return ServiceError(ctx, r.status());

  if (raw) {
    if (!r->has_response()) {
      *ctx.err << "idemctl: " << Where(tenant, key) << " is "
               << StateName(r->state()) << ": it has no stored response yet\n";
      return kExitNotFound;
    }
    const std::string& body = r->response().body();
    ctx.out->write(body.data(), static_cast<std::streamsize>(body.size()));
    ctx.out->flush();
    return kExitOk;
  }
  if (ctx.output == OutputFormat::kJson) {
    *ctx.out << ToJson(*r) << "\n";
    return kExitOk;
  }

  const absl::Time now = absl::Now();
  Table t;
  t.AddRow({"tenant", tenant});
  t.AddRow({"key", r->key()});
  t.AddRow({"state", StateName(r->state())});
  t.AddRow({"fingerprint", Hex(r->fingerprint())});
  t.AddRow({"attempt id", r->attempt_id()});
  t.AddRow({"fencing token", absl::StrCat(r->fencing_token())});
  if (r->has_lease_expires_at()) {
    t.AddRow({"lease expires", FormatTimeFromNow(r->lease_expires_at(), now)});
  }
  t.AddRow({"created", FormatTime(r->created_at())});
  if (r->has_completed_at()) {
    t.AddRow({"completed", FormatTime(r->completed_at())});
  }
  t.AddRow({"expires", FormatTimeFromNow(r->expires_at(), now)});
  t.AddRow({"ttl", HumanDuration(r->ttl())});
  if (r->has_response()) {
    const idemkey::v1::StoredResponse& resp = r->response();
    t.AddRow({"status", absl::StrCat(resp.status_code())});
    for (const idemkey::v1::Header& h : resp.headers()) {
      t.AddRow(
          {"header", absl::StrCat(h.name(), ": ", HeaderValue(h.value()))});
    }
  }
  t.Print(*ctx.out);
  if (r->has_response()) {
    const std::string& body = r->response().body();
    if (body.empty()) {
      *ctx.out << "\nbody (0 bytes)\n";
    } else if (IsPrintableText(body)) {
      *ctx.out << "\nbody (" << body.size() << " bytes, text):\n" << body;
      if (body.back() != '\n') *ctx.out << "\n";
    } else {
      *ctx.out << "\nbody (" << body.size() << " bytes, base64):\n";
      const std::string b64 = absl::Base64Escape(body);
      for (size_t i = 0; i < b64.size(); i += 76) {
        *ctx.out << b64.substr(i, 76) << "\n";
      }
    }
  }
  return kExitOk;
}

int RunList(Context& ctx) {
  idemkey::v1::ListRecordsRequest req;
  req.set_tenant(ctx.args[0]);
  if (ctx.parsed->Has("prefix"))
    req.set_key_prefix(ctx.parsed->flags.at("prefix"));
  if (ctx.parsed->Has("state")) {
    const std::string s = absl::AsciiStrToLower(ctx.parsed->flags.at("state"));
    if (s == "in_progress") {
      req.set_state(idemkey::v1::STATE_IN_PROGRESS);
    } else if (s == "completed") {
      req.set_state(idemkey::v1::STATE_COMPLETED);
    } else {
      return ctx.usage_error(
          absl::StrCat("--state must be in_progress or completed, not \"",
                       ctx.parsed->flags.at("state"), "\""));
    }
  }
  int64_t limit = -1;  // no limit
  if (ctx.parsed->Has("limit")) {
    const std::string& v = ctx.parsed->flags.at("limit");
    if (!absl::SimpleAtoi(v, &limit) || limit < 1) {
      return ctx.usage_error(absl::StrCat(
          "--limit must be a positive whole number, not \"", v, "\""));
    }
  }
  int page_size = 100;
  if (ctx.parsed->Has("page-size")) {
    const std::string& v = ctx.parsed->flags.at("page-size");
    if (!absl::SimpleAtoi(v, &page_size) || page_size < 1 || page_size > 1000) {
      return ctx.usage_error(absl::StrCat(
          "--page-size must be a whole number from 1 to 1000, not \"", v,
          "\""));
    }
  }

  const absl::Time now = absl::Now();
  Table t({"KEY", "STATE", "TOKEN", "ATTEMPT", "LEASE", "CREATED", "EXPIRES"});
  int64_t shown = 0;
  do {
    int64_t want = page_size;
    if (limit >= 0) want = std::min<int64_t>(want, limit - shown);
    req.set_page_size(static_cast<int32_t>(want));
    absl::StatusOr<idemkey::v1::ListRecordsResponse> page =
        ctx.client->ListRecords(req);
    if (!page.ok()) {
      // Rows printed so far stay valid; say where the listing stopped.
      if (ctx.output == OutputFormat::kTable && shown > 0) t.Print(*ctx.out);
      return ServiceError(ctx, page.status());
    }
    for (const Record& r : page->records()) {
      if (limit >= 0 && shown >= limit) break;
      ++shown;
      if (ctx.output == OutputFormat::kJson) {
        *ctx.out << ToJson(r) << "\n";
      } else {
        t.AddRow({r.key(), StateName(r.state()),
                  absl::StrCat(r.fencing_token()), r.attempt_id(),
                  LeaseLeft(r, now), FormatTime(r.created_at()),
                  FormatTime(r.expires_at())});
      }
    }
    req.set_page_token(page->next_page_token());
  } while (!req.page_token().empty() && (limit < 0 || shown < limit));
  if (ctx.output == OutputFormat::kTable) t.Print(*ctx.out);
  return kExitOk;
}

int RunDelete(Context& ctx) {
  const std::string& tenant = ctx.args[0];
  const std::string& key = ctx.args[1];
  if (!ctx.parsed->Has("yes")) {
    if (!ctx.stdin_is_terminal) {
      return ctx.usage_error("delete needs --yes when stdin is not a terminal");
    }
    if (!Confirm(ctx, absl::StrCat("delete ", Where(tenant, key), "?"))) {
      *ctx.err << "idemctl: not deleted\n";
      return kExitOk;
    }
  }
  absl::Status s = ctx.client->DeleteRecord(tenant, key);
  if (!s.ok()) return ServiceError(ctx, s);
  if (ctx.output == OutputFormat::kJson) {
    *ctx.out << ToJson(idemkey::v1::DeleteRecordResponse()) << "\n";
  } else {
    *ctx.out << "deleted " << Where(tenant, key) << "\n";
  }
  return kExitOk;
}

int RunTenantsList(Context& ctx) {
  absl::StatusOr<idemkey::v1::ListTenantsResponse> r =
      ctx.client->ListTenants();
  if (!r.ok()) return ServiceError(ctx, r.status());
  Table t({"NAME", "CREATED"});
  for (const idemkey::v1::Tenant& tenant : r->tenants()) {
    if (ctx.output == OutputFormat::kJson) {
      *ctx.out << ToJson(tenant) << "\n";
    } else {
      t.AddRow({tenant.name(), FormatTime(tenant.created_at())});
    }
  }
  if (ctx.output == OutputFormat::kTable) t.Print(*ctx.out);
  return kExitOk;
}

int RunTenantsCreate(Context& ctx) {
  absl::StatusOr<idemkey::v1::Tenant> r = ctx.client->CreateTenant(ctx.args[0]);
  if (!r.ok()) return ServiceError(ctx, r.status());
  if (ctx.output == OutputFormat::kJson) {
    *ctx.out << ToJson(*r) << "\n";
  } else {
    *ctx.out << "created tenant \"" << r->name() << "\" at "
             << FormatTime(r->created_at()) << "\n";
  }
  return kExitOk;
}

int RunTenantsDrop(Context& ctx) {
  if (!ctx.parsed->Has("yes")) {
    return ctx.usage_error(
        absl::StrCat("tenants drop deletes every record of \"", ctx.args[0],
                     "\"; confirm with --yes"));
  }
  absl::Status s = ctx.client->DropTenant(ctx.args[0]);
  if (!s.ok()) return ServiceError(ctx, s);
  if (ctx.output == OutputFormat::kJson) {
    *ctx.out << ToJson(idemkey::v1::DropTenantResponse()) << "\n";
  } else {
    *ctx.out << "dropped tenant \"" << ctx.args[0] << "\"\n";
  }
  return kExitOk;
}

int RunStats(Context& ctx) {
  absl::StatusOr<idemkey::v1::GetStatsResponse> r = ctx.client->GetStats();
  if (!r.ok()) return ServiceError(ctx, r.status());
  if (ctx.output == OutputFormat::kJson) {
    *ctx.out << ToJson(*r) << "\n";
    return kExitOk;
  }
  Table summary;
  summary.AddRow({"tenants", absl::StrCat(r->tenant_count(), " of ",
                                          r->max_tenants(), " allowed")});
  summary.AddRow({"uptime", HumanDuration(absl::Seconds(r->uptime_seconds()))});
  summary.AddRow({"table files", FormatBytes(r->total_disk_bytes())});
  summary.AddRow({"write-ahead log", FormatBytes(r->wal_bytes())});
  summary.AddRow({"memtables", FormatBytes(r->memtable_bytes())});
  summary.AddRow(
      {"block cache",
       absl::StrCat(FormatBytes(r->block_cache_usage_bytes()), " of ",
                    FormatBytes(r->block_cache_capacity_bytes()))});
  summary.AddRow({"compaction",
                  absl::StrCat(r->compaction_pending() ? "pending" : "idle",
                               ", ", FormatBytes(r->pending_compaction_bytes()),
                               " to rewrite")});
  summary.AddRow(
      {"expired records dropped", absl::StrCat(r->expired_records_dropped())});
  summary.Print(*ctx.out);
  *ctx.out << "\n";
  Table tenants({"TENANT", "RECORDS (EST.)", "DISK", "MEMTABLE"});
  for (const idemkey::v1::TenantStats& t : r->tenants()) {
    tenants.AddRow({t.name(), absl::StrCat(t.estimated_records()),
                    FormatBytes(t.disk_bytes()),
                    FormatBytes(t.memtable_bytes())});
  }
  tenants.Print(*ctx.out);
  return kExitOk;
}

int RunHealth(Context& ctx) {
  absl::StatusOr<idemkey::client::ServingStatus> r = ctx.client->CheckHealth();
  if (!r.ok()) return ServiceError(ctx, r.status());
  std::string status = "UNKNOWN";
  if (*r == idemkey::client::ServingStatus::kServing) status = "SERVING";
  if (*r == idemkey::client::ServingStatus::kNotServing) {
    status = "NOT_SERVING";
  }
  if (ctx.output == OutputFormat::kJson) {
    // grpc.health.v1.HealthCheckResponse in protobuf's JSON form (Debian
    // ships no health.proto to print it with).
    *ctx.out << "{\"status\":\"" << status << "\"}\n";
  } else {
    *ctx.out << ctx.address << " is " << status << "\n";
  }
  // A server that answers but does not serve (draining) is as good as
  // unreachable for a caller.
  return *r == idemkey::client::ServingStatus::kServing ? kExitOk
                                                        : kExitUnreachable;
}

int RunTokenNew(Context& ctx) {
  const std::string& tenant = ctx.args[0];
  // The server checks names too; this only spares a useless token.
  if (tenant != idemkey::rules::kAdminPrincipal) {
    if (absl::Status s = idemkey::rules::ValidateTenantName(tenant); !s.ok()) {
      return ctx.usage_error(
          absl::StrCat(s.message(), "; or name the principal admin"));
    }
  }
  unsigned char secret[32];
  if (RAND_bytes(secret, sizeof secret) != 1) {
    *ctx.err << "idemctl: the system's random generator failed\n";
    return kExitServiceError;
  }
  const std::string token =
      "idk_" + absl::WebSafeBase64Escape(absl::string_view(
                   reinterpret_cast<const char*>(secret), sizeof secret));
  const std::string line = idemkey::rules::TokensFileLine(token, tenant);
  if (ctx.output == OutputFormat::kJson) {
    *ctx.out << "{\"token\":\"" << token << "\",\"tokens_file_line\":\"" << line
             << "\"}\n";
  } else {
    *ctx.out << "token            " << token << "\n"
             << "tokens_file line " << line << "\n";
  }
  return kExitOk;
}

int RunBackup(Context& ctx) {
  absl::StatusOr<idemkey::v1::CheckpointResponse> r =
      ctx.client->Checkpoint(ctx.args[0]);
  if (!r.ok()) return ServiceError(ctx, r.status());
  if (ctx.output == OutputFormat::kJson) {
    *ctx.out << ToJson(*r) << "\n";
  } else {
    *ctx.out << "backed up " << r->tenants() << " tenants (" << r->bytes()
             << " bytes) to " << r->directory()
             << "\nrestore: idemkeyd --data_dir=" << r->directory() << "\n";
  }
  return kExitOk;
}

int RunCompact(Context& ctx) {
  const std::string tenant =
      ctx.parsed->Has("tenant") ? ctx.parsed->flags.at("tenant") : "";
  absl::StatusOr<idemkey::v1::CompactResponse> r = ctx.client->Compact(tenant);
  if (!r.ok()) return ServiceError(ctx, r.status());
  if (ctx.output == OutputFormat::kJson) {
    *ctx.out << ToJson(*r) << "\n";
  } else {
    *ctx.out << "compacted " << r->tenants() << " tenants: table files "
             << r->disk_bytes_before() << " -> " << r->disk_bytes_after()
             << " bytes, " << r->expired_records_dropped()
             << " expired records dropped\n";
  }
  return kExitOk;
}

}  // namespace idemkey::idemctl
