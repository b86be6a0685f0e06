#include "server/metrics/exposition.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace idemkey::metrics {

std::string FormatDouble(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

std::string EscapeLabelValue(absl::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

void TextWriter::Family(absl::string_view name, absl::string_view type,
                        absl::string_view help) {
  std::string escaped;
  for (char c : help) {
    if (c == '\\') {
      escaped += "\\\\";
    } else if (c == '\n') {
      escaped += "\\n";
    } else {
      escaped += c;
    }
  }
  absl::StrAppend(&out_, "# HELP ", name, " ", escaped, "\n# TYPE ", name, " ",
                  type, "\n");
}

void TextWriter::Labels(std::initializer_list<Label> labels) {
  if (labels.size() == 0) return;
  out_ += '{';
  bool first = true;
  for (const Label& l : labels) {
    if (!first) out_ += ',';
    first = false;
    absl::StrAppend(&out_, l.first, "=\"", EscapeLabelValue(l.second), "\"");
  }
  out_ += '}';
}

void TextWriter::Sample(absl::string_view name,
                        std::initializer_list<Label> labels, uint64_t value) {
  out_.append(name.data(), name.size());
  Labels(labels);
  absl::StrAppend(&out_, " ", value, "\n");
}

void TextWriter::Sample(absl::string_view name,
                        std::initializer_list<Label> labels, double value) {
  out_.append(name.data(), name.size());
  Labels(labels);
  absl::StrAppend(&out_, " ", FormatDouble(value), "\n");
}

}  // namespace idemkey::metrics
