#include "idemctl/format.h"

#include <algorithm>
#include <cstdlib>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/util/json_util.h"

namespace idemkey::idemctl {

Table::Table(std::vector<std::string> header) {
  rows_.push_back(std::move(header));
}

void Table::AddRow(std::vector<std::string> row) {
  rows_.push_back(std::move(row));
}

void Table::Print(std::ostream& out) const {
  std::vector<size_t> widths;
  for (const auto& row : rows_) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  for (const auto& row : rows_) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    out << line << "\n";
  }
}

namespace {

absl::Time ToAbsl(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

}  // namespace

std::string FormatTime(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", ToAbsl(t), absl::UTCTimeZone());
}

std::string HumanDuration(absl::Duration d) {
  const bool negative = d < absl::ZeroDuration();
  const int64_t total = std::llabs(absl::ToInt64Seconds(d));
  const int64_t hours = total / 3600;
  const int64_t minutes = total % 3600 / 60;
  const int64_t seconds = total % 60;
  std::string out = negative && total > 0 ? "-" : "";
  if (hours > 0) {
    absl::StrAppend(&out, hours, "h");
    if (minutes > 0) absl::StrAppend(&out, minutes, "m");
  } else if (minutes > 0) {
    absl::StrAppend(&out, minutes, "m");
    if (seconds > 0) absl::StrAppend(&out, seconds, "s");
  } else {
    absl::StrAppend(&out, seconds, "s");
  }
  return out;
}

std::string HumanDuration(const google::protobuf::Duration& d) {
  return HumanDuration(absl::Seconds(d.seconds()) +
                       absl::Nanoseconds(d.nanos()));
}

std::string FormatTimeFromNow(const google::protobuf::Timestamp& t,
                              absl::Time now) {
  if (t.seconds() == 0 && t.nanos() == 0) return "-";
  const absl::Duration left = ToAbsl(t) - now;
  if (left >= absl::ZeroDuration()) {
    return absl::StrCat(FormatTime(t), " (in ", HumanDuration(left), ")");
  }
  return absl::StrCat(FormatTime(t), " (", HumanDuration(-left), " ago)");
}

std::string FormatBytes(uint64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  return absl::StrFormat("%.1f %s", value, kUnits[unit]);
}

std::string Hex(absl::string_view bytes) {
  return absl::BytesToHexString(bytes);
}

bool IsPrintableText(absl::string_view bytes) {
  size_t i = 0;
  while (i < bytes.size()) {
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
        return false;
      }
      ++i;
      continue;
    }
    // Multi-byte sequence: length from the lead byte, then the range of the
    // code point rules out overlong forms, surrogates and > U+10FFFF.
    size_t len;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > bytes.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      const unsigned char cc = static_cast<unsigned char>(bytes[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
      return false;
    }
    // C1 control characters are as unsafe on a terminal as C0 ones.
    if (cp >= 0x80 && cp <= 0x9f) return false;
    i += len;
  }
  return true;
}

std::string TextOrBase64(absl::string_view bytes) {
  if (IsPrintableText(bytes)) return std::string(bytes);
  return absl::StrCat(absl::Base64Escape(bytes), " (base64)");
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  // Printing a well-formed message cannot fail; an error would leave an
  // empty string, which a script would notice.
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

}  // namespace idemkey::idemctl
