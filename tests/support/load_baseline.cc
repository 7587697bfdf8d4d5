#include "tests/support/load_baseline.h"

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "net/line_client.h"

namespace shim::testing {

namespace {

using Clock = std::chrono::steady_clock;

int64_t MsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

// 50 sleeps of 2 ms (about 0.1 s on a quiet machine): enough to meet the
// scheduler's longer delays under load.
int64_t WorstWakeupLateMs() {
  constexpr auto kSleep = std::chrono::milliseconds(2);
  int64_t worst = 0;
  for (int i = 0; i < 50; ++i) {
    const auto start = Clock::now();
    std::this_thread::sleep_for(kSleep);
    worst = std::max<int64_t>(worst, MsBetween(start + kSleep, Clock::now()));
  }
  return worst;
}

// 20 durable writes, one at a time.
int64_t WorstRoundTripMs(net::LineClient& client) {
  int64_t worst = 0;
  for (int i = 0; i < 20; ++i) {
    const auto start = Clock::now();
    auto r = client.Call("state.set", {{"key", "load-baseline/" + std::to_string(i)}, {"value", i}},
                         60'000);
    // A failed probe says nothing about the load; the test's own calls report the failure.
    if (r.ok()) worst = std::max(worst, MsBetween(start, Clock::now()));
  }
  return worst;
}

void Print(const LoadBaseline& b, bool with_server) {
  std::printf("[ load ] worst wakeup lateness %lld ms", static_cast<long long>(b.wakeup_late_ms));
  if (with_server)
    std::printf(", worst durable round trip %lld ms", static_cast<long long>(b.round_trip_ms));
  std::printf("\n");
}

}  // namespace

LoadBaseline MeasureLoad() {
  LoadBaseline b;
  b.wakeup_late_ms = WorstWakeupLateMs();
  Print(b, /*with_server=*/false);
  return b;
}

LoadBaseline MeasureLoad(net::LineClient& client) {
  LoadBaseline b;
  b.wakeup_late_ms = WorstWakeupLateMs();
  b.round_trip_ms = WorstRoundTripMs(client);
  Print(b, /*with_server=*/true);
  return b;
}

}  // namespace shim::testing
