#include "connection_poller.h"

#include <utility>

namespace idemkey::client {

ConnectionPoller::ConnectionPoller(std::shared_ptr<grpc::Channel> channel)
    : thread_([this, channel = std::move(channel)] {
        grpc_connectivity_state state =
            channel->GetState(/*try_to_connect=*/false);
        while (!stopping_.load(std::memory_order_relaxed)) {
          // Polls while it waits, which is the point.
          channel->WaitForStateChange(
              state, std::chrono::system_clock::now() + kSlice);
          state = channel->GetState(/*try_to_connect=*/false);
        }
      }) {}

ConnectionPoller::~ConnectionPoller() {
  stopping_.store(true, std::memory_order_relaxed);
  thread_.join();
}

}  // namespace idemkey::client
