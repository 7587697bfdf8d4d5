#include "net/engine_host.h"

namespace shim::net {

EngineHost::EngineHost(asio::io_context& io, engine::Engine& engine)
    : io_(io), engine_(engine), timer_(io) {}

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
        engine_.Land(*group, s);
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
