// args.h — a small command-line splitter for idemctl.
//
// Splits argv into words (the verb, its sub-verb and arguments, in order) and
// flags, wherever the flags appear. Every flag has a long name and maybe a
// one-letter short name; it either takes a value or is a switch. Accepted
// forms: --name=value, --name value, -n value, -n=value, --switch, -s; "--"
// ends the flags (so a key may start with "-"); a flag given twice keeps the
// last value. Which flags a verb accepts is checked by the caller.
//
//   const std::vector<FlagSpec> specs = {
//       {"output", 'o', "FORMAT", "table or json"},
//       {"yes", 0, "", "do not ask"}};
//   absl::StatusOr<ParsedArgs> p =
//       ParseArgs({"delete", "acme", "-o", "json", "k1", "--yes"}, specs);
//   // p->words == {"delete", "acme", "k1"}
//   // p->flags == {{"output", "json"}, {"yes", ""}}

#ifndef IDEMKEY_CLIENT_IDEMCTL_ARGS_H_
#define IDEMKEY_CLIENT_IDEMCTL_ARGS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace idemkey::idemctl {

struct FlagSpec {
  std::string name;        // long name, without "--"
  char short_name = 0;     // 0: none
  std::string value_name;  // e.g. "N"; empty for a switch
  std::string help;        // one line
};

struct ParsedArgs {
  // Everything that is not a flag, in order.
  std::vector<std::string> words;
  // Long flag name -> value ("" for a switch).
  std::map<std::string, std::string> flags;

  bool Has(const std::string& name) const { return flags.count(name) > 0; }
};

// INVALID_ARGUMENT with a one-line message for an unknown flag, a flag
// missing its value, or a value given to a switch.
absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args,
                                     const std::vector<FlagSpec>& specs);

}  // namespace idemkey::idemctl

#endif  // IDEMKEY_CLIENT_IDEMCTL_ARGS_H_
