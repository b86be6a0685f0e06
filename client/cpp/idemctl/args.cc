#include "idemctl/args.h"

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace idemkey::idemctl {
namespace {

const FlagSpec* FindLong(const std::vector<FlagSpec>& specs,
                         const std::string& name) {
  for (const FlagSpec& s : specs) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

const FlagSpec* FindShort(const std::vector<FlagSpec>& specs, char c) {
  for (const FlagSpec& s : specs) {
    if (s.short_name != 0 && s.short_name == c) return &s;
  }
  return nullptr;
}

}  // namespace

absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args,
                                     const std::vector<FlagSpec>& specs) {
  ParsedArgs out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      out.words.insert(out.words.end(), args.begin() + i + 1, args.end());
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      out.words.push_back(arg);  // includes "-" alone
      continue;
    }
    // --name[=value] or -n[=value].
    const bool is_long = absl::StartsWith(arg, "--");
    std::string name = arg.substr(is_long ? 2 : 1);
    std::string value;
    bool has_value = false;
    if (const size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    const FlagSpec* spec = nullptr;
    if (is_long) {
      spec = FindLong(specs, name);
    } else if (name.size() == 1) {
      spec = FindShort(specs, name[0]);
    }
    if (spec == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag \"", arg, "\""));
    }
    const std::string shown = absl::StrCat("--", spec->name);
    if (spec->value_name.empty()) {
      if (has_value) {
        return absl::InvalidArgumentError(
            absl::StrCat("flag ", shown, " takes no value"));
      }
    } else if (!has_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "flag ", shown, " needs a value (", spec->value_name, ")"));
      }
      value = args[++i];
    }
    out.flags[spec->name] = value;
  }
  return out;
}

}  // namespace idemkey::idemctl
