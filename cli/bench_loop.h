// ConnectionLoop: one thread drives many client connections with epoll, as
// redis-benchmark (one event loop for all its clients) and a BullMQ Worker
// (one Node.js event loop for its whole concurrency) do.
//
// Why not a thread per connection: the load generator shares this machine's
// cores with the server it measures. Fifty blocked threads cost a context
// switch per reply on the client side, and on the server every reply then
// has to wake a different sleeping thread, which is most of what a reply's
// sendmsg costs under a hypervisor. One loop that is usually awake keeps
// both small, so the comparison measures the server, not the load generator.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace shim::cli {

class ConnectionLoop {
 public:
  // What a connection does after a reply line.
  struct Next {
    std::string send;   // bytes to write now (may be empty: wait for more replies)
    bool done = false;  // this connection has finished its share
    // The whole run is over: Run returns once `send` is written, without
    // waiting for what other connections still expect (e.g. claims that
    // would only time out).
    bool end_run = false;
  };
  // Called for each reply line (without the newline) on connection `conn`.
  using OnLine = std::function<Next(size_t conn, std::string_view line)>;

  // `fds` are connected, authenticated sockets whose clients have no
  // buffered input; the loop does not own them.
  explicit ConnectionLoop(std::vector<int> fds) : fds_(std::move(fds)) {}

  // Sends `first[i]` on connection i (an empty string means that connection
  // has nothing to do), then runs until every connection is done. An error
  // ends the whole run: a connection closed or failed, a send failed, or
  // for `reply_timeout_ms` no connection still running received anything.
  Status Run(const std::vector<std::string>& first, const OnLine& on_line,
             int reply_timeout_ms = 30'000);

 private:
  std::vector<int> fds_;
};

}  // namespace shim::cli
