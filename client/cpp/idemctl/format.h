// format.h — how idemctl shows values to people and to scripts.
//
// Human output: times in RFC 3339 (UTC, whole seconds), durations like
// "23h59m", byte counts like "1.5 MiB", bytes as text when they are text and
// base64 otherwise, and aligned tables. Script output (-o json): protobuf's
// JSON printer with the proto field names.
//
//   Table t({"KEY", "STATE"});
//   t.AddRow({"order-1", "COMPLETED"});
//   t.Print(std::cout);                      // KEY      STATE
//                                            // order-1  COMPLETED
//   HumanDuration(absl::Minutes(1439));     // "23h59m"
//   FormatTime(record.created_at());         // "2024-05-01T12:00:00Z"
//   std::cout << ToJson(record) << "\n";     // {"key":"order-1",...}

#ifndef IDEMKEY_CLIENT_IDEMCTL_FORMAT_H_
#define IDEMKEY_CLIENT_IDEMCTL_FORMAT_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"

namespace idemkey::idemctl {

// Rows of cells printed as columns padded to their widest cell, two spaces
// apart; the last column is not padded.
class Table {
 public:
  Table() = default;
  explicit Table(std::vector<std::string> header);

  void AddRow(std::vector<std::string> row);
  void Print(std::ostream& out) const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// "2024-05-01T12:00:00Z"; "-" for an unset timestamp.
std::string FormatTime(const google::protobuf::Timestamp& t);

// Whole seconds, most significant units only: "23h59m", "24h", "5m30s",
// "12s", "0s"; negative durations get a leading "-".
std::string HumanDuration(absl::Duration d);
std::string HumanDuration(const google::protobuf::Duration& d);

// The time and how far it is from `now`: "2024-05-01T12:00:00Z (in 23h59m)"
// or "... (12s ago)"; "-" for an unset timestamp.
std::string FormatTimeFromNow(const google::protobuf::Timestamp& t,
                              absl::Time now);

// "512 B", "1.5 KiB", "3.0 MiB", ...
std::string FormatBytes(uint64_t bytes);

// Lowercase hex of every byte.
std::string Hex(absl::string_view bytes);

// Whether `bytes` is valid UTF-8 with no control characters other than tab,
// newline and carriage return: safe to print to a terminal as text.
bool IsPrintableText(absl::string_view bytes);

// `bytes` as text when IsPrintableText, else "<base64> (base64)".
std::string TextOrBase64(absl::string_view bytes);

// The message as one line of JSON: proto field names, every scalar field
// printed (zero values too), enums by name, bytes in base64.
std::string ToJson(const google::protobuf::Message& message);

}  // namespace idemkey::idemctl

#endif  // IDEMKEY_CLIENT_IDEMCTL_FORMAT_H_
