// `shim bench --workload lock` (cli/bench_run.h).
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cli/bench_loop.h"
#include "cli/bench_run.h"
#include "cli/client_util.h"
#include "cli/commands.h"
#include "cli/paths.h"
#include "engine/json_parse.h"
#include "net/jsonrpc.h"
#include "net/latency_histogram.h"
#include "storage/store.h"

namespace shim::cli::bench {

// ---- lock: every client loops acquire(wait) -> release on one lock;
// latency is the wait for each grant, throughput the hand-offs.
void LockRun(Run& run, std::vector<std::unique_ptr<net::LineClient>>& clients) {
  if (clients.empty()) return;
  enum Phase { kAcquiring, kReleasing };
  const std::string lock = run.cfg.names.name + "-lock";
  std::vector<SerialConnection> conns(clients.size());
  auto acquire = [&](size_t i) {
    conns[i].phase = kAcquiring;
    return conns[i].Request("lock.acquire", {{"name", lock},
                                             {"owner", "c" + std::to_string(i)},
                                             {"ttl_ms", 10'000},
                                             {"wait_ms", 30'000}});
  };
  std::vector<std::string> first(clients.size());
  for (size_t i = 0; i < conns.size(); ++i) {
    if (run.Take()) first[i] = acquire(i);
  }
  net::LatencyHistogram h;
  RunOnLoop(
      run, clients, first,
      [&](size_t i, std::string_view line) {
        SerialConnection& c = conns[i];
        Result<json> r = UnwrapLineCountingErrors(run, line);
        if (c.phase == kAcquiring && r.ok()) {
          h.Record(static_cast<uint64_t>(MicrosSince(c.sent)));
          c.phase = kReleasing;
          return ConnectionLoop::Next{
              c.Request("lock.release", {{"name", lock}, {"token", (*r)["token"]}})};
        }
        if (run.Take()) return ConnectionLoop::Next{acquire(i)};
        return ConnectionLoop::Next{{}, true};
      },
      h);
}

}  // namespace shim::cli::bench
