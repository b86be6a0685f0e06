#include "server/daemon/listen_probe.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace idemkey {
namespace {

// What to do about a bind(2) failure, after strerror's words.
const char* AdviceFor(int error) {
  switch (error) {
    case EADDRINUSE:
      return "another process listens there (another idemkeyd?); stop it or "
             "choose another --listen";
    case EADDRNOTAVAIL:
      return "no network interface of this machine has that address; choose "
             "one it has, or 0.0.0.0 for all";
    case EACCES:
      return "ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a "
             "higher port";
    default:
      return "check --listen";
  }
}

// 0 when an address of `info` could be bound, else the errno of the first
// failure.
int BindAny(const addrinfo* info) {
  int first_error = 0;
  for (const addrinfo* a = info; a != nullptr; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) {
      if (first_error == 0) first_error = errno;
      continue;
    }
    const int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    const int bound = bind(fd, a->ai_addr, a->ai_addrlen);
    const int bind_error = errno;
    close(fd);
    if (bound == 0) return 0;
    if (first_error == 0) first_error = bind_error;
  }
  return first_error;
}

}  // namespace

absl::Status ProbeListenAddress(absl::string_view listen) {
  if (absl::StartsWith(listen, "unix:") || absl::StrContains(listen, "://")) {
    return absl::OkStatus();
  }
  const size_t colon = listen.rfind(':');
  if (colon == absl::string_view::npos || colon + 1 == listen.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen=", listen,
                     " has no port; write host:port, e.g. 127.0.0.1:50051 "
                     "(port 0 picks a free one)"));
  }
  std::string host(listen.substr(0, colon));
  const std::string port(listen.substr(colon + 1));
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* info = nullptr;
  const int resolved = getaddrinfo(host.empty() ? nullptr : host.c_str(),
                                   port.c_str(), &hints, &info);
  if (resolved != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot listen on ", listen, ": ", gai_strerror(resolved),
                     "; check the host and port of --listen"));
  }
  const int error = BindAny(info);
  freeaddrinfo(info);
  if (error == 0) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat("cannot listen on ", listen,
                                                    ": ", std::strerror(error),
                                                    "; ", AdviceFor(error)));
}

}  // namespace idemkey
