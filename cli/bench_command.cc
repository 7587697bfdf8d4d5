// `shim bench`: the load generator for benchmarking coordination
// throughput against a running server (or one it starts with --spawn).
// Workloads: state, pubsub, queue, lock, checkpoint. Every client has its
// own connection, and each workload's clients all run on one event loop
// (ConnectionLoop), as redis-benchmark and a BullMQ Worker do; the queue
// producer, the pubsub publisher and the one-at-a-time queue run each have
// a thread of their own.
// Latency is measured per request (or per delivery / per task cycle) into a
// histogram; a live progress line goes to stderr when it is a terminal;
// --json prints one machine-readable result object.
// Against a running server a run keeps to names of its own and deletes
// what it made at the end (cli/bench_cleanup.cc); Ctrl-C ends the run
// early, cleans up (and stops a --spawn server) and reports what was
// measured until then.
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

#include "base/json_text.h"
#include "cli/bench_loop.h"
#include "cli/bench_run.h"
#include "cli/client_util.h"
#include "cli/commands.h"
#include "cli/paths.h"
#include "engine/json_parse.h"
#include "net/jsonrpc.h"
#include "net/latency_histogram.h"
#include "storage/store.h"

namespace shim::cli {
namespace {

using bench::BenchConfig;
using bench::Clock;
using bench::Run;
using nlohmann::json;
// Every workload: the run below starts them.
using bench::CheckpointRun;
using bench::ConnectAll;
using bench::kLatencySampleEvery;
using bench::LockRun;
using bench::PubSubRun;
using bench::QueueProducer;
using bench::QueueSerialRun;
using bench::QueueWorkersRun;
using bench::StateRun;

void Progress(Run& run, std::atomic<bool>& finished) {
  while (!finished) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const double secs = run.Seconds();
    std::fprintf(stderr, "\r%s: %lld ops in %.1f s (%.0f/s), %lld errors   ",
                 run.cfg.workload.c_str(), static_cast<long long>(run.done.load()), secs,
                 run.done.load() / std::max(secs, 1e-9), static_cast<long long>(run.errors.load()));
  }
  std::fprintf(stderr, "\r%80s\r", "");
}

// Reads integer option --NAME (min..max) into *out, which keeps its value
// when the option is absent; false, having said why, when it is bad.
bool ReadIntOption(const ParsedArgs& args, const char* name, long long min, long long max,
                   long long* out) {
  long long v = *out;
  args.GetInt(name, &v);
  if (v < min || v > max) {
    std::fprintf(stderr, "shim bench: bad --%s: %lld..%lld\n", name, min, max);
    return false;
  }
  *out = v;
  return true;
}

// Reads number option --NAME into *out (kept when absent); it must be
// above `min` (or equal to it, if min_inclusive) and at most `max`.
bool ReadRealOption(const ParsedArgs& args, const char* name, double min, bool min_inclusive,
                    double max, double* out) {
  auto text = args.Get(name);
  if (!text) return true;
  char* end = nullptr;
  const double v = std::strtod(text->c_str(), &end);
  const bool in_range = std::isfinite(v) && (min_inclusive ? v >= min : v > min) && v <= max;
  if (text->empty() || *end != '\0' || !in_range) {
    std::fprintf(stderr, "shim bench: bad --%s '%s': a number %s %g and <= %g\n", name,
                 text->c_str(), min_inclusive ? ">=" : ">", min, max);
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
    // Its own process group, so that the terminal's Ctrl-C reaches only
    // shim bench, which then stops it; and none of bench's blocked signals.
    ::setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execl(self.c_str(), self.c_str(), "serve", "--socket", socket.c_str(), "--data", data.c_str(),
            "--durability", durability.c_str(), "--log-level", "warn", static_cast<char*>(nullptr));
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

// Ctrl-C (SIGINT) and SIGTERM, taken by one thread (blocked in all the
// others): the first ends the run as if its time were up; a second one,
// for a run that does not wind down, stops the spawned server and exits.
class Interrupts {
 public:
  Interrupts() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGUSR1);  // Close() wakes the thread with it
    // Before any other thread starts, so that every one inherits the mask.
    ::pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    thread_ = std::thread([this] { Wait(); });
  }
  ~Interrupts() { Close(); }
  void Close() {
    if (!thread_.joinable()) return;
    closing_ = true;
    ::pthread_kill(thread_.native_handle(), SIGUSR1);
    thread_.join();
  }
  bool interrupted() const { return interrupted_; }
  // The run to stop once it exists, and the server to stop on a second
  // signal.
  void Watch(Run* run) {
    std::lock_guard lock(mu_);
    run_ = run;
    if (interrupted_ && run_) Stop(*run_);
  }
  void SetServer(pid_t server, std::string dir) {
    std::lock_guard lock(mu_);
    server_ = server;
    dir_ = std::move(dir);
  }

 private:
  static void Stop(Run& run) {
    run.MarkEnd();
    run.Stop();
  }
  void Wait() {
    for (;;) {
      int sig = 0;
      if (::sigwait(&set_, &sig) != 0) continue;
      if (closing_) return;
      if (sig == SIGUSR1) continue;
      std::lock_guard lock(mu_);
      if (interrupted_) {
        StopSpawned(server_, dir_);
        std::fprintf(stderr, "\nshim bench: interrupted twice; stopped\n");
        ::_exit(130);
      }
      interrupted_ = true;
      std::fprintf(stderr, "\nshim bench: interrupted; finishing (Ctrl-C again to quit now)\n");
      if (run_) Stop(*run_);
    }
  }

  sigset_t set_;
  std::thread thread_;
  std::atomic<bool> closing_{false}, interrupted_{false};
  std::mutex mu_;
  Run* run_ = nullptr;
  pid_t server_ = -1;
  std::string dir_;
};

// What the workload's operations are, for the report.
std::string OpMix(const BenchConfig& cfg) {
  if (cfg.workload == "state") {
    return cfg.op == "mixed" ? "mixed: 50% set, 30% get, 10% incr, 10% cas" : cfg.op;
  }
  if (cfg.workload == "pubsub") {
    return "publish to one channel, " + std::to_string(cfg.subscribers) + " subscribers";
  }
  if (cfg.workload == "queue") {
    if (cfg.one_at_a_time) return "submit -> claim -> complete, one task at a time";
    std::string mix = "submit, claim, complete with claim_next";
    if (cfg.prefill) mix += " (prefilled)";
    if (cfg.fail_rate > 0) {
      char share[64];
      std::snprintf(share, sizeof(share), ", %g of first attempts failed", cfg.fail_rate);
      mix += share;
    }
    return mix;
  }
  if (cfg.workload == "lock") return "acquire (waiting) -> release of one lock";
  return "checkpoint.save";
}

// The running server's durability mode, as sys.info says ("unknown" if it
// does not).
std::string ServerDurability(const BenchConfig& cfg) {
  auto c = cfg.connect();
  if (!c.ok()) return "unknown";
  auto info = (*c)->Call("sys.info", json::object());
  return info.ok() ? info->value("durability", "unknown") : "unknown";
}

}  // namespace

int RunBench(const ParsedArgs& args) {
  BenchConfig cfg;
  cfg.workload = args.positional()[0];
  if (cfg.workload != "state" && cfg.workload != "pubsub" && cfg.workload != "queue" &&
      cfg.workload != "lock" && cfg.workload != "checkpoint") {
    std::fprintf(stderr, "shim bench: unknown workload '%s'\n", cfg.workload.c_str());
    return kExitUsage;
  }
  if (cfg.workload == "lock") cfg.clients = 2;
  if (cfg.workload == "checkpoint") cfg.clients = 1;
  long long clients = cfg.clients, pipeline = cfg.pipeline, count = 0,
            payload = static_cast<long long>(cfg.payload), subscribers = cfg.subscribers,
            keys = cfg.keys;
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
  if (cfg.op != "set" && cfg.op != "get" && cfg.op != "incr" && cfg.op != "cas" &&
      cfg.op != "mixed") {
    std::fprintf(stderr, "shim bench: bad --op '%s': one of set, get, incr, cas, mixed\n",
                 cfg.op.c_str());
    return kExitUsage;
  }
  cfg.one_at_a_time = args.Flag("one-at-a-time");
  // An option the workload does not use is refused rather than ignored, so
  // a report never looks as if it had been applied.
  const std::string shape =
      cfg.workload == "queue" && cfg.one_at_a_time ? "queue --one-at-a-time" : cfg.workload;
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
    std::fprintf(stderr,
                 "shim bench: --durability sets the server that --spawn starts; without --spawn, "
                 "the running server's mode applies (shim serve --durability)\n");
    return kExitUsage;
  }
  const std::string durability = args.GetOr("durability", "sync");
  if (!storage::ParseDurability(durability)) {
    std::fprintf(stderr, "shim bench: bad --durability '%s': one of sync, async, none\n",
                 durability.c_str());
    return kExitUsage;
  }
  cfg.prefill = args.Flag("prefill");
  cfg.json_out = args.Flag("json");
  cfg.socket = args.GetOr("socket", DefaultSocketPath());
  cfg.connect = [&args] { return ConnectFromArgs(args); };
  const std::string pid = std::to_string(::getpid());
  cfg.names = {"bench-" + pid, "bench/" + pid + "/"};
  if (args.Flag("spawn") && args.Flag("keep")) {
    std::fprintf(stderr, "shim bench: --keep is for a running server; --spawn removes its own\n");
    return kExitUsage;
  }
  Interrupts interrupts;

  // --spawn: a private server for this run.
  pid_t server = -1;
  std::string tmp;
  if (args.Flag("spawn") && (args.Get("connect") || args.Get("socket"))) {
    std::fprintf(stderr,
                 "shim bench: --spawn starts its own server; give --spawn or --connect/--socket, "
                 "not both\n");
    return kExitUsage;
  }
  if (args.Flag("spawn")) {
    char dir[] = "/tmp/shim-bench-XXXXXX";
    if (!::mkdtemp(dir)) {
      std::fprintf(stderr, "shim bench: cannot create a temp directory for --spawn: %s\n",
                   std::strerror(errno));
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
    interrupts.SetServer(server, tmp);
  }
  if (args.Get("connect")) {
    if (!ConnectOrReport(args, "bench")) return kExitNoServer;  // says why, e.g. UNAUTHORIZED
  } else if (!cfg.connect().ok()) {
    std::fprintf(stderr,
                 "shim bench: no shim server is running at %s (start one, or pass --spawn)\n",
                 cfg.socket.c_str());
    StopSpawned(server, tmp);
    return kExitNoServer;
  }

  const bool spawned = server > 0;
  const std::string target = args.GetOr("connect", cfg.socket);
  const std::string server_durability = spawned ? durability : ServerDurability(cfg);
  if (!cfg.json_out) {
    if (spawned) {
      std::fprintf(stderr,
                   "shim bench: %s against a server spawned for this run at %s (durability %s)\n",
                   cfg.workload.c_str(), target.c_str(), server_durability.c_str());
    } else {
      std::fprintf(stderr,
                   "shim bench: %s against the running server at %s (durability %s); its names: "
                   "keys %s*, %s*, %s\n",
                   cfg.workload.c_str(), target.c_str(), server_durability.c_str(),
                   cfg.names.key_prefix.c_str(), cfg.names.name.c_str(),
                   args.Flag("keep") ? "kept (--keep)" : "deleted at the end");
    }
  }

  Run run(cfg);
  interrupts.Watch(&run);
  const bool queue_run = cfg.workload == "queue" && !cfg.one_at_a_time;
  const std::string& queue = cfg.names.name;
  const int64_t queue_tasks = cfg.count > 0 ? cfg.count : 100'000;
  std::atomic<int64_t> submitted{0};
  double prefill_per_sec = 0;  // queue --prefill: tasks submitted per second
  // The connections of the workloads driven by one ConnectionLoop (the
  // queue's workers), opened before the clock starts.
  std::vector<std::unique_ptr<net::LineClient>> conns;
  const bool loop_run = queue_run || cfg.workload == "state" || cfg.workload == "lock" ||
                        cfg.workload == "checkpoint";
  if (loop_run) conns = ConnectAll(run, cfg.clients);
  if (queue_run && cfg.prefill && !conns.empty()) {
    // Submit everything first, untimed (as the BullMQ side adds its jobs
    // before its Worker starts); the run then times only the draining.
    const auto t0 = Clock::now();
    QueueProducer(run, queue, submitted, queue_tasks, /*backlog=*/0);
    prefill_per_sec =
        submitted.load() / std::max(std::chrono::duration<double>(Clock::now() - t0).count(), 1e-9);
  }
  run.StartClock();
  std::atomic<bool> finished{false};
  std::thread progress;
  if (!cfg.json_out && ::isatty(2))
    progress = std::thread(Progress, std::ref(run), std::ref(finished));
  std::vector<std::thread> threads;
  const int64_t total = cfg.count > 0 ? cfg.count : 1'000'000'000;
  if (cfg.workload == "pubsub") {
    PubSubRun(run, cfg.count > 0 ? cfg.count : 100'000);
  } else if (cfg.workload == "queue" && cfg.one_at_a_time) {
    QueueSerialRun(run, queue);
  } else if (queue_run) {
    if (!cfg.prefill) {
      threads.emplace_back(QueueProducer, std::ref(run), queue, std::ref(submitted), queue_tasks,
                           /*backlog=*/2000);
    }
    threads.emplace_back(QueueWorkersRun, std::ref(run), std::ref(conns), std::cref(queue),
                         queue_tasks);
    if (cfg.count == 0) {
      threads.emplace_back([&run, &cfg] {
        if (!run.WaitFor(cfg.duration_s))
          return;  // the workers ended first (all done, or an error)
        run.MarkEnd();
        run.Stop();
      });
    }
  } else {
    if (cfg.workload == "state") threads.emplace_back(StateRun, std::ref(run), std::ref(conns));
    if (cfg.workload == "lock") threads.emplace_back(LockRun, std::ref(run), std::ref(conns));
    if (cfg.workload == "checkpoint")
      threads.emplace_back(CheckpointRun, std::ref(run), std::ref(conns));
  }
  for (auto& t : threads) t.join();
  (void)total;
  // Before waiting for the progress line's thread, which sleeps up to 500 ms.
  const double secs = run.Seconds();
  finished = true;
  if (progress.joinable()) progress.join();
  const int64_t ops =
      cfg.count > 0 && (cfg.workload != "queue" || cfg.one_at_a_time) && cfg.workload != "pubsub"
          ? std::min<int64_t>(run.done.load(), cfg.count)
          : run.done.load();

  interrupts.Watch(nullptr);
  // Cleaning up is not part of the run: a second Ctrl-C may still quit.
  json cleanup = nullptr;
  std::string cleanup_error;
  if (!spawned && !args.Flag("keep")) {
    auto c = cfg.connect();
    Result<json> done = c.ok() ? bench::CleanUp(**c, cfg.names) : Result<json>(c.status());
    if (done.ok()) {
      cleanup = *done;
    } else {
      cleanup_error = done.status().ToString();
    }
  }
  if (spawned) StopSpawned(server, tmp);
  interrupts.Close();
  const auto& h = run.hist;
  json out = {{"workload", cfg.workload},
              {"op_mix", OpMix(cfg)},
              {"durability", server_durability},
              {"spawned", spawned},
              {"server", target},
              {"names", {{"keys", cfg.names.key_prefix}, {"name", cfg.names.name}}},
              {"kept", args.Flag("keep")},
              {"interrupted", interrupts.interrupted()},
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
    out["latency_sampled_every"] =
        kLatencySampleEvery;  // deliveries per latency sample, per subscriber
  }
  if (!run.first_error.empty()) out["first_error"] = run.first_error;
  if (!cleanup.is_null()) out["cleanup"] = cleanup;
  if (!cleanup_error.empty()) out["cleanup_error"] = cleanup_error;
  if (cfg.json_out) {
    std::cout << DumpCompact(out) << "\n";
  } else {
    std::printf(
        "%s: %lld ops in %.2f s = %.0f ops/s (%d clients, pipeline %d, %zu-byte payloads)\n",
        cfg.workload.c_str(), static_cast<long long>(ops), secs, ops / std::max(secs, 1e-9),
        cfg.clients, cfg.pipeline, cfg.payload);
    std::printf("latency us: p50 %llu  p90 %llu  p99 %llu  p99.9 %llu  max %llu\n",
                static_cast<unsigned long long>(h.Percentile(0.5)),
                static_cast<unsigned long long>(h.Percentile(0.9)),
                static_cast<unsigned long long>(h.Percentile(0.99)),
                static_cast<unsigned long long>(h.Percentile(0.999)),
                static_cast<unsigned long long>(h.max()));
    if (cfg.workload == "pubsub") {
      std::printf(
          "(%d subscribers; ops are deliveries; latency is publish -> delivery, sampled from 1 in "
          "%lld)\n",
          cfg.subscribers, static_cast<long long>(kLatencySampleEvery));
    }
    if (cfg.prefill)
      std::printf("prefill: %.0f tasks/s submitted (task.submit_batch of 1000), not timed\n",
                  prefill_per_sec);
    if (run.errors.load())
      std::printf("errors: %lld (first: %s)\n", static_cast<long long>(run.errors.load()),
                  run.first_error.c_str());
    std::printf("%s%s server, durability %s; op mix: %s\n",
                interrupts.interrupted() ? "interrupted: measured until Ctrl-C; " : "",
                spawned ? "spawned" : "running", server_durability.c_str(), OpMix(cfg).c_str());
    if (!cleanup.is_null()) {
      std::printf("cleaned up: %lld tasks, %lld keys, %lld sessions closed and cleared\n",
                  cleanup["tasks"].get<long long>(), cleanup["keys"].get<long long>(),
                  cleanup["sessions"].get<long long>());
    }
  }
  if (!cleanup_error.empty())
    std::fprintf(stderr, "shim bench: cleaning up %s* failed: %s\n", cfg.names.name.c_str(),
                 cleanup_error.c_str());
  return run.errors.load() || !cleanup_error.empty() ? kExitServerError : kExitOk;
}

}  // namespace shim::cli
