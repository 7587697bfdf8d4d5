// Clock: the engine's only source of time, injected so tests drive it by hand.
//
// Two readings: NowMs() is wall-clock Unix epoch ms, used for data times that
// are stored (key TTLs, published_at_ms, delayed runs). MonoMs() is a
// monotonic reading used for liveness (leases, heartbeats, waits), which must
// not jump when the wall clock is adjusted.
// SystemClock is thread-safe; FakeClock is for single-threaded tests.
#pragma once

#include <cstdint>

namespace shim::engine {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMs() const = 0;
  virtual int64_t MonoMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowMs() const override;
  int64_t MonoMs() const override;
};

// Starts at a fixed, realistic epoch time; both readings advance together,
// unless AdjustWall moves the wall clock alone (an operator or NTP setting
// it, possibly backwards), as a real wall clock can.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t now_ms = 1'760'000'000'000) : now_ms_(now_ms) {}
  int64_t NowMs() const override { return now_ms_; }
  int64_t MonoMs() const override { return mono_ms_; }
  void Advance(int64_t ms) {
    now_ms_ += ms;
    mono_ms_ += ms;
  }
  void AdjustWall(int64_t ms) { now_ms_ += ms; }

 private:
  int64_t now_ms_;
  int64_t mono_ms_ = 1'000'000;
};

}  // namespace shim::engine
