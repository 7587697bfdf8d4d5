// Engine apply path: Engine::Execute of single commands on the engine thread,
// with a FakeClock and a Store under Durability::kNone (no WAL, so the figures
// are the engine's own cost, not the disk's), driven by the synchronous host
// of the engine tests (tests/support/sync_host.h). Writes are group-committed
// as the server does it: every `group` commands the open group is sealed,
// written and landed, which releases the queued replies.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "engine/client.h"
#include "engine/clock.h"
#include "engine/engine.h"
#include "engine/tasks/tasks.h"
#include "storage/store.h"
#include "tests/support/fake_client.h"
#include "tests/support/sync_host.h"

namespace shim::engine {
namespace {

using nlohmann::json;

constexpr int kKeySpace = 4096;

// Counts replies and remembers the first error.
struct ReplySink {
  int64_t replies = 0;
  std::string first_error;
  ReplyFn Fn() {
    return [this](Result<json> r) {
      ++replies;
      if (!r.ok() && first_error.empty()) first_error = r.status().ToString();
    };
  }
};

// Everything one benchmark run needs: a scratch dir, a clock, the
// synchronous host (tests/support/sync_host.h) with its store and engine,
// and the sink its replies go to.
struct Rig {
  bench::ScratchDir dir{"shim-engine-bench"};
  FakeClock clock;
  std::unique_ptr<testing::SyncHost> host;
  std::string fault;  // the first the host reported
  ReplySink sink;
  ReplyFn reply = sink.Fn();  // a Rig is never moved: `reply` points into it

  // Returns an error message, or empty on success.
  std::string Open() {
    if (dir.path().empty()) return "cannot create a scratch directory under /tmp";
    storage::StoreOptions options;
    options.path = dir.path() + "/db";
    options.durability = storage::Durability::kNone;
    EngineOptions engine_options;  // default limits and risk model
    engine_options.clock = &clock;
    auto host_or =
        testing::SyncHost::Open(options, engine_options, [this](const std::string& what) {
          if (fault.empty()) fault = what;
        });
    if (!host_or.ok()) return host_or.status().ToString();
    host = std::move(host_or).value();
    return {};
  }

  // Commits the open group, as net/engine_host.cc does; an error if the
  // host reported a fault (a failed write, a reply before it was durable).
  Status Commit() {
    host->CommitGroup();
    return fault.empty() ? Status::Ok() : Status::Internal(fault);
  }
};

// A subscriber that counts what it gets: keeping every message would be
// most of what a publish benchmark measures.
std::shared_ptr<testing::FakeClient> CountingClient(uint64_t id) {
  auto client = std::make_shared<testing::FakeClient>(id);
  client->set_keep_notes(false);
  return client;
}

std::vector<std::string> Keys() {
  std::vector<std::string> keys;
  keys.reserve(kKeySpace);
  for (int i = 0; i < kKeySpace; ++i) keys.push_back("agents/a" + std::to_string(i) + "/status");
  return keys;
}

// state.set, committing a group every `group` commands.
void BM_ApplyStateSet(benchmark::State& state) {
  const int64_t group = state.range(0);
  Rig rig;
  if (std::string err = rig.Open(); !err.empty()) return state.SkipWithError(err.c_str());
  const std::vector<std::string> keys = Keys();
  int64_t n = 0;
  for (auto _ : state) {
    json params = {{"key", keys[n % kKeySpace]},
                   {"value", {{"step", n}, {"note", "working on it"}}}};
    rig.host->Execute("state.set", std::move(params), nullptr, rig.reply);
    if (++n % group == 0) {
      if (Status s = rig.Commit(); !s.ok()) return state.SkipWithError(s.ToString().c_str());
    }
  }
  if (Status s = rig.Commit(); !s.ok()) return state.SkipWithError(s.ToString().c_str());
  if (!rig.sink.first_error.empty()) return state.SkipWithError(rig.sink.first_error.c_str());
  if (rig.sink.replies != n) return state.SkipWithError("a reply was not released");
  state.SetItemsProcessed(state.iterations());
  state.counters["groups_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) / static_cast<double>(group),
                         benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ApplyStateSet)->ArgName("group")->Arg(1)->Arg(16)->Arg(256);

// state.get of existing keys: answered at once (nothing pending).
void BM_ApplyStateGet(benchmark::State& state) {
  Rig rig;
  if (std::string err = rig.Open(); !err.empty()) return state.SkipWithError(err.c_str());
  const std::vector<std::string> keys = Keys();
  for (int i = 0; i < kKeySpace; ++i) {
    rig.host->Execute("state.set",
                      {{"key", keys[i]}, {"value", {{"step", i}, {"note", "working on it"}}}},
                      nullptr, rig.reply);
  }
  if (Status s = rig.Commit(); !s.ok()) return state.SkipWithError(s.ToString().c_str());
  int64_t n = 0;
  for (auto _ : state) {
    rig.host->Execute("state.get", {{"key", keys[n++ % kKeySpace]}}, nullptr, rig.reply);
  }
  if (!rig.sink.first_error.empty()) return state.SkipWithError(rig.sink.first_error.c_str());
  if (rig.sink.replies != kKeySpace + n) return state.SkipWithError("a reply was not released");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ApplyStateGet);

// The timed loop of the publish benchmarks: pubsub.publish of a small
// message on team/events, committing every 16 publishes. Returns how many
// it published, or -1 after SkipWithError.
int64_t PublishLoop(benchmark::State& state, Rig& rig) {
  constexpr int64_t kGroup = 16;
  int64_t n = 0;
  for (auto _ : state) {
    json params = {{"channel", "team/events"},
                   {"data", {{"from", "agent-7"}, {"text", "step done"}, {"n", n}}}};
    rig.host->Execute("pubsub.publish", std::move(params), nullptr, rig.reply);
    if (++n % kGroup == 0) {
      if (Status s = rig.Commit(); !s.ok()) {
        state.SkipWithError(s.ToString().c_str());
        return -1;
      }
    }
  }
  Status s = rig.Commit();
  if (!s.ok())
    state.SkipWithError(s.ToString().c_str());
  else if (!rig.sink.first_error.empty())
    state.SkipWithError(rig.sink.first_error.c_str());
  return s.ok() && rig.sink.first_error.empty() ? n : -1;
}

// pubsub.publish of a small message on one channel, committing every 16
// publishes, with `subs` live subscribers on the channel. Past 10,000
// messages every publish also trims the channel log (default retention).
void BM_Publish(benchmark::State& state) {
  const int64_t subscribers = state.range(0);
  Rig rig;
  if (std::string err = rig.Open(); !err.empty()) return state.SkipWithError(err.c_str());
  std::vector<std::shared_ptr<testing::FakeClient>> clients;
  for (int64_t i = 0; i < subscribers; ++i) {
    clients.push_back(CountingClient(static_cast<uint64_t>(i + 1)));
    rig.host->Execute("pubsub.subscribe", {{"channel", "team/events"}}, clients.back(), rig.reply);
  }
  if (!rig.sink.first_error.empty()) return state.SkipWithError(rig.sink.first_error.c_str());
  const int64_t n = PublishLoop(state, rig);
  if (n < 0) return;
  for (const auto& c : clients) {
    if (c->notifications() != n) return state.SkipWithError("a subscriber missed a message");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Publish)->ArgName("subs")->Arg(0)->Arg(1)->Arg(16);

// pubsub.publish on one channel while `patterns` pattern subscriptions exist
// that do not match it (literal prefixes, suffixes and infixes, a quarter
// each, like `agents/a7/*`, `*.a7`, `*a7x*`, `team7?`), spread over
// connections of 10,000 subscriptions each (the per-connection limit). A
// publish must cost what the patterns that could match cost, not what all
// of them do: the time per publish should not grow with `patterns`.
void BM_PublishPastPatterns(benchmark::State& state) {
  constexpr int64_t kPerClient = 10'000;
  const int64_t patterns = state.range(0);
  Rig rig;
  if (std::string err = rig.Open(); !err.empty()) return state.SkipWithError(err.c_str());
  std::vector<std::shared_ptr<testing::FakeClient>> clients;
  for (int64_t i = 0; i < patterns; ++i) {
    if (i % kPerClient == 0) clients.push_back(CountingClient(clients.size() + 1));
    const std::string n = std::to_string(i);
    std::string pattern;
    switch (i % 4) {
      case 0:
        pattern = "agents/a" + n + "/*";
        break;
      case 1:
        pattern = "*.a" + n;
        break;
      case 2:
        pattern = "*a" + n + "x*";
        break;
      default:
        pattern = "team" + n + "?";
        break;
    }
    rig.host->Execute("pubsub.subscribe", {{"pattern", std::move(pattern)}}, clients.back(),
                      rig.reply);
  }
  if (!rig.sink.first_error.empty()) return state.SkipWithError(rig.sink.first_error.c_str());
  const int64_t n = PublishLoop(state, rig);
  if (n < 0) return;
  for (const auto& c : clients) {
    if (c->notifications() != 0)
      return state.SkipWithError("a pattern that does not match got a message");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PublishPastPatterns)
    ->ArgName("patterns")
    ->Arg(1'000)
    ->Arg(10'000)
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->Unit(benchmark::kMicrosecond);

// Resident set size of this process, in MiB (from /proc/self/status).
double RssMiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

// task.claim with `depth` ready tasks in the queue: the claim must not cost
// more when the queue is deep (ordered indexes, no scans). Each iteration is
// one claim, timed alone; the complete and a fresh submit that keeps the
// depth constant run with the timer paused. Reports the RSS after the
// prefill, and the time the prefill took, as counters.
void BM_ClaimAtDepth(benchmark::State& state) {
  const int64_t depth = state.range(0);
  Rig rig;
  if (std::string err = rig.Open(); !err.empty()) return state.SkipWithError(err.c_str());
  const double rss_before = RssMiB();
  const auto prefill_start = std::chrono::steady_clock::now();
  constexpr int64_t kBatch = 10'000;
  for (int64_t done = 0; done < depth; done += kBatch) {
    json tasks = json::array();
    for (int64_t i = done; i < std::min(depth, done + kBatch); ++i) {
      tasks.push_back(
          {{"queue", "deep"}, {"payload", {{"n", i}, {"repo", "shim"}}}, {"priority", 1 + i % 10}});
    }
    rig.host->Execute("task.submit_batch", {{"tasks", std::move(tasks)}}, nullptr, rig.reply);
    if (Status s = rig.Commit(); !s.ok()) return state.SkipWithError(s.ToString().c_str());
  }
  const double prefill_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - prefill_start).count();
  rig.host->Execute("worker.register", {{"worker_id", "w"}, {"max_concurrency", 1}}, nullptr,
                    rig.reply);
  if (Status s = rig.Commit(); !s.ok()) return state.SkipWithError(s.ToString().c_str());
  if (!rig.sink.first_error.empty()) return state.SkipWithError(rig.sink.first_error.c_str());

  json claimed;
  ReplyFn on_claim = [&](Result<json> r) {
    if (r.ok()) claimed = std::move(r).value();
  };
  int64_t n = 0;
  for (auto _ : state) {
    rig.host->Execute("task.claim", {{"queues", {"deep"}}, {"worker_id", "w"}}, nullptr, on_claim);
    if (Status s = rig.Commit(); !s.ok()) return state.SkipWithError(s.ToString().c_str());
    state.PauseTiming();
    if (!claimed.is_object() || claimed["tasks"].empty())
      return state.SkipWithError("nothing was claimed");
    const json& t = claimed["tasks"][0];
    rig.host->Execute("task.complete",
                      {{"task_id", t["task_id"]}, {"lease_token", t["lease_token"]}}, nullptr,
                      rig.reply);
    rig.host->Execute("task.submit",
                      {{"queue", "deep"}, {"payload", {{"n", depth + n++}}}, {"priority", 5}},
                      nullptr, rig.reply);
    if (Status s = rig.Commit(); !s.ok()) return state.SkipWithError(s.ToString().c_str());
    state.ResumeTiming();
  }
  if (!rig.sink.first_error.empty()) return state.SkipWithError(rig.sink.first_error.c_str());
  state.SetItemsProcessed(state.iterations());
  state.counters["rss_MiB"] = RssMiB() - rss_before;
  state.counters["prefill_s"] = prefill_s;
}
BENCHMARK(BM_ClaimAtDepth)
    ->ArgName("ready")
    ->Arg(1'000)
    ->Arg(1'000'000)
    ->Unit(benchmark::kMicrosecond);

// One slice of a long cascade: the dependency chain of `chain` tasks is
// built with the timer paused, its head is cancelled, and each iteration is
// one engine turn of the cascade (Engine::RunTimers plus its commit): what
// other clients wait for at most while a cascade runs. A new chain is built
// whenever the last one is done.
void BM_CascadeSlice(benchmark::State& state) {
  const int64_t chain = state.range(0);
  Rig rig;
  if (std::string err = rig.Open(); !err.empty()) return state.SkipWithError(err.c_str());
  rig.host->Execute("queue.configure",
                    {{"queue", "c"}, {"keep_failed", 1000}, {"keep_completed", 1000}}, nullptr,
                    rig.reply);
  auto build_and_cancel = [&]() -> Status {
    std::string prev;
    for (int64_t done = 0; done < chain; done += 10'000) {
      json tasks = json::array();
      for (int64_t i = done; i < std::min(chain, done + 10'000); ++i) {
        json t = {{"queue", "c"}, {"ref", "r" + std::to_string(i)}};
        if (i > done) t["depends_on"] = {"r" + std::to_string(i - 1)};
        if (i == done && !prev.empty()) t["depends_on"] = {prev};
        tasks.push_back(std::move(t));
      }
      json ids;
      rig.host->Execute("task.submit_batch", {{"tasks", std::move(tasks)}}, nullptr,
                        [&](Result<json> r) {
                          if (r.ok()) ids = r.value()["task_ids"];
                        });
      SHIM_RETURN_IF_ERROR(rig.Commit());
      if (!ids.is_array() || ids.empty()) return Status::Internal("submit failed");
      if (done == 0) rig.host->Execute("task.cancel", {{"task_id", ids[0]}}, nullptr, rig.reply);
      prev = ids.back();
    }
    return rig.Commit();
  };
  int64_t slices = 0;
  for (auto _ : state) {
    if (rig.host->engine().NextTimerInMs() != std::optional<int64_t>(0)) {
      state.PauseTiming();
      // The cancel is part of the build: its first slice runs with the
      // cancel request and is not counted here.
      if (Status s = build_and_cancel(); !s.ok()) return state.SkipWithError(s.ToString().c_str());
      state.ResumeTiming();
    }
    rig.host->engine().RunTimers();
    if (Status s = rig.Commit(); !s.ok()) return state.SkipWithError(s.ToString().c_str());
    ++slices;
  }
  if (!rig.sink.first_error.empty()) return state.SkipWithError(rig.sink.first_error.c_str());
  state.SetItemsProcessed(slices * static_cast<int64_t>(TaskModule::kCascadeSlice));
}
BENCHMARK(BM_CascadeSlice)->ArgName("chain")->Arg(100'000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace shim::engine

BENCHMARK_MAIN();
