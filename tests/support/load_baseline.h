// Timing windows from the load, not from luck. A test whose verdict needs
// "this happens within W ms" (a renewal before a lease runs out, a line
// before its timeout, a holder's write before its lock's TTL) measures how
// slow this machine is right now and derives W from that, instead of a
// constant that holds on a quiet machine and fails on a loaded one.
//
// Two measurements: how late a sleeping thread wakes (CPU contention: the
// test's threads, its child processes and the server all wait like this)
// and, given a server, the slowest round trip of a durable write (its
// scheduling, group commit and fsync). A window is then a number of such
// slow steps, never less than the window the test was written for.
#pragma once

#include <algorithm>
#include <cstdint>

namespace shim::net {
class LineClient;
}

namespace shim::testing {

struct LoadBaseline {
  int64_t wakeup_late_ms = 0;  // the worst lateness of a short sleep
  int64_t round_trip_ms = 0;   // the worst round trip of a durable state.set (0 without a server)

  // The slowest step a test's timing must absorb: a late wakeup, then a
  // slow durable round trip.
  int64_t step_ms() const { return std::max<int64_t>(1, wakeup_late_ms + round_trip_ms); }
  // A window for `steps` slow steps, never below `floor_ms` (the window
  // that holds on a quiet machine).
  int64_t Window(int64_t floor_ms, int steps) const {
    return std::max<int64_t>(floor_ms, steps * step_ms());
  }
};

// Measures the wakeup lateness only (before a server is started, e.g. to
// choose the timeouts it is started with), and prints it.
LoadBaseline MeasureLoad();
// Measures both, the round trip through `client` (writing a key under
// "load-baseline/"), and prints them.
LoadBaseline MeasureLoad(net::LineClient& client);

}  // namespace shim::testing
