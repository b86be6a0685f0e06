// log.h — one-line log messages to stderr, with a UTC timestamp.
//
//   util::Log(util::LogLevel::kInfo, absl::StrCat("listening on ", addr));
//   // 2026-11-22T14:50:43.123Z INFO listening on 127.0.0.1:50051
//
// Callers never log secrets (tokens, response bodies): messages name keys and
// tenants only.

#ifndef IDEMKEY_SERVER_UTIL_LOG_H_
#define IDEMKEY_SERVER_UTIL_LOG_H_

#include "absl/strings/string_view.h"

namespace idemkey::util {

enum class LogLevel { kInfo, kWarning, kError };

// Thread-safe: each message is written with one write(2).
void Log(LogLevel level, absl::string_view message);

}  // namespace idemkey::util

#endif  // IDEMKEY_SERVER_UTIL_LOG_H_
