// `shim bench --workload state` (cli/bench_run.h).
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

namespace {

// ---- state: set/get/incr/cas over a key space. With --pipeline N a client
// writes N requests with one send, then reads their N replies, as
// redis-benchmark -P N does. Request lines are appended as text and replies
// are only searched for an "error" member: this client shares the machine's
// cores with the server it measures, so its own per-request cost (a JSON
// document built and dumped, one send per request, every reply parsed) must
// stay small, or the comparison measures the load generator.
void AppendStateRequest(std::string& out, uint64_t id, std::string_view method,
                        std::string_view key, const std::string* value, int64_t expected_version) {
  char digits[24];
  auto number = [&](int64_t v) {
    auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), v);
    (void)ec;
    out.append(digits, end);
  };
  out += R"({"jsonrpc":"2.0","id":)";
  number(static_cast<int64_t>(id));
  out += R"(,"method":")";
  out += method;
  out += R"(","params":{"key":")";
  out += key;  // "bench/<pid>/<n>": nothing to escape
  out += '"';
  if (value) {
    out += R"(,"value":")";
    out += *value;  // 'x' * payload: nothing to escape
    out += '"';
  }
  if (expected_version >= 0) {
    out += R"(,"expected_version":)";
    number(expected_version);
  }
  out += "}}\n";
}

// Whether a reply line is an error other than VERSION_CONFLICT (conflicts of
// --op cas count as answered). Only lines that mention "error" are parsed.
Status ReplyStatus(std::string_view line) {
  if (line.find("\"error\"") == std::string::npos) return Status::Ok();
  auto u = UnwrapLine(line);
  if (u.ok() || u.status().code() == StatusCode::kVersionConflict) return Status::Ok();
  return u.status();
}

// One connection's share of the state workload.
struct StateConnection {
  std::mt19937_64 rng;
  uint64_t next_id = 1;
  int owed = 0;  // replies still to come for the batch in flight
  Clock::time_point sent;
};

// The next batch of up to --pipeline requests on `c`; empty once the run's
// budget is spent.
std::string NextStateBatch(Run& run, StateConnection& c, const std::string& value) {
  std::string batch;
  std::string key;
  int n = 0;
  while (n < run.cfg.pipeline && run.Take()) {
    std::string_view op = run.cfg.op;
    if (op == "mixed") {
      int r = static_cast<int>(c.rng() % 100);
      op = r < 50 ? "set" : r < 80 ? "get" : r < 90 ? "incr" : "cas";
    }
    key = run.cfg.names.key_prefix + (op == "incr" ? "counter/" : "") +
          std::to_string(c.rng() % run.cfg.keys);
    if (op == "set") {
      AppendStateRequest(batch, c.next_id++, "state.set", key, &value, -1);
    } else if (op == "get") {
      AppendStateRequest(batch, c.next_id++, "state.get", key, nullptr, -1);
    } else if (op == "incr") {
      AppendStateRequest(batch, c.next_id++, "state.incr", key, nullptr, -1);
    } else {  // cas: a conditional write that may conflict
      AppendStateRequest(batch, c.next_id++, "state.set", key, &value,
                         static_cast<int64_t>(c.rng() % 3));
    }
    ++n;
  }
  c.owed = n;
  c.sent = Clock::now();
  return batch;
}

}  // namespace

// All --clients connections driven from this one thread (ConnectionLoop),
// as redis-benchmark drives its clients.
void StateRun(Run& run, std::vector<std::unique_ptr<net::LineClient>>& clients) {
  if (clients.empty()) return;
  const std::string value = Payload(run.cfg.payload);
  std::vector<StateConnection> conns(clients.size());
  std::vector<std::string> first(clients.size());
  for (size_t i = 0; i < conns.size(); ++i) {
    conns[i].rng.seed(i * 7919 + 1);
    first[i] = NextStateBatch(run, conns[i], value);
  }
  net::LatencyHistogram h;
  RunOnLoop(
      run, clients, first,
      [&](size_t i, std::string_view line) {
        StateConnection& c = conns[i];
        if (Status st = ReplyStatus(line); !st.ok()) run.Error(st);
        h.Record(static_cast<uint64_t>(MicrosSince(c.sent)));
        if (--c.owed > 0) return ConnectionLoop::Next{};
        ConnectionLoop::Next next{NextStateBatch(run, c, value)};
        next.done = next.send.empty();
        return next;
      },
      h);
}

}  // namespace shim::cli::bench
