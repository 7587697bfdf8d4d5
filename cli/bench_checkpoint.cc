// `shim bench --workload checkpoint` (cli/bench_run.h).
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

// ---- checkpoint: each client opens a session, saves --payload-bytes
// checkpoints one after another, and closes it; latency is each save.
void CheckpointRun(Run& run, std::vector<std::unique_ptr<net::LineClient>>& clients) {
  if (clients.empty()) return;
  enum Phase { kOpening, kSaving, kClosing };
  const json data = {{"state", Payload(run.cfg.payload)}};
  std::vector<SerialConnection> conns(clients.size());
  std::vector<std::string> sids(clients.size()), first(clients.size());
  for (size_t i = 0; i < conns.size(); ++i) {
    sids[i] = run.cfg.names.name + "-" + std::to_string(i);
    first[i] = conns[i].Request("session.open", {{"session_id", sids[i]}, {"keep_checkpoints", 5}});
  }
  net::LatencyHistogram h;
  size_t saving =
      conns.size();  // clients not yet done saving: the time ends with the last one's last save
  auto done_saving = [&] {
    if (--saving == 0) run.MarkEnd();
  };
  RunOnLoop(
      run, clients, first,
      [&](size_t i, std::string_view line) {
        SerialConnection& c = conns[i];
        Result<json> r = UnwrapLineCountingErrors(run, line);
        if (c.phase == kClosing) return ConnectionLoop::Next{{}, true};
        if (c.phase == kOpening && !r.ok()) {
          done_saving();
          return ConnectionLoop::Next{{}, true};
        }
        if (c.phase == kSaving) h.Record(static_cast<uint64_t>(MicrosSince(c.sent)));
        if (run.Take()) {
          c.phase = kSaving;
          return ConnectionLoop::Next{
              c.Request("checkpoint.save", {{"session_id", sids[i]}, {"data", data}})};
        }
        done_saving();
        c.phase = kClosing;
        return ConnectionLoop::Next{c.Request("session.close", {{"session_id", sids[i]}})};
      },
      h);
}

}  // namespace shim::cli::bench
