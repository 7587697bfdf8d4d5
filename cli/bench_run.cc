// Connection helpers shared by the workloads of `shim bench` (cli/bench_run.h).
#include "cli/bench_run.h"

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
#include "cli/client_util.h"
#include "cli/commands.h"
#include "cli/paths.h"
#include "engine/json_parse.h"
#include "net/jsonrpc.h"
#include "net/latency_histogram.h"
#include "storage/store.h"

namespace shim::cli::bench {

std::unique_ptr<net::LineClient> Connect(const BenchConfig& cfg, Run& run) {
  auto c = cfg.connect();
  if (!c.ok()) {
    run.Error(c.status());
    run.stop = true;
    return nullptr;
  }
  return std::move(c).value();
}

// `count` connections for a ConnectionLoop; none if one fails (the run
// then has the error and stops).
std::vector<std::unique_ptr<net::LineClient>> ConnectAll(Run& run, int count) {
  std::vector<std::unique_ptr<net::LineClient>> clients;
  for (int i = 0; i < count; ++i) {
    auto c = Connect(run.cfg, run);
    if (!c) return {};
    clients.push_back(std::move(c));
  }
  return clients;
}

std::vector<int> Fds(const std::vector<std::unique_ptr<net::LineClient>>& clients) {
  std::vector<int> fds;
  for (const auto& c : clients) fds.push_back(c->fd());
  return fds;
}

// Runs `on_line` over `clients` from one ConnectionLoop (this thread):
// records the loop's own failure and merges `h`, which on_line fills.
void RunOnLoop(Run& run, const std::vector<std::unique_ptr<net::LineClient>>& clients,
               const std::vector<std::string>& first, const ConnectionLoop::OnLine& on_line,
               const net::LatencyHistogram& h) {
  ConnectionLoop loop(Fds(clients));
  if (Status s = loop.Run(first, on_line); !s.ok()) run.Error(s);
  run.Merge(h);
}

// A reply line's result, or its error (also for a line that is not JSON).
Result<json> UnwrapLine(std::string_view line) {
  Result<json> reply = ParseJson(line, kMaxShimJsonDepth);
  if (!reply.ok())
    return Status::Internal("the server sent a line shim cannot read: " + reply.status().message());
  return net::LineClient::Unwrap(reply.value());
}

Result<json> UnwrapLineCountingErrors(Run& run, std::string_view line) {
  Result<json> r = UnwrapLine(line);
  if (!r.ok()) run.Error(r.status());
  return r;
}

}  // namespace shim::cli::bench
