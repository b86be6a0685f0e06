#include "idemctl/cli.h"

#include <algorithm>
#include <cstdlib>
#include <functional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "idemctl/args.h"
#include "idemctl/commands.h"
#include "idemctl/exit_codes.h"
#include "idemctl/format.h"

namespace idemkey::idemctl {
namespace {

constexpr char kDefaultAddress[] = "127.0.0.1:50051";
constexpr char kDefaultTimeout[] = "5s";

const std::vector<FlagSpec>& AllFlags() {
  static const auto* flags = new std::vector<FlagSpec>{
      // Global.
      {"addr", 0, "HOST:PORT",
       "idemkeyd address (default 127.0.0.1:50051, or $IDEMKEY_ADDR)"},
      {"timeout", 0, "DURATION",
       "time limit of each call to idemkeyd (default 5s)"},
      {"output", 'o', "FORMAT", "table (default) or json"},
      {"cacert", 0, "FILE", "use TLS; verify idemkeyd with this PEM CA bundle"},
      {"cert", 0, "FILE", "client certificate (PEM) for mutual TLS"},
      {"key", 0, "FILE", "private key (PEM) of --cert"},
      {"token", 0, "TOKEN",
       "bearer token (or $IDEMKEY_TOKEN, which keeps it out of ps)"},
      {"help", 'h', "", "show help and exit"},
      {"version", 0, "", "print idemctl's version and exit"},
      // Verbs.
      {"raw", 0, "",
       "write the stored body's exact bytes to stdout, nothing "
       "else"},
      {"prefix", 0, "P", "only keys that start with P"},
      {"state", 0, "S", "only records in state S: in_progress or completed"},
      {"limit", 0, "N", "stop after N records (default: all)"},
      {"page-size", 0, "N",
       "records per ListRecords call, 1-1000 (default 100)"},
      {"yes", 0, "", "do it without asking"},
      {"tenant", 0, "NAME", "only this tenant (default: every tenant)"},
  };
  return *flags;
}

const std::vector<std::string> kGlobalFlags = {"addr",   "timeout", "output",
                                               "cacert", "cert",    "key",
                                               "token",  "help",    "version"};

struct VerbSpec {
  std::string name;  // "get", "tenants drop"
  std::string args;  // "TENANT KEY"
  size_t num_args;
  std::string summary;      // one line, for the verb list
  std::string description;  // for VERB --help
  std::vector<std::string> flags;
  int (*run)(Context&);
  // Flags among `flags` the verb refuses to run without (checked by the
  // verb, shown without brackets in the synopsis).
  std::vector<std::string> required = {};
};

const std::vector<VerbSpec>& Verbs() {
  static const auto* verbs = new std::vector<VerbSpec>{
      {"get",
       "TENANT KEY",
       2,
       "show one record: state, lease, times, stored response",
       "Shows the record of KEY in TENANT: state, fingerprint (hex), the\n"
       "attempt holding (or last holding) the lease and its expiry, fencing\n"
       "token, created/completed/expires times, ttl, and the stored status,\n"
       "headers and body. Header values and the body are shown as text when\n"
       "they are UTF-8 without control characters, else in base64 (marked).",
       {"raw"},
       RunGet},
      {"list",
       "TENANT",
       1,
       "list a tenant's live records in key order",
       "Lists the live records of TENANT in key order, one row (or one JSON\n"
       "object per line) each, paging through ListRecords as needed. Stored\n"
       "responses are not fetched: use get for them.",
       {"prefix", "state", "limit", "page-size"},
       RunList},
      {"delete",
       "TENANT KEY",
       2,
       "forget one record, whatever its state",
       "Deletes the record of KEY in TENANT, whatever its state; a retry of\n"
       "the request will run it again. Asks first on a terminal; otherwise\n"
       "--yes is required.",
       {"yes"},
       RunDelete},
      {"tenants list",
       "",
       0,
       "list every tenant",
       "Lists every tenant.",
       {},
       RunTenantsList},
      {"tenants create",
       "NAME",
       1,
       "create an empty tenant",
       "Creates an empty tenant NAME (1-64 of [a-z0-9._-], starting with a\n"
       "letter or digit).",
       {},
       RunTenantsCreate},
      {"tenants drop",
       "NAME",
       1,
       "drop a tenant and all its records",
       "Drops tenant NAME and every record it holds. Requires --yes.",
       {"yes"},
       RunTenantsDrop,
       {"yes"}},
      {"stats",
       "",
       0,
       "record counts, disk use, storage-engine figures",
       "Shows the server's figures: tenants and their estimated record\n"
       "counts, table-file, WAL and memtable bytes, block cache, compaction\n"
       "and uptime.",
       {},
       RunStats},
      {"backup",
       "DIR",
       1,
       "copy the whole store into DIR on the server's machine",
       "Writes a consistent copy of every tenant into DIR (absolute, must not\n"
       "exist) on the machine idemkeyd runs on, while it keeps serving. To\n"
       "restore, start idemkeyd with --data_dir=DIR (or a copy of it). Give\n"
       "large stores a longer --timeout. Needs an admin token when auth is on.",
       {},
       RunBackup},
      {"compact",
       "",
       0,
       "drop expired records from disk now",
       "Rewrites the table files of every tenant (or --tenant's) now, so\n"
       "expired records are dropped and their disk space given back instead\n"
       "of at the next background compaction. I/O-heavy but online; give\n"
       "large stores a longer --timeout. Needs an admin token when auth is\n"
       "on.",
       {"tenant"},
       RunCompact},
      {"token new",
       "TENANT",
       1,
       "make a bearer token for TENANT (or admin)",
       "Prints a fresh random token for TENANT (or \"admin\") and the line to\n"
       "add to idemkeyd's --tokens_file (then send idemkeyd SIGHUP). Only\n"
       "the line's hash is stored by idemkeyd; keep the token secret.\n"
       "Needs no server.",
       {},
       RunTokenNew},
      {"health",
       "",
       0,
       "grpc.health.v1 status of the server",
       "Asks grpc.health.v1.Health/Check of the whole server. Exits 0 when\n"
       "SERVING, 3 when NOT_SERVING (draining) or unreachable.",
       {},
       RunHealth},
  };
  return *verbs;
}

const FlagSpec& Flag(const std::string& name) {
  for (const FlagSpec& f : AllFlags()) {
    if (f.name == name) return f;
  }
  std::abort();  // a VerbSpec names a flag that does not exist
}

std::string Synopsis(const VerbSpec& v) {
  std::string s = absl::StrCat("idemctl ", v.name);
  if (!v.args.empty()) absl::StrAppend(&s, " ", v.args);
  for (const std::string& f : v.flags) {
    const FlagSpec& spec = Flag(f);
    const bool required =
        std::find(v.required.begin(), v.required.end(), f) != v.required.end();
    absl::StrAppend(&s, required ? " --" : " [--", spec.name,
                    spec.value_name.empty() ? "" : " ", spec.value_name,
                    required ? "" : "]");
  }
  return s;
}

void PrintFlags(std::ostream& out, const std::vector<std::string>& names) {
  std::vector<std::string> left;
  size_t width = 0;
  for (const std::string& n : names) {
    const FlagSpec& f = Flag(n);
    std::string l = "  ";
    if (f.short_name != 0)
      absl::StrAppend(&l, "-", std::string(1, f.short_name), ", ");
    absl::StrAppend(&l, "--", f.name);
    if (!f.value_name.empty()) absl::StrAppend(&l, " ", f.value_name);
    width = std::max(width, l.size());
    left.push_back(std::move(l));
  }
  for (size_t i = 0; i < names.size(); ++i) {
    out << left[i] << std::string(width - left[i].size() + 2, ' ')
        << Flag(names[i]).help << "\n";
  }
}

constexpr char kExitCodes[] =
    "Exit codes:\n"
    "  0  ok\n"
    "  1  not found: no such record or tenant (get --raw: no stored "
    "response yet)\n"
    "  2  usage error: unknown verb or flag, missing argument, bad value, or\n"
    "     a value idemkeyd refused (INVALID_ARGUMENT)\n"
    "  3  service unreachable within --timeout (UNAVAILABLE or "
    "DEADLINE_EXCEEDED;\n"
    "     health: also NOT_SERVING)\n"
    "  4  permission denied (PERMISSION_DENIED or UNAUTHENTICATED)\n"
    "  5  any other error of idemkeyd (e.g. ALREADY_EXISTS, "
    "RESOURCE_EXHAUSTED)\n";

void PrintShortUsage(std::ostream& out) {
  out << "Usage:\n";
  for (const VerbSpec& v : Verbs()) out << "  " << Synopsis(v) << "\n";
  out << "Global flags go before or after the verb: --addr HOST:PORT, "
         "--timeout DURATION, -o table|json, --cacert/--cert/--key FILE,\n"
         "--token TOKEN.\n"
         "Run 'idemctl --help' for details.\n";
}

void PrintHelp(std::ostream& out) {
  out << "idemctl — query and manage the records of idemkeyd.\n\n"
         "Usage: idemctl [global flags] VERB [ARGS] [flags]\n\nVerbs:\n";
  Table t;
  for (const VerbSpec& v : Verbs()) {
    t.AddRow({absl::StrCat("  ", v.name, v.args.empty() ? "" : " ", v.args),
              v.summary});
  }
  t.AddRow({"  help [VERB]", "this text, or a verb's flags"});
  t.Print(out);
  out << "\nGlobal flags (before or after the verb):\n";
  PrintFlags(out, kGlobalFlags);
  out << "\nJSON output (-o json) is protobuf's JSON form of the API messages\n"
         "(proto/idemkey/v1/) with their proto field names: one object per\n"
         "line for list and tenants list, one object otherwise.\n\n"
      << kExitCodes << "\nRun 'idemctl VERB --help' for a verb's flags.\n";
}

void PrintVerbHelp(std::ostream& out, const VerbSpec& v) {
  out << "Usage: " << Synopsis(v) << "\n\n" << v.description << "\n";
  if (!v.flags.empty()) {
    out << "\nFlags:\n";
    PrintFlags(out, v.flags);
  }
  out << "\nGlobal flags:\n";
  PrintFlags(out, kGlobalFlags);
  out << "\n" << kExitCodes;
}

// The verbs whose name starts with `group` ("tenants").
void PrintGroupUsage(std::ostream& out, const std::string& group) {
  out << "Usage:\n";
  Table t;
  for (const VerbSpec& v : Verbs()) {
    if (v.name.rfind(group + " ", 0) == 0) {
      t.AddRow(
          {absl::StrCat("  ", Synopsis(v)), absl::StrCat("# ", v.summary)});
    }
  }
  t.Print(out);
}

// Finds the verb named by the leading words; `consumed` says how many.
const VerbSpec* FindVerb(const std::vector<std::string>& words,
                         size_t* consumed) {
  for (const VerbSpec& v : Verbs()) {
    const bool two_words = v.name.find(' ') != std::string::npos;
    if (!two_words && !words.empty() && words[0] == v.name) {
      *consumed = 1;
      return &v;
    }
    if (two_words && words.size() >= 2 &&
        absl::StrCat(words[0], " ", words[1]) == v.name) {
      *consumed = 2;
      return &v;
    }
  }
  return nullptr;
}

}  // namespace

idemkey::client::ClientOptions ClientOptionsFor(const std::string& address,
                                                absl::Duration timeout) {
  idemkey::client::ClientOptions o;
  o.address = address;
  // One attempt with the whole budget. The channel fails fast, so a retry of
  // UNAVAILABLE (refused connection, draining server) a few milliseconds
  // later would get the same answer, while splitting the budget between
  // attempts would cut a slow but healthy call short of --timeout.
  o.max_attempts = 1;
  o.call_timeout = timeout;
  return o;
}

int RunIdemctl(const std::vector<std::string>& args, const Environment& env) {
  std::ostream& out = *env.out;
  std::ostream& err = *env.err;

  absl::StatusOr<ParsedArgs> parsed = ParseArgs(args, AllFlags());
  if (!parsed.ok()) {
    err << "idemctl: " << parsed.status().message() << "\n";
    PrintShortUsage(err);
    return kExitUsage;
  }
  std::vector<std::string> words = parsed->words;
  bool help = parsed->Has("help");
  if (!words.empty() && words[0] == "help") {
    help = true;
    words.erase(words.begin());
  }

  size_t consumed = 0;
  const VerbSpec* verb = FindVerb(words, &consumed);
  const bool tenants_group =
      verb == nullptr && !words.empty() && words[0] == "tenants";
  if (parsed->Has("version")) {
    out << "idemctl " << IDEMKEY_VERSION << "\n";
    return kExitOk;
  }
  if (help) {
    if (verb != nullptr) {
      PrintVerbHelp(out, *verb);
    } else if (tenants_group && words.size() == 1) {
      PrintGroupUsage(out, "tenants");
      out << "Run 'idemctl tenants VERB --help' for a verb's flags.\n";
    } else if (words.empty()) {
      PrintHelp(out);
    } else {
      err << "idemctl: unknown verb \"" << words[0] << "\"\n";
      PrintShortUsage(err);
      return kExitUsage;
    }
    return kExitOk;
  }

  if (verb == nullptr) {
    if (words.empty()) {
      err << "idemctl: missing verb\n";
      PrintShortUsage(err);
    } else if (tenants_group) {
      err << "idemctl: "
          << (words.size() == 1
                  ? std::string("tenants needs a verb: list, create or drop")
                  : absl::StrCat("unknown verb \"tenants ", words[1], "\""))
          << "\n";
      PrintGroupUsage(err, "tenants");
    } else {
      err << "idemctl: unknown verb \"" << words[0] << "\"\n";
      PrintShortUsage(err);
    }
    return kExitUsage;
  }

  auto usage_error = [&err, verb](const std::string& message) {
    err << "idemctl: " << message << "\nUsage: " << Synopsis(*verb)
        << "\nRun 'idemctl " << verb->name << " --help' for details.\n";
    return static_cast<int>(kExitUsage);
  };

  // Flags of other verbs are mistakes, not things to ignore.
  for (const auto& [name, value] : parsed->flags) {
    if (std::find(kGlobalFlags.begin(), kGlobalFlags.end(), name) ==
            kGlobalFlags.end() &&
        std::find(verb->flags.begin(), verb->flags.end(), name) ==
            verb->flags.end()) {
      return usage_error(
          absl::StrCat("flag --", name, " does not apply to ", verb->name));
    }
  }
  std::vector<std::string> verb_args(words.begin() + consumed, words.end());
  if (verb_args.size() < verb->num_args) {
    return usage_error(absl::StrCat(
        verb->name, " needs ", verb->args, "; missing ",
        verb->num_args - verb_args.size() == 1 ? "one argument" : "arguments"));
  }
  if (verb_args.size() > verb->num_args) {
    return usage_error(absl::StrCat("unexpected argument \"",
                                    verb_args[verb->num_args], "\""));
  }

  std::string address =
      env.addr_from_env.empty() ? kDefaultAddress : env.addr_from_env;
  if (parsed->Has("addr")) address = parsed->flags.at("addr");
  if (address.empty()) return usage_error("--addr must not be empty");

  std::string timeout_text = kDefaultTimeout;
  if (parsed->Has("timeout")) timeout_text = parsed->flags.at("timeout");
  absl::Duration timeout;
  if (!absl::ParseDuration(timeout_text, &timeout) ||
      timeout <= absl::ZeroDuration()) {
    return usage_error(absl::StrCat(
        "--timeout must be a positive duration such as 5s or 500ms, not \"",
        timeout_text, "\""));
  }

  OutputFormat output = OutputFormat::kTable;
  if (parsed->Has("output")) {
    const std::string o = absl::AsciiStrToLower(parsed->flags.at("output"));
    if (o == "json") {
      output = OutputFormat::kJson;
    } else if (o != "table") {
      return usage_error(absl::StrCat("--output must be table or json, not \"",
                                      parsed->flags.at("output"), "\""));
    }
  }

  idemkey::client::ClientOptions client_options =
      ClientOptionsFor(address, timeout);
  client_options.token =
      parsed->Has("token") ? parsed->flags.at("token") : env.token_from_env;
  if (parsed->Has("cacert") || parsed->Has("cert") || parsed->Has("key")) {
    auto flag = [&](const char* name) {
      return parsed->Has(name) ? parsed->flags.at(name) : std::string();
    };
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        idemkey::client::TlsCredentialsFromFiles(flag("cacert"), flag("cert"),
                                                 flag("key"));
    if (!credentials.ok()) {
      return usage_error(absl::StrCat("--cacert/--cert/--key: ",
                                      credentials.status().message()));
    }
    client_options.credentials = *credentials;
  }
  std::shared_ptr<idemkey::client::Client> client =
      idemkey::client::Client::Create(client_options);
  Context ctx;
  ctx.client = client.get();
  ctx.address = address;
  ctx.output = output;
  ctx.args = std::move(verb_args);
  ctx.parsed = &*parsed;
  ctx.stdin_is_terminal = env.stdin_is_terminal;
  ctx.in = env.in;
  ctx.out = env.out;
  ctx.err = env.err;
  ctx.usage_error = usage_error;
  return verb->run(ctx);
}

}  // namespace idemkey::idemctl
