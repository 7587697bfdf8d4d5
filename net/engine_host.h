// EngineHost: runs the engine on the server's io_context and does its group
// commits on a dedicated committer thread.
//
// The io_context is single-threaded: sessions call the engine directly, so
// every engine call happens on that one thread. After each engine call the
// caller invokes Pump(): if a group is open and none is in flight, it is
// sealed and its WriteBatch written (and fsynced) on the committer thread
// while the io thread keeps applying requests into the next group. When the
// write returns, the group lands back on the io thread, which releases its
// replies and ships the next group. This is LevelDB-style group commit: the
// more clients wait, the more requests ride on one fsync.
// Pump also keeps one steady_timer armed for the engine's next timer.
#pragma once

#include <functional>
#include <memory>

#include "engine/engine.h"
#include "net/asio.h"

namespace shim::net {

class EngineHost {
 public:
  EngineHost(asio::io_context& io, engine::Engine& engine);
  ~EngineHost();  // waits for the committer thread

  engine::Engine& engine() { return engine_; }
  // Ships the open group if possible and re-arms the timer. Cheap; call it
  // after every batch of engine calls.
  void Pump();
  // Calls `done` once nothing is pending or in flight.
  void WhenIdle(std::function<void()> done);
  // Returns once the replies the engine holds until a commit lands are at
  // most `max_bytes` (shipping the open group so that they can land). A
  // session calls it before each request: reads answered while a slow
  // commit is in flight wait in memory, and this bounds that memory for
  // the whole server. io thread only.
  asio::awaitable<void> WaitForHeldReplies(size_t max_bytes);

 private:
  void ArmTimer();
  void CheckIdle();

  asio::io_context& io_;
  engine::Engine& engine_;
  asio::thread_pool committer_{1};
  asio::steady_timer timer_;
  asio::steady_timer landed_signal_;  // wakes WaitForHeldReplies at each land
  std::chrono::steady_clock::time_point armed_for_ = std::chrono::steady_clock::time_point::max();
  std::vector<std::function<void()>> idle_waiters_;
};

}  // namespace shim::net
