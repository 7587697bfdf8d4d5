// `shim bench --workload queue` (cli/bench_run.h).
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

// ---- queue: a producer submits in batches; W workers claim -> complete.
// Latency is submit -> complete of each task (the submit time travels in
// the payload), so with --prefill it is mostly the wait in the backlog.
//
// With `backlog` > 0 the producer keeps at most that many tasks waiting; 0
// submits everything at once (--prefill), in batches of 1000 like the
// BullMQ side's addBulk.
void QueueProducer(Run& run, const std::string& queue, std::atomic<int64_t>& submitted,
                   int64_t total, int64_t backlog) {
  auto c = Connect(run.cfg, run);
  if (!c) return;
  const std::string pad = Payload(run.cfg.payload);
  std::mt19937_64 rng(42);
  const int batch = backlog > 0 ? 100 : 1000;
  while (!run.stop && submitted < total) {
    json tasks = json::array();
    for (int i = 0; i < batch && submitted < total; ++i, ++submitted) {
      const int64_t now_us =
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch())
              .count();
      tasks.push_back({{"queue", queue},
                       {"payload", {{"t", now_us}, {"pad", pad}}},
                       {"priority", static_cast<int>(1 + rng() % 10)},
                       {"max_attempts", 3},
                       {"backoff", {{"type", "fixed"}, {"delay_ms", 0}}}});
    }
    auto r = c->Call("task.submit_batch", {{"tasks", tasks}});
    if (!r.ok()) {
      run.Error(r.status());
      run.stop = true;  // the workers would wait for tasks that never come
      return;
    }
    // Keep a bounded backlog so latency measures the system, not the queue.
    while (backlog > 0 && !run.stop && submitted - run.done.load() > backlog) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
}

namespace {

// One worker connection of the queue workload.
struct QueueConnection {
  std::string worker;
  std::mt19937_64 rng;
  uint64_t next_id = 1;
  json tasks = json::array();   // claimed, not yet finished
  bool claiming = false;        // the request in flight is a task.claim
  int64_t finishing_t_us = -1;  // the submit time of the task being completed; -1: none
};

std::string RequestLine(QueueConnection& c, std::string_view method, const json& params) {
  return net::EncodeLine(net::RequestMessage(c.next_id++, method, params));
}

// The worker's next request: a waiting claim when it holds no task, else
// finishing its next task. Like a BullMQ Worker fetching its next job as it
// finishes one, the complete / fail also claims the next task (claim_next,
// without waiting: the answer, and so the count of finished tasks, is not
// held back when the queue is momentarily empty) once the worker's tasks run
// out: one round trip per task. Empty: the run is over.
std::string NextQueueRequest(Run& run, QueueConnection& c, const json& claim, int64_t total) {
  if (run.stop || run.done.load() >= total) return {};
  c.claiming = c.tasks.empty();
  c.finishing_t_us = -1;
  if (c.claiming) return RequestLine(c, "task.claim", claim);
  const json t = std::move(c.tasks[0]);
  c.tasks.erase(c.tasks.begin());
  const json next = c.tasks.empty() && run.done.load() + 1 < total
                        ? json{{"queues", claim["queues"]}, {"worker_id", claim["worker_id"]}}
                        : json(nullptr);
  const bool fail = run.cfg.fail_rate > 0 &&
                    std::uniform_real_distribution<>(0, 1)(c.rng) < run.cfg.fail_rate &&
                    t["attempt"].get<int>() == 1;
  if (fail) {  // not done: it comes back as a retry
    return RequestLine(c, "task.fail",
                       {{"task_id", t["task_id"]},
                        {"lease_token", t["lease_token"]},
                        {"error", "bench"},
                        {"claim_next", next}});
  }
  c.finishing_t_us = t["payload"]["t"].get<int64_t>();
  return RequestLine(
      c, "task.complete",
      {{"task_id", t["task_id"]}, {"lease_token", t["lease_token"]}, {"claim_next", next}});
}

}  // namespace

// W workers, all driven from this one thread (ConnectionLoop), as one
// BullMQ Worker runs its whole concurrency on one Node.js event loop.
void QueueWorkersRun(Run& run, std::vector<std::unique_ptr<net::LineClient>>& clients,
                     const std::string& queue, int64_t total) {
  if (clients.empty()) return run.Stop();
  std::vector<QueueConnection> conns(clients.size());
  std::vector<json> claims(clients.size());
  std::vector<std::string> first(clients.size());
  for (size_t i = 0; i < conns.size(); ++i) {
    conns[i].worker = run.cfg.names.name + "-w" + std::to_string(i);
    conns[i].rng.seed(i + 1);
    claims[i] = {{"queues", {queue}}, {"worker_id", conns[i].worker}, {"wait_ms", 200}};
    first[i] = NextQueueRequest(run, conns[i], claims[i], total);
  }
  net::LatencyHistogram h;
  RunOnLoop(
      run, clients, first,
      [&](size_t i, std::string_view line) {
        QueueConnection& c = conns[i];
        Result<json> r = UnwrapLine(line);
        if (!r.ok()) {
          run.Error(r.status());
          if (c.claiming)
            return ConnectionLoop::Next{{}, true};  // this worker cannot claim: it stops
        } else {
          if (r->contains("tasks")) c.tasks = std::move((*r)["tasks"]);
          // A completion answered after --duration ran out is not counted.
          if (c.finishing_t_us >= 0 && !run.stop) {
            const int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                       Clock::now().time_since_epoch())
                                       .count();
            h.Record(static_cast<uint64_t>(now_us - c.finishing_t_us));
            if (run.done.fetch_add(1) + 1 == total) {
              // The last task is done: the time stops here, as the BullMQ side's
              // does at its Nth completion, not when the idle workers' waiting
              // claims would time out.
              run.MarkEnd();
              return ConnectionLoop::Next{.send = {}, .done = true, .end_run = true};
            }
          }
        }
        ConnectionLoop::Next next{NextQueueRequest(run, c, claims[i], total)};
        next.done = next.send.empty();
        return next;
      },
      h);
  run.Stop();  // the producer and the --duration timer need not wait any longer
}

// ---- queue --one-at-a-time: one task in flight. The submitter (subscribed
// to events.<queue>) submits, one worker with a waiting claim takes it and
// completes it, and the latency is submit -> the submitter seeing the
// "completed" event.
void QueueSerialRun(Run& run, const std::string& queue) {
  std::atomic<bool> worker_stop{false};
  std::thread worker([&] {
    auto c = Connect(run.cfg, run);
    if (!c) return;
    while (!worker_stop && !run.stop) {
      auto r = c->Call(
          "task.claim",
          {{"queues", {queue}}, {"worker_id", run.cfg.names.name + "-serial"}, {"wait_ms", 200}});
      if (!r.ok()) {
        run.Error(r.status());
        return;
      }
      for (const auto& t : (*r)["tasks"]) {
        auto done = c->Call("task.complete",
                            {{"task_id", t["task_id"]}, {"lease_token", t["lease_token"]}});
        if (!done.ok()) run.Error(done.status());
      }
    }
  });
  auto c = Connect(run.cfg, run);
  net::LatencyHistogram h;
  if (c) {
    if (auto sub = c->Call("pubsub.subscribe", {{"channel", "events." + queue}}); !sub.ok())
      run.Error(sub.status());
    run.StartClock();
    const std::string pad = Payload(run.cfg.payload);
    while (!run.stop && run.Take()) {
      auto t = Clock::now();
      auto r = c->Call("task.submit", {{"queue", queue}, {"payload", {{"pad", pad}}}});
      if (!r.ok()) {
        run.Error(r.status());
        break;
      }
      const std::string id = (*r)["task_id"];
      for (;;) {
        auto n = c->NextNotification(10'000);
        if (!n.ok()) {
          run.Error(n.status());
          run.stop = true;
          break;
        }
        const json& ev = (*n)["params"]["data"];
        if ((*n)["method"] == "pubsub.message" && ev.value("task_id", "") == id &&
            ev.value("type", "") == "completed")
          break;
      }
      h.Record(static_cast<uint64_t>(MicrosSince(t)));
    }
  }
  run.MarkEnd();  // not the worker's last waiting claim
  worker_stop = true;
  worker.join();
  run.Merge(h);
}

}  // namespace shim::cli::bench
