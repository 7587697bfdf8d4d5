// The shared parts of `shim bench` (cli/bench_command.cc): the run's
// configuration, the progress and results its client threads share, and
// the connection helpers; one workload per file (cli/bench_<workload>.cc).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/bench_loop.h"
#include "net/jsonrpc.h"
#include "net/latency_histogram.h"
#include "net/line_client.h"

namespace shim::cli::bench {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// The names a run uses, all its own so that a run against a server that
// holds the user's data touches none of it: keys under `key_prefix`, and
// the queue and the channel `name`, the lock "<name>-lock", the sessions
// "<name>-<i>" and the workers "<name>-w<i>". Unless --keep, the run
// deletes what it made under them at the end (cli/bench_cleanup.cc).
struct BenchNames {
  std::string name;        // "bench-<pid>"
  std::string key_prefix;  // "bench/<pid>/"
};

struct BenchConfig {
  std::string workload;
  BenchNames names;
  std::string socket;
  // Opens one client connection: --connect HOST:PORT (with its token) or
  // --socket, as every client command does; the private server's socket
  // with --spawn.
  std::function<Result<std::unique_ptr<net::LineClient>>()> connect;
  int clients = 50;
  int pipeline = 1;
  int64_t count = 0;  // total operations; 0 = use duration
  double duration_s = 10;
  size_t payload = 100;
  int subscribers = 4;
  double fail_rate = 0;
  int keys = 10'000;
  std::string op = "mixed";    // state: set | get | incr | cas | mixed
  bool one_at_a_time = false;  // queue: submit -> claim -> complete -> seen, one task at a time
  bool prefill = false;        // queue: submit every task first, time only the draining
  bool json_out = false;
};

inline int64_t MicrosSince(Clock::time_point t) {
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
    if (std::chrono::duration<double>(Clock::now() - start()).count() >= cfg.duration_s)
      return false;
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
    return !stop_cv.wait_for(lock, std::chrono::duration<double>(secs),
                             [this] { return stop.load(); });
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

// One connection, or none (the run then has the error and stops).
std::unique_ptr<net::LineClient> Connect(const BenchConfig& cfg, Run& run);
inline std::string Payload(size_t n) { return std::string(n, 'x'); }
// `count` connections for a ConnectionLoop; none if one fails (the run
// then has the error and stops).
std::vector<std::unique_ptr<net::LineClient>> ConnectAll(Run& run, int count);
std::vector<int> Fds(const std::vector<std::unique_ptr<net::LineClient>>& clients);
// Runs `on_line` over `clients` from one ConnectionLoop (this thread):
// records the loop's own failure and merges `h`, which on_line fills.
void RunOnLoop(Run& run, const std::vector<std::unique_ptr<net::LineClient>>& clients,
               const std::vector<std::string>& first, const ConnectionLoop::OnLine& on_line,
               const net::LatencyHistogram& h);
// A reply line's result, or its error (also for a line that is not JSON).
Result<json> UnwrapLine(std::string_view line);
// UnwrapLine that also counts an error in the run (Run::Error).
Result<json> UnwrapLineCountingErrors(Run& run, std::string_view line);

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

// The workloads (one file each). All but the queue producer and the
// pubsub and one-at-a-time queue runs drive their connections from one
// ConnectionLoop on the calling thread.
void StateRun(Run& run, std::vector<std::unique_ptr<net::LineClient>>& clients);
void CheckpointRun(Run& run, std::vector<std::unique_ptr<net::LineClient>>& clients);
void LockRun(Run& run, std::vector<std::unique_ptr<net::LineClient>>& clients);
// The queue producer: submits `total` tasks in batches, keeping at most
// `backlog` waiting (0: everything at once, --prefill).
void QueueProducer(Run& run, const std::string& queue, std::atomic<int64_t>& submitted,
                   int64_t total, int64_t backlog);
void QueueWorkersRun(Run& run, std::vector<std::unique_ptr<net::LineClient>>& clients,
                     const std::string& queue, int64_t total);
void QueueSerialRun(Run& run, const std::string& queue);
void PubSubRun(Run& run, int64_t total);
// Deletes what the run made under `names` (cli/bench_cleanup.cc): the
// queue (queue.delete, force), the keys, the sessions (closed, cleared),
// and the messages of its channels. Result {tasks, keys, sessions,
// channels_emptied}: what it removed.
Result<json> CleanUp(net::LineClient& client, const BenchNames& names);

// pubsub: one delivery in this many per subscriber is parsed for its
// latency (cli/bench_pubsub.cc says why).
inline constexpr int64_t kLatencySampleEvery = 16;

}  // namespace shim::cli::bench
