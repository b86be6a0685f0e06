// connection_poller.h — keeps a channel's connection attempts moving while no
// call waits on the channel.
//
// gRPC notices that a connection attempt ended (refused while idemkeyd is
// down, accepted once it is back) only when some thread polls. A client's
// calls fail fast while the channel reconnects, so between them nobody
// polls: a refused attempt then ran until its min_connect_timeout (1 s)
// before the next one started, and apps came back 1.3-1.4 s after idemkeyd
// served again (tests/e2e/http_middleware_test.cc, the restart under load;
// 0.5 s with this poller). gRPC's own backup poller runs every 5 s and is
// set only by an environment variable.
//
//   auto channel = grpc::CreateCustomChannel(...);
//   ConnectionPoller poller(channel);  // polls until destroyed
//
// Thread-safe. Owns one thread, which waits on the channel's state in slices
// of kSlice; destruction waits for the slice in progress.

#ifndef IDEMKEY_CLIENT_CPP_CLIENT_SRC_CONNECTION_POLLER_H_
#define IDEMKEY_CLIENT_CPP_CLIENT_SRC_CONNECTION_POLLER_H_

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "grpcpp/channel.h"

namespace idemkey::client {

class ConnectionPoller {
 public:
  static constexpr std::chrono::milliseconds kSlice{100};

  explicit ConnectionPoller(std::shared_ptr<grpc::Channel> channel);
  ~ConnectionPoller();

  ConnectionPoller(const ConnectionPoller&) = delete;
  ConnectionPoller& operator=(const ConnectionPoller&) = delete;

 private:
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace idemkey::client

#endif  // IDEMKEY_CLIENT_CPP_CLIENT_SRC_CONNECTION_POLLER_H_
