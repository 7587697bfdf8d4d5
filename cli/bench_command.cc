// `shim bench`: the load generator for benchmarking coordination
// throughput against a running server (or one it starts with --spawn).
// Workloads: state, pubsub, queue, lock, checkpoint. Every client has its
// own connection, and each workload's clients all run on one event loop
// (ConnectionLoop), as redis-benchmark and a BullMQ Worker do; the queue
// producer, the pubsub publisher and the one-at-a-time queue run each have
// a thread of their own.
// Latency is measured per request (or per delivery / per task cycle) into a
// histogram; a live progress line goes to stderr; --json prints one
// machine-readable result object.
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <limits>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/bench_loop.h"
#include "cli/client_util.h"
#include "cli/commands.h"
#include "cli/paths.h"
#include "engine/json_parse.h"
#include "net/jsonrpc.h"
#include "net/latency_histogram.h"
#include "storage/store.h"

namespace shim::cli {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct BenchConfig {
  std::string workload;
  std::string socket;
  // Opens one client connection: --connect HOST:PORT (with its token) or
  // --socket, as every client command does; the private server's socket
  // with --spawn.
  std::function<Result<std::unique_ptr<net::LineClient>>()> connect;
  int clients = 50;
  int pipeline = 1;
  int64_t count = 0;          // total operations; 0 = use duration
  double duration_s = 10;
  size_t payload = 100;
  int subscribers = 4;
  double fail_rate = 0;
  int keys = 10'000;
  std::string op = "mixed";   // state: set | get | incr | cas | mixed
  bool one_at_a_time = false;  // queue: submit -> claim -> complete -> seen, one task at a time
  bool prefill = false;        // queue: submit every task first, time only the draining
  bool json_out = false;
};

int64_t MicrosSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t).count();
}

// Shared progress and results across client threads.
struct Run {
  const BenchConfig& cfg;
  std::atomic<int64_t> done{0};
  std::atomic<int64_t> errors{0};
  std::atomic<bool> stop{false};
  std::mutex mu;
  net::LatencyHistogram hist;
  std::string first_error;

  explicit Run(const BenchConfig& c) : cfg(c) { StartClock(); }
  // The timed part begins: after connecting (and a queue's prefill), as
  // redis-benchmark and the BullMQ side start theirs once connected.
  void StartClock() { start_ticks.store(Clock::now().time_since_epoch().count()); }
  Clock::time_point start() const { return Clock::time_point(Clock::duration(start_ticks.load())); }
  // Claims one more operation; false once the budget is spent.
  bool Take() {
    if (stop.load(std::memory_order_relaxed)) return false;
    if (cfg.count > 0) return done.fetch_add(1) < cfg.count;
    if (std::chrono::duration<double>(Clock::now() - start()).count() >= cfg.duration_s) return false;
    done.fetch_add(1);
    return true;
  }
  void Merge(const net::LatencyHistogram& h) {
    std::lock_guard lock(mu);
    hist.Merge(h);
  }
  void Error(const Status& s) {
    errors.fetch_add(1);
    std::lock_guard lock(mu);
    if (first_error.empty()) first_error = s.ToString();
  }
  // Ends the run for every client, and wakes WaitFor.
  void Stop() {
    {
      std::lock_guard lock(mu);
      stop = true;
    }
    stop_cv.notify_all();
  }
  // Waits `secs` unless the run stops first; true if the time ran out.
  bool WaitFor(double secs) {
    std::unique_lock lock(mu);
    return !stop_cv.wait_for(lock, std::chrono::duration<double>(secs), [this] { return stop.load(); });
  }
  // The measured work is over (the last task completed, the duration
  // passed), though clients may still be winding down; the first call
  // counts. Without it the run ends when its clients return.
  void MarkEnd() {
    std::lock_guard lock(mu);
    if (!end) end = Clock::now();
  }
  double Seconds() {
    std::lock_guard lock(mu);
    return std::chrono::duration<double>(end.value_or(Clock::now()) - start()).count();
  }

 private:
  std::atomic<Clock::rep> start_ticks{0};
  std::condition_variable stop_cv;
  std::optional<Clock::time_point> end;
};

std::unique_ptr<net::LineClient> Connect(const BenchConfig& cfg, Run& run) {
  auto c = cfg.connect();
  if (!c.ok()) {
    run.Error(c.status());
    run.stop = true;
    return nullptr;
  }
  return std::move(c).value();
}

std::string Payload(size_t n) { return std::string(n, 'x'); }

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

// ---- state: set/get/incr/cas over a key space. With --pipeline N a client
// writes N requests with one send, then reads their N replies, as
// redis-benchmark -P N does. Request lines are appended as text and replies
// are only searched for an "error" member: this client shares the machine's
// cores with the server it measures, so its own per-request cost (a JSON
// document built and dumped, one send per request, every reply parsed) must
// stay small, or the comparison measures the load generator.
void AppendStateRequest(std::string& out, uint64_t id, std::string_view method, std::string_view key,
                        const std::string* value, int64_t expected_version) {
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
  out += key;  // "bench/<n>": nothing to escape
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

// A reply line's result, or its error (also for a line that is not JSON).
Result<json> UnwrapLine(std::string_view line) {
  Result<json> reply = ParseJson(line, kMaxShimJsonDepth);
  if (!reply.ok()) return Status::Internal("the server sent a line shim cannot read: " + reply.status().message());
  return net::LineClient::Unwrap(reply.value());
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
    key = (op == "incr" ? "bench/counter/" : "bench/") + std::to_string(c.rng() % run.cfg.keys);
    if (op == "set") {
      AppendStateRequest(batch, c.next_id++, "state.set", key, &value, -1);
    } else if (op == "get") {
      AppendStateRequest(batch, c.next_id++, "state.get", key, nullptr, -1);
    } else if (op == "incr") {
      AppendStateRequest(batch, c.next_id++, "state.incr", key, nullptr, -1);
    } else {  // cas: a conditional write that may conflict
      AppendStateRequest(batch, c.next_id++, "state.set", key, &value, static_cast<int64_t>(c.rng() % 3));
    }
    ++n;
  }
  c.owed = n;
  c.sent = Clock::now();
  return batch;
}

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
  RunOnLoop(run, clients, first, [&](size_t i, std::string_view line) {
    StateConnection& c = conns[i];
    if (Status st = ReplyStatus(line); !st.ok()) run.Error(st);
    h.Record(static_cast<uint64_t>(MicrosSince(c.sent)));
    if (--c.owed > 0) return ConnectionLoop::Next{};
    ConnectionLoop::Next next{NextStateBatch(run, c, value)};
    next.done = next.send.empty();
    return next;
  }, h);
}

// One connection of the lock or checkpoint workload: one request in flight.
struct SerialConnection {
  uint64_t next_id = 1;
  int phase = 0;  // what the request in flight is; per workload
  Clock::time_point sent;
  std::string Request(std::string_view method, const json& params) {
    sent = Clock::now();
    return net::EncodeLine(net::RequestMessage(next_id++, method, params));
  }
};

// ---- checkpoint: each client opens a session, saves --payload-bytes
// checkpoints one after another, and closes it; latency is each save.
void CheckpointRun(Run& run, std::vector<std::unique_ptr<net::LineClient>>& clients) {
  if (clients.empty()) return;
  enum Phase { kOpening, kSaving, kClosing };
  const json data = {{"state", Payload(run.cfg.payload)}};
  std::vector<SerialConnection> conns(clients.size());
  std::vector<std::string> sids(clients.size()), first(clients.size());
  for (size_t i = 0; i < conns.size(); ++i) {
    sids[i] = "bench-" + std::to_string(::getpid()) + "-" + std::to_string(i);
    first[i] = conns[i].Request("session.open", {{"session_id", sids[i]}, {"keep_checkpoints", 5}});
  }
  net::LatencyHistogram h;
  size_t saving = conns.size();  // clients not yet done saving: the time ends with the last one's last save
  auto done_saving = [&] {
    if (--saving == 0) run.MarkEnd();
  };
  RunOnLoop(run, clients, first, [&](size_t i, std::string_view line) {
    SerialConnection& c = conns[i];
    Result<json> r = UnwrapLine(line);
    if (!r.ok()) run.Error(r.status());
    if (c.phase == kClosing) return ConnectionLoop::Next{{}, true};
    if (c.phase == kOpening && !r.ok()) {
      done_saving();
      return ConnectionLoop::Next{{}, true};
    }
    if (c.phase == kSaving) h.Record(static_cast<uint64_t>(MicrosSince(c.sent)));
    if (run.Take()) {
      c.phase = kSaving;
      return ConnectionLoop::Next{c.Request("checkpoint.save", {{"session_id", sids[i]}, {"data", data}})};
    }
    done_saving();
    c.phase = kClosing;
    return ConnectionLoop::Next{c.Request("session.close", {{"session_id", sids[i]}})};
  }, h);
}

// ---- lock: every client loops acquire(wait) -> release on one lock;
// latency is the wait for each grant, throughput the hand-offs.
void LockRun(Run& run, std::vector<std::unique_ptr<net::LineClient>>& clients) {
  if (clients.empty()) return;
  enum Phase { kAcquiring, kReleasing };
  const std::string lock = "bench-lock-" + std::to_string(::getpid());
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
  RunOnLoop(run, clients, first, [&](size_t i, std::string_view line) {
    SerialConnection& c = conns[i];
    Result<json> r = UnwrapLine(line);
    if (!r.ok()) run.Error(r.status());
    if (c.phase == kAcquiring && r.ok()) {
      h.Record(static_cast<uint64_t>(MicrosSince(c.sent)));
      c.phase = kReleasing;
      return ConnectionLoop::Next{c.Request("lock.release", {{"name", lock}, {"token", (*r)["token"]}})};
    }
    if (run.Take()) return ConnectionLoop::Next{acquire(i)};
    return ConnectionLoop::Next{{}, true};
  }, h);
}

// ---- queue: a producer submits in batches; W workers claim -> complete.
// Latency is submit -> complete of each task (the submit time travels in
// the payload), so with --prefill it is mostly the wait in the backlog.
//
// With `backlog` > 0 the producer keeps at most that many tasks waiting; 0
// submits everything at once (--prefill), in batches of 1000 like the
// BullMQ side's addBulk.
void QueueProducer(Run& run, const std::string& queue, std::atomic<int64_t>& submitted, int64_t total,
                   int64_t backlog) {
  auto c = Connect(run.cfg, run);
  if (!c) return;
  const std::string pad = Payload(run.cfg.payload);
  std::mt19937_64 rng(42);
  const int batch = backlog > 0 ? 100 : 1000;
  while (!run.stop && submitted < total) {
    json tasks = json::array();
    for (int i = 0; i < batch && submitted < total; ++i, ++submitted) {
      const int64_t now_us =
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch()).count();
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

// One worker connection of the queue workload.
struct QueueConnection {
  std::string worker;
  std::mt19937_64 rng;
  uint64_t next_id = 1;
  json tasks = json::array();  // claimed, not yet finished
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
  const bool fail = run.cfg.fail_rate > 0 && std::uniform_real_distribution<>(0, 1)(c.rng) < run.cfg.fail_rate &&
                    t["attempt"].get<int>() == 1;
  if (fail) {  // not done: it comes back as a retry
    return RequestLine(c, "task.fail",
                       {{"task_id", t["task_id"]}, {"lease_token", t["lease_token"]}, {"error", "bench"},
                        {"claim_next", next}});
  }
  c.finishing_t_us = t["payload"]["t"].get<int64_t>();
  return RequestLine(c, "task.complete",
                     {{"task_id", t["task_id"]}, {"lease_token", t["lease_token"]}, {"claim_next", next}});
}

// W workers, all driven from this one thread (ConnectionLoop), as one
// BullMQ Worker runs its whole concurrency on one Node.js event loop.
void QueueWorkersRun(Run& run, std::vector<std::unique_ptr<net::LineClient>>& clients, const std::string& queue,
                     int64_t total) {
  if (clients.empty()) return run.Stop();
  std::vector<QueueConnection> conns(clients.size());
  std::vector<json> claims(clients.size());
  std::vector<std::string> first(clients.size());
  for (size_t i = 0; i < conns.size(); ++i) {
    conns[i].worker = "bench-w" + std::to_string(i);
    conns[i].rng.seed(i + 1);
    claims[i] = {{"queues", {queue}}, {"worker_id", conns[i].worker}, {"wait_ms", 200}};
    first[i] = NextQueueRequest(run, conns[i], claims[i], total);
  }
  net::LatencyHistogram h;
  RunOnLoop(run, clients, first, [&](size_t i, std::string_view line) {
    QueueConnection& c = conns[i];
    Result<json> r = UnwrapLine(line);
    if (!r.ok()) {
      run.Error(r.status());
      if (c.claiming) return ConnectionLoop::Next{{}, true};  // this worker cannot claim: it stops
    } else {
      if (r->contains("tasks")) c.tasks = std::move((*r)["tasks"]);
      // A completion answered after --duration ran out is not counted.
      if (c.finishing_t_us >= 0 && !run.stop) {
        const int64_t now_us =
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch()).count();
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
  }, h);
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
      auto r = c->Call("task.claim", {{"queues", {queue}}, {"worker_id", "bench-serial"}, {"wait_ms", 200}});
      if (!r.ok()) {
        run.Error(r.status());
        return;
      }
      for (const auto& t : (*r)["tasks"]) {
        auto done = c->Call("task.complete", {{"task_id", t["task_id"]}, {"lease_token", t["lease_token"]}});
        if (!done.ok()) run.Error(done.status());
      }
    }
  });
  auto c = Connect(run.cfg, run);
  net::LatencyHistogram h;
  if (c) {
    if (auto sub = c->Call("pubsub.subscribe", {{"channel", "events." + queue}}); !sub.ok()) run.Error(sub.status());
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
        if ((*n)["method"] == "pubsub.message" && ev.value("task_id", "") == id && ev.value("type", "") == "completed") break;
      }
      h.Record(static_cast<uint64_t>(MicrosSince(t)));
    }
  }
  run.MarkEnd();  // not the worker's last waiting claim
  worker_stop = true;
  worker.join();
  run.Merge(h);
}

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
constexpr std::string_view kMessagePrefix = R"({"jsonrpc":"2.0","method":"pubsub.message",)";
constexpr int64_t kLatencySampleEvery = 16;

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
  if (!parsed.ok()) return run.Error(Status::Internal("the server sent a line shim cannot read")), false;
  json& n = parsed.value();
  if (!sub.subscribed) {  // the first line answers pubsub.subscribe
    auto r = net::LineClient::Unwrap(n);
    if (!r.ok()) return run.Error(r.status()), false;
    sub.subscribed = true;
    return true;
  }
  const std::string method = n.value("method", "");
  if (method == "pubsub.dropped") {
    return run.Error(Status(StatusCode::kOverloaded, "subscriber dropped as a slow consumer")), false;
  }
  if (method != "pubsub.message") return true;  // nothing else is expected; not a delivery
  const int64_t now_us =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch()).count();
  const json& t = n["params"]["data"]["t"];
  if (t.is_number_integer()) h.Record(static_cast<uint64_t>(now_us - t.get<int64_t>()));
  ++sub.got;
  return true;
}

void PubSubRun(Run& run, int64_t total) {
  const std::string channel = "bench-" + std::to_string(::getpid());
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
      if (sub.got > before) run.done.store(delivered.fetch_add(sub.got - before) + (sub.got - before));
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
  while (ready < run.cfg.subscribers && !run.stop) std::this_thread::sleep_for(std::chrono::milliseconds(5));
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
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch()).count();
      auto id = pub->SendRequest("pubsub.publish", {{"channel", channel}, {"data", {{"t", now_us}, {"p", pad}}}});
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

void Progress(Run& run, std::atomic<bool>& finished) {
  while (!finished) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const double secs = run.Seconds();
    std::fprintf(stderr, "\r%s: %lld ops in %.1f s (%.0f/s), %lld errors   ", run.cfg.workload.c_str(),
                 static_cast<long long>(run.done.load()), secs, run.done.load() / std::max(secs, 1e-9),
                 static_cast<long long>(run.errors.load()));
  }
  std::fprintf(stderr, "\r%80s\r", "");
}

// Reads integer option --NAME (min..max) into *out, which keeps its value
// when the option is absent; false, having said why, when it is bad.
bool ReadIntOption(const Args& args, const char* name, long long min, long long max, long long* out) {
  long long v = *out;
  if (!args.GetInt(name, &v)) {
    std::fprintf(stderr, "shim bench: %s\n", args.error().c_str());
    return false;
  }
  if (v < min || v > max) {
    std::fprintf(stderr, "shim bench: bad --%s: %lld..%lld\n", name, min, max);
    return false;
  }
  *out = v;
  return true;
}

// Reads number option --NAME into *out (kept when absent); it must be
// above `min` (or equal to it, if min_inclusive) and at most `max`.
bool ReadRealOption(const Args& args, const char* name, double min, bool min_inclusive, double max, double* out) {
  auto text = args.Get(name);
  if (!text) return true;
  char* end = nullptr;
  const double v = std::strtod(text->c_str(), &end);
  const bool in_range = std::isfinite(v) && (min_inclusive ? v >= min : v > min) && v <= max;
  if (text->empty() || *end != '\0' || !in_range) {
    std::fprintf(stderr, "shim bench: bad --%s '%s': a number %s %g and <= %g\n", name, text->c_str(),
                 min_inclusive ? ">=" : ">", min, max);
    return false;
  }
  *out = v;
  return true;
}

// Stops the server --spawn started (if it is still there) and removes its
// temp directory.
void StopSpawned(pid_t server, const std::string& dir) {
  if (server > 0) {
    ::kill(server, SIGTERM);
    int st;
    ::waitpid(server, &st, 0);
  }
  std::error_code ec;
  if (!dir.empty()) std::filesystem::remove_all(dir, ec);
}

// --spawn: starts `shim serve` on a socket and data directory in `dir` and
// waits (at most 5 s) until it accepts connections. Its pid, or -1 with
// *error set (the child, if any, is then gone).
pid_t SpawnServer(const std::string& dir, const std::string& socket, const std::string& durability,
                  std::string* error) {
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  const std::string data = dir + "/data";
  const pid_t server = ::fork();
  if (server < 0) {
    *error = std::string("cannot start a server: fork: ") + std::strerror(errno);
    return -1;
  }
  if (server == 0) {
    ::execl(self.c_str(), self.c_str(), "serve", "--socket", socket.c_str(), "--data", data.c_str(), "--durability",
            durability.c_str(), "--log-level", "warn", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (int i = 0; i < 200; ++i) {
    if (net::LineClient::ConnectUnix(socket).ok()) return server;
    int st;
    if (::waitpid(server, &st, WNOHANG) == server) {  // it exited: no use waiting
      *error = "the server started with --spawn exited with status " +
               std::to_string(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  StopSpawned(server, "");
  *error = "the server started with --spawn did not come up within 5 s";
  return -1;
}

}  // namespace

int RunBench(int argc, char** argv, int from) {
  static const std::string help = std::string(R"(Usage: shim bench WORKLOAD [options]

Load generator for a shim server. Workloads, with what "ops" and
"latency" mean for each:
  state       --op set|get|incr|cas|mixed over --keys keys (mixed: 50% set,
              30% get, 10% incr, 10% cas, a set with a random expected
              version; its conflicts count as answered). ops: requests;
              latency: a request's batch written -> its reply
  pubsub      1 publisher, --subscribers N subscribers on one durable channel;
              --count messages are published, ops are deliveries (count x N),
              latency is publish -> delivery, sampled from 1 in 16 deliveries
  queue       a producer submits, --clients W workers claim, then complete each
              task claiming the next (claim_next): one round trip per task.
              Tasks carry priorities 1..10. ops: tasks completed; latency:
              submit -> complete (with a backlog, mostly the wait in it).
              --fail-rate F fails that share of first attempts; they are
              retried at once (max_attempts 3) and count once completed
              --prefill: submit all --count tasks first (untimed, reported
              as prefill tasks/s), then time only the workers draining them;
              without it the producer keeps a backlog of at most 2000 and
              its submits are part of the timed run
              --one-at-a-time: one task in flight, latency = submit -> the
              submitter sees its "completed" event (one waiting worker)
  lock        --clients N contend for one lock: acquire(wait) -> release.
              ops: acquire attempts; latency: acquire -> grant
  checkpoint  --clients N sessions saving --payload-bytes checkpoints, each
              fsynced. ops: saves; latency: save -> reply
The time starts once every connection is open (queue --prefill: once the
tasks are submitted; pubsub: once the subscribers are subscribed) and ends
at the last operation's reply (queue: the last completion; pubsub: the last
delivery; checkpoint: the last save, not the sessions' closing).

Options (each is refused by the workloads it does not apply to):
  --clients N          concurrent connections, 1..10000: state and queue 50,
                       lock 2, checkpoint 1 (not pubsub or --one-at-a-time)
  --pipeline N         state: requests written at once per connection, then their
                       replies read (as redis-benchmark -P); pubsub: publishes in
                       flight (default 1)
  --count N            total operations. Default: run for --duration (state,
                       lock, checkpoint); queue: 100000 tasks or --duration,
                       whichever ends first; pubsub: 100000 messages
                       (--duration does not apply)
  --duration S         seconds to run (default 10)
  --payload-bytes N    value / payload / message / checkpoint size (default 100)
  --subscribers N      pubsub subscribers (default 4)
  --keys N             state key space (default 10000)
  --op OP              state operation (default mixed)
  --fail-rate F        queue: share of first attempts failed, 0..1 (default 0)
  --spawn              start a private `shim serve` on a temp dir for the run
  --durability MODE    with --spawn: sync | async | none (default sync)
Prints ops/s and latency p50/p90/p99/p99.9 (us); --json for machines.
)") + kCommonOptions;
  Args args(With(kClientValued, {"clients", "pipeline", "count", "duration", "payload-bytes", "subscribers",
                                 "fail-rate", "keys", "op", "durability"}),
            With(kClientFlags, {"spawn", "one-at-a-time", "prefill"}));
  ParseOrExit(args, argc, argv, from, "bench", help);
  if (args.positional().size() != 1) {
    std::fputs(help.c_str(), stderr);
    return kExitUsage;
  }
  BenchConfig cfg;
  cfg.workload = args.positional()[0];
  if (cfg.workload != "state" && cfg.workload != "pubsub" && cfg.workload != "queue" && cfg.workload != "lock" &&
      cfg.workload != "checkpoint") {
    std::fprintf(stderr, "shim bench: unknown workload '%s'\n", cfg.workload.c_str());
    return kExitUsage;
  }
  if (cfg.workload == "lock") cfg.clients = 2;
  if (cfg.workload == "checkpoint") cfg.clients = 1;
  long long clients = cfg.clients, pipeline = cfg.pipeline, count = 0, payload = static_cast<long long>(cfg.payload),
            subscribers = cfg.subscribers, keys = cfg.keys;
  constexpr long long kMaxConnections = 10'000, kMaxPipeline = 100'000;
  if (!ReadIntOption(args, "clients", 1, kMaxConnections, &clients) ||
      !ReadIntOption(args, "pipeline", 1, kMaxPipeline, &pipeline) ||
      !ReadIntOption(args, "count", 0, std::numeric_limits<long long>::max() / 2, &count) ||
      !ReadIntOption(args, "payload-bytes", 0, 1ll << 30, &payload) ||
      !ReadIntOption(args, "subscribers", 1, kMaxConnections, &subscribers) ||
      !ReadIntOption(args, "keys", 1, 1'000'000'000, &keys) ||
      !ReadRealOption(args, "duration", 0, /*min_inclusive=*/false, 1e9, &cfg.duration_s) ||
      !ReadRealOption(args, "fail-rate", 0, /*min_inclusive=*/true, 1, &cfg.fail_rate)) {
    return kExitUsage;
  }
  cfg.clients = static_cast<int>(clients);
  cfg.pipeline = static_cast<int>(pipeline);
  cfg.count = count;
  cfg.payload = static_cast<size_t>(payload);
  cfg.subscribers = static_cast<int>(subscribers);
  cfg.keys = static_cast<int>(keys);
  cfg.op = args.GetOr("op", "mixed");
  if (cfg.op != "set" && cfg.op != "get" && cfg.op != "incr" && cfg.op != "cas" && cfg.op != "mixed") {
    std::fprintf(stderr, "shim bench: bad --op '%s': one of set, get, incr, cas, mixed\n", cfg.op.c_str());
    return kExitUsage;
  }
  cfg.one_at_a_time = args.Flag("one-at-a-time");
  // An option the workload does not use is refused rather than ignored, so
  // a report never looks as if it had been applied.
  const std::string shape = cfg.workload == "queue" && cfg.one_at_a_time ? "queue --one-at-a-time" : cfg.workload;
  const std::pair<const char*, std::set<std::string>> applies[] = {
      {"clients", {"state", "queue", "lock", "checkpoint"}},
      {"duration", {"state", "queue", "queue --one-at-a-time", "lock", "checkpoint"}},
      {"pipeline", {"state", "pubsub"}},
      {"keys", {"state"}},
      {"op", {"state"}},
      {"subscribers", {"pubsub"}},
      {"fail-rate", {"queue"}},
      {"prefill", {"queue"}},
      {"one-at-a-time", {"queue --one-at-a-time"}},
      {"payload-bytes", {"state", "pubsub", "queue", "queue --one-at-a-time", "checkpoint"}},
  };
  for (const auto& [option, workloads] : applies) {
    const bool given = args.Get(option).has_value() || args.Flag(option);
    if (given && !workloads.contains(shape)) {
      std::fprintf(stderr, "shim bench: --%s does not apply to %s\n", option, shape.c_str());
      return kExitUsage;
    }
  }
  // What the report's "clients" counts: the connections issuing the timed
  // operations (pubsub: its one publisher; --one-at-a-time: one submitter).
  if (cfg.workload == "pubsub" || cfg.one_at_a_time) cfg.clients = 1;
  if (args.Get("durability") && !args.Flag("spawn")) {
    std::fprintf(stderr, "shim bench: --durability sets the server that --spawn starts; without --spawn, "
                         "the running server's mode applies (shim serve --durability)\n");
    return kExitUsage;
  }
  const std::string durability = args.GetOr("durability", "sync");
  if (!storage::ParseDurability(durability)) {
    std::fprintf(stderr, "shim bench: bad --durability '%s': one of sync, async, none\n", durability.c_str());
    return kExitUsage;
  }
  cfg.prefill = args.Flag("prefill");
  cfg.json_out = args.Flag("json");
  cfg.socket = args.GetOr("socket", DefaultSocketPath());
  cfg.connect = [&args] { return ConnectFromArgs(args); };

  // --spawn: a private server for this run.
  pid_t server = -1;
  std::string tmp;
  if (args.Flag("spawn") && (args.Get("connect") || args.Get("socket"))) {
    std::fprintf(stderr, "shim bench: --spawn starts its own server; give --spawn or --connect/--socket, not both\n");
    return kExitUsage;
  }
  if (args.Flag("spawn")) {
    char dir[] = "/tmp/shim-bench-XXXXXX";
    if (!::mkdtemp(dir)) {
      std::fprintf(stderr, "shim bench: cannot create a temp directory for --spawn: %s\n", std::strerror(errno));
      return kExitNoServer;
    }
    tmp = dir;
    cfg.socket = tmp + "/s.sock";
    cfg.connect = [socket = cfg.socket] { return net::LineClient::ConnectUnix(socket); };
    std::string error;
    server = SpawnServer(tmp, cfg.socket, durability, &error);
    if (server < 0) {
      std::fprintf(stderr, "shim bench: %s\n", error.c_str());
      StopSpawned(-1, tmp);
      return kExitNoServer;
    }
  }
  if (args.Get("connect")) {
    if (!ConnectOrReport(args, "bench")) return kExitNoServer;  // says why, e.g. UNAUTHORIZED
  } else if (!cfg.connect().ok()) {
    std::fprintf(stderr, "shim bench: no shim server is running at %s (start one, or pass --spawn)\n",
                 cfg.socket.c_str());
    StopSpawned(server, tmp);
    return kExitNoServer;
  }

  Run run(cfg);
  const bool queue_run = cfg.workload == "queue" && !cfg.one_at_a_time;
  const std::string queue = "bench-" + std::to_string(::getpid());
  const int64_t queue_tasks = cfg.count > 0 ? cfg.count : 100'000;
  std::atomic<int64_t> submitted{0};
  double prefill_per_sec = 0;  // queue --prefill: tasks submitted per second
  // The connections of the workloads driven by one ConnectionLoop (the
  // queue's workers), opened before the clock starts.
  std::vector<std::unique_ptr<net::LineClient>> conns;
  const bool loop_run = queue_run || cfg.workload == "state" || cfg.workload == "lock" || cfg.workload == "checkpoint";
  if (loop_run) conns = ConnectAll(run, cfg.clients);
  if (queue_run && cfg.prefill && !conns.empty()) {
    // Submit everything first, untimed (as the BullMQ side adds its jobs
    // before its Worker starts); the run then times only the draining.
    const auto t0 = Clock::now();
    QueueProducer(run, queue, submitted, queue_tasks, /*backlog=*/0);
    prefill_per_sec = submitted.load() / std::max(std::chrono::duration<double>(Clock::now() - t0).count(), 1e-9);
  }
  run.StartClock();
  std::atomic<bool> finished{false};
  std::thread progress;
  if (!cfg.json_out && ::isatty(2)) progress = std::thread(Progress, std::ref(run), std::ref(finished));
  std::vector<std::thread> threads;
  const int64_t total = cfg.count > 0 ? cfg.count : 1'000'000'000;
  if (cfg.workload == "pubsub") {
    PubSubRun(run, cfg.count > 0 ? cfg.count : 100'000);
  } else if (cfg.workload == "queue" && cfg.one_at_a_time) {
    QueueSerialRun(run, queue);
  } else if (queue_run) {
    if (!cfg.prefill) {
      threads.emplace_back(QueueProducer, std::ref(run), queue, std::ref(submitted), queue_tasks, /*backlog=*/2000);
    }
    threads.emplace_back(QueueWorkersRun, std::ref(run), std::ref(conns), std::cref(queue), queue_tasks);
    if (cfg.count == 0) {
      threads.emplace_back([&run, &cfg] {
        if (!run.WaitFor(cfg.duration_s)) return;  // the workers ended first (all done, or an error)
        run.MarkEnd();
        run.Stop();
      });
    }
  } else {
    if (cfg.workload == "state") threads.emplace_back(StateRun, std::ref(run), std::ref(conns));
    if (cfg.workload == "lock") threads.emplace_back(LockRun, std::ref(run), std::ref(conns));
    if (cfg.workload == "checkpoint") threads.emplace_back(CheckpointRun, std::ref(run), std::ref(conns));
  }
  for (auto& t : threads) t.join();
  (void)total;
  // Before waiting for the progress line's thread, which sleeps up to 500 ms.
  const double secs = run.Seconds();
  finished = true;
  if (progress.joinable()) progress.join();
  const int64_t ops = cfg.count > 0 && (cfg.workload != "queue" || cfg.one_at_a_time) && cfg.workload != "pubsub"
                          ? std::min<int64_t>(run.done.load(), cfg.count)
                          : run.done.load();

  if (server > 0) StopSpawned(server, tmp);
  const auto& h = run.hist;
  json out = {{"workload", cfg.workload},
              {"clients", cfg.clients},
              {"pipeline", cfg.pipeline},
              {"payload_bytes", cfg.payload},
              {"ops", ops},
              {"seconds", secs},
              {"ops_per_sec", ops / std::max(secs, 1e-9)},
              {"errors", run.errors.load()},
              {"latency_us",
               {{"p50", h.Percentile(0.50)},
                {"p90", h.Percentile(0.90)},
                {"p99", h.Percentile(0.99)},
                {"p999", h.Percentile(0.999)},
                {"max", h.max()},
                {"mean", h.mean()}}}};
  if (cfg.prefill) out["prefill_per_sec"] = prefill_per_sec;
  if (cfg.workload == "pubsub") {
    out["subscribers"] = cfg.subscribers;
    out["latency_sampled_every"] = kLatencySampleEvery;  // deliveries per latency sample, per subscriber
  }
  if (!run.first_error.empty()) out["first_error"] = run.first_error;
  if (cfg.json_out) {
    std::cout << out.dump() << "\n";
  } else {
    std::printf("%s: %lld ops in %.2f s = %.0f ops/s (%d clients, pipeline %d, %zu-byte payloads)\n",
                cfg.workload.c_str(), static_cast<long long>(ops), secs, ops / std::max(secs, 1e-9), cfg.clients,
                cfg.pipeline, cfg.payload);
    std::printf("latency us: p50 %llu  p90 %llu  p99 %llu  p99.9 %llu  max %llu\n",
                static_cast<unsigned long long>(h.Percentile(0.5)), static_cast<unsigned long long>(h.Percentile(0.9)),
                static_cast<unsigned long long>(h.Percentile(0.99)),
                static_cast<unsigned long long>(h.Percentile(0.999)), static_cast<unsigned long long>(h.max()));
    if (cfg.workload == "pubsub") {
      std::printf("(%d subscribers; ops are deliveries; latency is publish -> delivery, sampled from 1 in %lld)\n",
                  cfg.subscribers, static_cast<long long>(kLatencySampleEvery));
    }
    if (cfg.prefill) std::printf("prefill: %.0f tasks/s submitted (task.submit_batch of 1000), not timed\n", prefill_per_sec);
    if (run.errors.load()) std::printf("errors: %lld (first: %s)\n", static_cast<long long>(run.errors.load()), run.first_error.c_str());
  }
  return run.errors.load() ? kExitServerError : kExitOk;
}

}  // namespace shim::cli
