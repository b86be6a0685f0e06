// commands.h — idemctl's verbs, each over idemkey::client::Client.
//
// The command line is parsed and checked by cli.h; a verb gets its words and
// flags in a Context, prints its result (table or JSON) to `out` and its
// errors to `err`, and returns the exit code (exit_codes.h).
//
//   Context ctx = ...;  // ctx.args = {"acme", "order-1"}
//   int code = RunGet(ctx);

#ifndef IDEMKEY_CLIENT_IDEMCTL_COMMANDS_H_
#define IDEMKEY_CLIENT_IDEMCTL_COMMANDS_H_

#include <functional>
#include <istream>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "idemctl/args.h"
#include "idemkey/client/client.h"

namespace idemkey::idemctl {

enum class OutputFormat { kTable, kJson };

struct Context {
  idemkey::client::Client* client = nullptr;
  std::string address;  // what --addr resolved to, for error messages
  OutputFormat output = OutputFormat::kTable;
  std::vector<std::string> args;       // the words after the verb
  const ParsedArgs* parsed = nullptr;  // every flag given
  bool stdin_is_terminal = false;
  std::istream* in = nullptr;
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
  // Prints "idemctl: <message>" and the verb's usage to err; returns 2.
  std::function<int(const std::string& message)> usage_error;
};

// Prints a failed call's status to ctx.err and returns its exit code; an
// unreachable service is reported with the address tried.
int ServiceError(const Context& ctx, const absl::Status& status);

int RunGet(Context& ctx);            // get TENANT KEY [--raw]
int RunList(Context& ctx);           // list TENANT [--prefix P] [--state S]...
int RunDelete(Context& ctx);         // delete TENANT KEY [--yes]
int RunTenantsList(Context& ctx);    // tenants list
int RunTenantsCreate(Context& ctx);  // tenants create NAME
int RunTenantsDrop(Context& ctx);    // tenants drop NAME --yes
int RunStats(Context& ctx);          // stats
int RunHealth(Context& ctx);         // health
int RunTokenNew(Context& ctx);       // token new TENANT
int RunBackup(Context& ctx);         // backup DIR
int RunCompact(Context& ctx);        // compact [--tenant=NAME]

}  // namespace idemkey::idemctl

#endif  // IDEMKEY_CLIENT_IDEMCTL_COMMANDS_H_
