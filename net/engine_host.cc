#include "net/engine_host.h"

#include <spdlog/spdlog.h>

namespace shim::net {

EngineHost::EngineHost(asio::io_context& io, engine::Engine& engine)
    : io_(io), engine_(engine), timer_(io), landed_signal_(io) {
  // Never expires: each land cancels the waits on it, and later waits wait
  // for the next. (Setting the expiry again would cancel other sessions'
  // waits.)
  landed_signal_.expires_at(std::chrono::steady_clock::time_point::max());
}

EngineHost::~EngineHost() {
  timer_.cancel();
  committer_.join();
}

void EngineHost::Pump() {
  if (engine_.ReadyToSeal()) {
    std::shared_ptr<engine::Group> group(engine_.Seal().release());
    asio::post(committer_, [this, group] {
      Status s = group->Write();
      asio::post(io_, [this, group, s] {
        const bool was_read_only = engine_.read_only().has_value();
        engine_.Land(*group, s);
        // Said once, when it happens: every later write is refused with
        // the same cause, which the log need not repeat.
        if (!was_read_only && engine_.read_only()) {
          spdlog::error(
              "the engine is read-only from now on: a group write failed ({}), and reloading from "
              "the store failed too ({}); reads go on, writes are refused with READ_ONLY until a "
              "restart",
              s.message(), engine_.read_only()->cause);
        }
        landed_signal_.cancel();
        Pump();
      });
    });
  }
  ArmTimer();
  CheckIdle();
}

void EngineHost::ArmTimer() {
  auto in = engine_.NextTimerInMs();
  if (!in) return;
  auto due = std::chrono::steady_clock::now() + std::chrono::milliseconds(*in);
  // Re-arm only when the next timer moved earlier (or the armed one fired):
  // re-arming on every request would cost a syscall-free but real cancel.
  if (due >= armed_for_) return;
  armed_for_ = due;
  timer_.expires_at(due);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec == asio::error::operation_aborted) return;
    armed_for_ = std::chrono::steady_clock::time_point::max();
    engine_.RunTimers();
    Pump();
  });
}

asio::awaitable<void> EngineHost::WaitForHeldReplies(size_t max_bytes) {
  while (engine_.held_reply_bytes() > max_bytes) {
    // Held replies are in the open group or the one in flight: ship the
    // open one, then wait for a land (each land releases a group's replies).
    Pump();
    if (engine_.held_reply_bytes() <= max_bytes) break;
    boost::system::error_code ec;
    co_await landed_signal_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

void EngineHost::WhenIdle(std::function<void()> done) {
  idle_waiters_.push_back(std::move(done));
  CheckIdle();
}

void EngineHost::CheckIdle() {
  if (idle_waiters_.empty() || engine_.busy()) return;
  auto waiters = std::move(idle_waiters_);
  idle_waiters_.clear();
  for (auto& w : waiters) w();
}

}  // namespace shim::net
