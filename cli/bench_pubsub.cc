// `shim bench --workload pubsub` (cli/bench_run.h).
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

// ---- pubsub: one publisher, N subscribers; counts deliveries.
//
// The subscribers share one ConnectionLoop thread, as the peer's subscribers
// share one Node.js process. A delivery is recognised by the fixed start of
// the server's notification line (its members are written in sorted order)
// and only counted; one in kLatencySampleEvery deliveries per subscriber is
// parsed for its publish time, which feeds the latency histogram. Parsing
// every delivery made the load generator, not the server, the bound: 4.3 us
// of client CPU per delivery against 3 us of server CPU. Any line without
// that start is parsed in full and classified.
namespace {

constexpr std::string_view kMessagePrefix = R"({"jsonrpc":"2.0","method":"pubsub.message",)";

struct Subscriber {
  bool subscribed = false;
  int64_t got = 0;
};

// Handles one line on a subscriber connection; returns false when the run
// must end (an error was recorded).
bool OnSubscriberLine(Run& run, Subscriber& sub, std::string_view line, net::LatencyHistogram& h) {
  const bool is_message = line.substr(0, kMessagePrefix.size()) == kMessagePrefix;
  if (is_message && sub.got % kLatencySampleEvery != 0) {  // the first, then every 16th, is sampled
    ++sub.got;
    return true;
  }
  Result<json> parsed = ParseJson(line, kMaxShimJsonDepth);
  if (!parsed.ok())
    return run.Error(Status::Internal("the server sent a line shim cannot read")), false;
  json& n = parsed.value();
  if (!sub.subscribed) {  // the first line answers pubsub.subscribe
    auto r = net::LineClient::Unwrap(n);
    if (!r.ok()) return run.Error(r.status()), false;
    sub.subscribed = true;
    return true;
  }
  const std::string method = n.value("method", "");
  if (method == "pubsub.dropped") {
    return run.Error(Status(StatusCode::kOverloaded, "subscriber dropped as a slow consumer")),
           false;
  }
  if (method != "pubsub.message") return true;  // nothing else is expected; not a delivery
  const int64_t now_us =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch())
          .count();
  const json& t = n["params"]["data"]["t"];
  if (t.is_number_integer()) h.Record(static_cast<uint64_t>(now_us - t.get<int64_t>()));
  ++sub.got;
  return true;
}

}  // namespace

void PubSubRun(Run& run, int64_t total) {
  const std::string& channel = run.cfg.names.name;
  std::vector<std::unique_ptr<net::LineClient>> sub_clients = ConnectAll(run, run.cfg.subscribers);
  if (sub_clients.empty()) return;
  std::atomic<int> ready{0};
  std::atomic<int64_t> delivered{0};
  std::thread subscribers([&] {
    std::vector<Subscriber> subs(sub_clients.size());
    const std::string subscribe =
        net::EncodeLine(net::RequestMessage(1, "pubsub.subscribe", {{"channel", channel}}));
    const std::vector<std::string> first(sub_clients.size(), subscribe);
    net::LatencyHistogram h;
    ConnectionLoop loop(Fds(sub_clients));
    Status s = loop.Run(first, [&](size_t i, std::string_view line) {
      Subscriber& sub = subs[i];
      const bool was_subscribed = sub.subscribed;
      const int64_t before = sub.got;
      if (!OnSubscriberLine(run, sub, line, h)) {
        run.stop = true;
        return ConnectionLoop::Next{.send = {}, .done = true};
      }
      if (!was_subscribed && sub.subscribed) ready++;
      if (sub.got > before)
        run.done.store(delivered.fetch_add(sub.got - before) + (sub.got - before));
      return ConnectionLoop::Next{.send = {}, .done = sub.got >= total || run.stop};
    });
    // After a failure elsewhere the publisher shuts these connections to
    // end the loop: that closing is not another error.
    if (!s.ok() && !run.stop) {
      run.Error(s);
      run.stop = true;
    }
    run.Merge(h);
  });
  while (ready < run.cfg.subscribers && !run.stop)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto pub = run.stop ? nullptr : Connect(run.cfg, run);
  if (pub) {
    run.StartClock();  // the subscribers are subscribed, the publisher connected
    const std::string pad = Payload(run.cfg.payload);
    std::deque<uint64_t> inflight;
    auto settle_oldest = [&] {
      auto r = pub->ReadResponse(inflight.front());
      inflight.pop_front();
      if (r.ok()) r = net::LineClient::Unwrap(*r);
      if (!r.ok()) {
        run.Error(r.status());
        run.stop = true;
      }
    };
    for (int64_t i = 0; i < total && !run.stop; ++i) {
      const int64_t now_us =
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch())
              .count();
      auto id = pub->SendRequest("pubsub.publish",
                                 {{"channel", channel}, {"data", {{"t", now_us}, {"p", pad}}}});
      if (!id.ok()) {
        run.Error(id.status());
        run.stop = true;
        break;
      }
      inflight.push_back(*id);
      if (static_cast<int>(inflight.size()) >= std::max(1, run.cfg.pipeline)) settle_oldest();
      run.done.store(delivered.load());
    }
    while (!inflight.empty() && !run.stop) settle_oldest();
  }
  // The subscribers wait for `total` deliveries each; after a failure they
  // would wait for their reply timeout instead, so end their loop now.
  if (run.stop) {
    for (const auto& c : sub_clients) ::shutdown(c->fd(), SHUT_RDWR);
  }
  subscribers.join();
  run.done.store(delivered.load());
}

}  // namespace shim::cli::bench
