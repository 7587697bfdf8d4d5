// End-to-end task queues against a real `shim serve` (sync durability) with
// real workers: LineClient workers draining 10,000 tasks with none lost or
// completed twice; `shim worker run` processes draining a smaller queue; a
// SIGSTOPped worker losing its task when its lease lapses (its late
// task.complete gets NOT_OWNER); a SIGKILLed worker's task retried and
// completed by another worker. Bounded waits only.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "net/line_client.h"
#include "tests/support/load_baseline.h"
#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_util.h"

namespace shim {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using testing::ServerProcess;

// Polls `done` every 20 ms for at most `timeout_ms`.
bool WaitUntil(const std::function<bool()>& done, int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// Submits `n` tasks to `queue` in batches of 1000; payload {"n": i}.
std::vector<std::string> SubmitMany(net::LineClient& c, const std::string& queue, int n,
                                    json extra = json::object()) {
  std::vector<std::string> ids;
  for (int start = 0; start < n; start += 1000) {
    json tasks = json::array();
    for (int i = start; i < std::min(n, start + 1000); ++i) {
      json t = {{"queue", queue}, {"payload", {{"n", i}}}};
      t.update(extra);
      tasks.push_back(std::move(t));
    }
    auto r = c.Call("task.submit_batch", {{"tasks", tasks}}, 60'000);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return ids;
    for (const json& id : (*r)["task_ids"]) ids.push_back(id);
  }
  return ids;
}

// Every event of channel events.<queue>.
std::vector<json> AllEvents(net::LineClient& c, const std::string& queue) {
  std::vector<json> out;
  int64_t from = 1;
  for (int page = 0; page < 1000; ++page) {
    auto r = c.Call("pubsub.history",
                    {{"channel", "events." + queue}, {"from_seq", from}, {"limit", 1000}});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || (*r)["messages"].empty()) break;
    for (const json& m : (*r)["messages"]) out.push_back(m["data"]);
    from = (*r)["next_seq"].get<int64_t>();
  }
  return out;
}

// A `shim worker run` child in its own process group (so the command it
// runs can be killed with it). Output goes to `log`.
pid_t SpawnCliWorker(const ServerProcess& server, const std::string& queue, const std::string& name,
                     const std::string& script, const std::string& log) {
  std::vector<std::string> args = {
      SHIM_BINARY, "worker", "run",    "--socket", server.socket_path(),
      "--queue",   queue,    "--name", name,       "--",
      "sh",        "-c",     script};
  // Built before fork: the child must not allocate (see SpawnServe).
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  if (pid > 0) ::setpgid(pid, pid);
  return pid;
}

void KillGroup(pid_t pid) {
  if (pid <= 0) return;
  ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);
  int status;
  ::waitpid(pid, &status, 0);
}

// What one LineClient worker saw acknowledged.
struct WorkerLog {
  std::vector<std::string> completed;  // task.complete acknowledged
  std::vector<std::string> errors;
};

// Claims up to 50 at a time with a server-side wait, completes them
// pipelined (result = payload), until `total` completions were acknowledged
// across all workers or the deadline passes.
void LineWorker(const ServerProcess& server, const std::string& worker_id, const std::string& queue,
                int total, std::atomic<int>* done, WorkerLog* log) {
  auto connected = server.Connect();
  if (!connected.ok()) {
    log->errors.push_back(connected.status().ToString());
    return;
  }
  auto& c = **connected;
  // The worker does not heartbeat: its TTL must outlast the drain, which
  // takes ~3 s normally and up to ~30 s under a sanitizer on a busy machine.
  auto reg = c.Call("worker.register", {{"worker_id", worker_id},
                                        {"max_concurrency", 50},
                                        {"heartbeat_ttl_ms", testing::LatencyBoundMs(15'000)}});
  if (!reg.ok()) log->errors.push_back(reg.status().ToString());
  const auto deadline = Clock::now() + std::chrono::milliseconds(testing::LatencyBoundMs(60'000));
  while (done->load() < total && Clock::now() < deadline) {
    auto r = c.Call("task.claim",
                    {{"queues", {queue}}, {"worker_id", worker_id}, {"max", 50}, {"wait_ms", 300}});
    if (!r.ok()) {
      log->errors.push_back("claim: " + r.status().ToString());
      return;
    }
    std::vector<std::pair<uint64_t, std::string>> pending;
    for (const json& t : (*r)["tasks"]) {
      auto id = c.SendRequest(
          "task.complete",
          {{"task_id", t["task_id"]}, {"lease_token", t["lease_token"]}, {"result", t["payload"]}});
      if (!id.ok()) {
        log->errors.push_back("send: " + id.status().ToString());
        return;
      }
      pending.emplace_back(*id, t["task_id"].get<std::string>());
    }
    for (const auto& [rid, task_id] : pending) {
      auto done_r = c.ReadResponse(rid);
      if (done_r.ok()) {
        log->completed.push_back(task_id);
        done->fetch_add(1);
      } else {
        log->errors.push_back(task_id + ": " + done_r.status().ToString());
      }
    }
  }
}

// A started server and a client connected to it, for each test.
class TasksWorkersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(server_.Start());
    ASSERT_OK_AND_ASSIGN(client_, server_.Connect());
  }

  ServerProcess server_;
  std::unique_ptr<net::LineClient> client_;
};

TEST_F(TasksWorkersTest, ThreeWorkersDrainThousandsOfTasksExactlyOnce) {
  constexpr int kTasks = testing::SanitizedLoad(10'000, 3'000);
  // Keep every event and every completed task for the checks below.
  ASSERT_OK(
      client_->Call("pubsub.configure", {{"channel", "events.drain"}, {"max_messages", 100'000}}));
  ASSERT_OK(client_->Call("queue.configure", {{"queue", "drain"}, {"keep_completed", 100'000}}));
  const auto t0 = Clock::now();
  const std::vector<std::string> ids = SubmitMany(*client_, "drain", kTasks);
  ASSERT_EQ(ids.size(), static_cast<size_t>(kTasks));
  const int64_t submit_ms = MsSince(t0);

  std::atomic<int> done{0};
  WorkerLog logs[3];
  const auto t1 = Clock::now();
  std::vector<std::thread> workers;
  for (int i = 0; i < 3; ++i) {
    workers.emplace_back(LineWorker, std::cref(server_), "drainer-" + std::to_string(i), "drain",
                         kTasks, &done, &logs[i]);
  }
  for (auto& w : workers) w.join();
  const int64_t drain_ms = MsSince(t1);
  std::printf("[ info ] submitted %d tasks in %lld ms; 3 workers drained them in %lld ms\n", kTasks,
              static_cast<long long>(submit_ms), static_cast<long long>(drain_ms));

  std::map<std::string, int> acked;
  for (const auto& log : logs) {
    EXPECT_TRUE(log.errors.empty()) << log.errors.front();
    EXPECT_GT(log.completed.size(), 0u) << "every worker should get some of the work";
    for (const auto& id : log.completed) ++acked[id];
  }
  EXPECT_EQ(acked.size(), static_cast<size_t>(kTasks));
  for (const auto& id : ids)
    EXPECT_EQ(acked[id], 1) << id << " acknowledged as completed " << acked[id] << " times";

  ASSERT_OK_AND_ASSIGN(json stats, client_->Call("queue.stats", {{"queue", "drain"}}));
  EXPECT_EQ(stats["counts"]["completed"], kTasks);
  EXPECT_EQ(stats["counts"]["ready"], 0);
  EXPECT_EQ(stats["counts"]["running"], 0);
  EXPECT_EQ(stats["counts"]["failed"], 0);

  // Events: one submitted, one claimed and one completed per task.
  std::map<std::string, std::map<std::string, int>> per_task;
  for (const json& e : AllEvents(*client_, "drain"))
    ++per_task[e["task_id"].get<std::string>()][e["type"]];
  ASSERT_EQ(per_task.size(), static_cast<size_t>(kTasks));
  int bad = 0;
  for (const auto& id : ids) {
    auto& counts = per_task[id];
    if (counts["completed"] != 1 || counts["claimed"] != 1 || counts["submitted"] != 1) {
      if (++bad < 5) ADD_FAILURE() << id << ": " << json(counts).dump();
    }
  }
  EXPECT_EQ(bad, 0);
  // Spot-check results: each is its task's payload.
  for (int i : {0, kTasks / 2 + 321, kTasks - 1}) {
    ASSERT_OK_AND_ASSIGN(json t, client_->Call("task.get", {{"task_id", ids[i]}}));
    EXPECT_EQ(t["result"], json({{"n", i}}));
  }
}

// Workers that finish each task with claim_next: one round trip per task
// after the first claim, and still every task exactly once.
void ClaimNextWorker(const ServerProcess& server, const std::string& worker_id,
                     const std::string& queue, int total, std::atomic<int>* done, WorkerLog* log,
                     int* claims) {
  auto connected = server.Connect();
  if (!connected.ok()) {
    log->errors.push_back(connected.status().ToString());
    return;
  }
  auto& c = **connected;
  const json claim = {{"queues", {queue}}, {"worker_id", worker_id}, {"wait_ms", 300}};
  const auto deadline = Clock::now() + std::chrono::milliseconds(testing::LatencyBoundMs(60'000));
  json tasks = json::array();
  while (done->load() < total && Clock::now() < deadline) {
    if (tasks.empty()) {
      ++*claims;
      auto r = c.Call("task.claim", claim);
      if (!r.ok()) {
        log->errors.push_back("claim: " + r.status().ToString());
        return;
      }
      tasks = (*r)["tasks"];
      continue;
    }
    const json t = tasks[0];
    auto r = c.Call("task.complete", {{"task_id", t["task_id"]},
                                      {"lease_token", t["lease_token"]},
                                      {"result", t["payload"]},
                                      {"claim_next", claim}});
    if (!r.ok()) {
      log->errors.push_back(t["task_id"].get<std::string>() + ": " + r.status().ToString());
      return;
    }
    log->completed.push_back(t["task_id"]);
    done->fetch_add(1);
    tasks = (*r)["tasks"];
  }
}

TEST_F(TasksWorkersTest, ClaimNextWorkersDrainAQueueExactlyOnceInOneRoundTripPerTask) {
  constexpr int kTasks = testing::SanitizedLoad(3000, 1000);
  ASSERT_OK(client_->Call("queue.configure", {{"queue", "next"}, {"keep_completed", 100'000}}));
  const std::vector<std::string> ids = SubmitMany(*client_, "next", kTasks);
  ASSERT_EQ(ids.size(), static_cast<size_t>(kTasks));

  std::atomic<int> done{0};
  WorkerLog logs[3];
  int claims[3] = {0, 0, 0};
  std::vector<std::thread> workers;
  for (int i = 0; i < 3; ++i) {
    workers.emplace_back(ClaimNextWorker, std::cref(server_), "next-" + std::to_string(i), "next",
                         kTasks, &done, &logs[i], &claims[i]);
  }
  for (auto& w : workers) w.join();

  std::map<std::string, int> acked;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(logs[i].errors.empty()) << logs[i].errors.front();
    for (const auto& id : logs[i].completed) ++acked[id];
    // One claim to start; the queue never ran dry while it had tasks, so
    // every other task came with the complete before it.
    EXPECT_LE(claims[i], 2) << "worker " << i << " fell back to task.claim";
  }
  EXPECT_EQ(acked.size(), static_cast<size_t>(kTasks));
  for (const auto& id : ids) EXPECT_EQ(acked[id], 1) << id;
  ASSERT_OK_AND_ASSIGN(json stats, client_->Call("queue.stats", {{"queue", "next"}}));
  EXPECT_EQ(stats["counts"]["completed"], kTasks);
  EXPECT_EQ(stats["counts"]["running"], 0);
  constexpr int kProbe = kTasks / 2 + 234;
  ASSERT_OK_AND_ASSIGN(json t, client_->Call("task.get", {{"task_id", ids[kProbe]}}));
  EXPECT_EQ(t["result"], json({{"n", kProbe}}));
}

TEST_F(TasksWorkersTest, CliWorkersDrainAQueue) {
  constexpr int kTasks = 200;
  testing::TempDir dir;
  const std::string ran = dir.Sub("ran.txt");
  // The command records the task id, then echoes the payload as its result.
  const std::string script = "echo \"$SHIM_TASK_ID\" >> " + ran + "; cat";
  std::vector<pid_t> pids;
  for (int i = 0; i < 3; ++i) {
    pids.push_back(
        SpawnCliWorker(server_, "cli", "cli-" + std::to_string(i), script, dir.Sub("w.log")));
  }
  const auto t0 = Clock::now();
  const std::vector<std::string> ids = SubmitMany(*client_, "cli", kTasks);
  ASSERT_EQ(ids.size(), static_cast<size_t>(kTasks));
  const bool drained = WaitUntil(
      [&] {
        auto s = client_->Call("queue.stats", {{"queue", "cli"}});
        return s.ok() && (*s)["counts"]["completed"] == kTasks;
      },
      60'000);
  std::printf("[ info ] 3 CLI workers drained %d tasks in %lld ms\n", kTasks,
              static_cast<long long>(MsSince(t0)));
  for (pid_t p : pids) KillGroup(p);
  ASSERT_TRUE(drained) << "see " << dir.Sub("w.log");

  std::vector<std::string> lines = ReadLines(ran);
  std::multiset<std::string> ran_ids(lines.begin(), lines.end());
  EXPECT_EQ(lines.size(), static_cast<size_t>(kTasks));
  for (const auto& id : ids) EXPECT_EQ(ran_ids.count(id), 1u) << id;
  ASSERT_OK_AND_ASSIGN(json list, client_->Call("task.list", {{"queue", "cli"}, {"limit", 1000}}));
  ASSERT_EQ(list["tasks"].size(), static_cast<size_t>(kTasks));
  std::map<std::string, json> results;
  for (const json& t : list["tasks"]) results[t["task_id"]] = t["result"];
  for (int i = 0; i < kTasks; ++i) EXPECT_EQ(results[ids[i]], json({{"n", i}})) << ids[i];
}

// A task whose execution lease is much shorter than its command's run time
// completes on its first attempt: `shim worker run` renews the lease at the
// pace the claim reply's `timeout_ms` calls for (a third of it: each
// renewal, a heartbeat and an extend, has two thirds to arrive). The lease
// absorbs 30 slow steps of the load measured first, so two durable round
// trips fit in its two thirds however loaded the machine; the command runs
// 5 leases.
TEST_F(TasksWorkersTest, CliWorkerKeepsAShortLeaseAliveWhileTheCommandRuns) {
  const int64_t lease_ms = testing::MeasureLoad(*client_).Window(400, 30);
  const int64_t run_ms = 5 * lease_ms;
  testing::TempDir dir;
  char sleep_s[32];
  std::snprintf(sleep_s, sizeof(sleep_s), "%.3f", run_ms / 1000.0);
  pid_t worker = SpawnCliWorker(server_, "slow", "slow-1",
                                std::string("sleep ") + sleep_s + "; echo done", dir.Sub("w.log"));
  ASSERT_OK_AND_ASSIGN(json sub, client_->Call("task.submit", {{"queue", "slow"},
                                                               {"payload", json::object()},
                                                               {"timeout_ms", lease_ms},
                                                               {"max_attempts", 1}}));
  const std::string id = sub["task_id"];
  json task;
  const bool finished = WaitUntil(
      [&] {
        auto t = client_->Call("task.get", {{"task_id", id}});
        if (t.ok()) task = *t;
        return t.ok() && (task["state"] == "completed" || task["state"] == "failed");
      },
      static_cast<int>(run_ms) + 30'000);
  KillGroup(worker);
  ASSERT_TRUE(finished) << "see " << dir.Sub("w.log");
  EXPECT_EQ(task["state"], "completed") << task.dump();
  EXPECT_EQ(task["result"], "done");
  EXPECT_EQ(task["attempt"], 1);
}

// Cancelling a task a CLI worker runs stops its command (SIGTERM) and the
// worker goes on with the next task.
TEST_F(TasksWorkersTest, CancellingACliWorkersTaskStopsItsCommand) {
  testing::TempDir dir;
  const std::string started = dir.Sub("started.txt");
  // The first task runs "forever"; any later one finishes at once.
  const std::string script = "echo \"$SHIM_TASK_ID\" >> " + started +
                             "; read p; case \"$p\" in *long*) exec sleep 600;; esac; echo quick";
  pid_t worker = SpawnCliWorker(server_, "c", "c-1", script, dir.Sub("w.log"));
  ASSERT_OK_AND_ASSIGN(
      json a, client_->Call("task.submit", {{"queue", "c"}, {"payload", {{"kind", "long"}}}}));
  const std::string long_id = a["task_id"];
  ASSERT_TRUE(WaitUntil([&] { return ReadLines(started).size() == 1; }, 20'000))
      << "see " << dir.Sub("w.log");
  ASSERT_OK(
      client_->Call("task.cancel", {{"task_id", long_id}, {"reason", "not needed"}}).status());
  ASSERT_OK_AND_ASSIGN(
      json b, client_->Call("task.submit", {{"queue", "c"}, {"payload", {{"kind", "short"}}}}));
  const std::string short_id = b["task_id"];
  const bool done = WaitUntil(
      [&] {
        auto t = client_->Call("task.get", {{"task_id", short_id}});
        return t.ok() && (*t)["state"] == "completed";
      },
      20'000);
  KillGroup(worker);
  ASSERT_TRUE(done) << "the worker did not move on after the cancel; see " << dir.Sub("w.log");
  ASSERT_OK_AND_ASSIGN(json got, client_->Call("task.get", {{"task_id", long_id}}));
  EXPECT_EQ(got["state"], "cancelled");
  EXPECT_EQ(got["error"], "not needed");
}

// Reads one line from `fd` within `timeout_ms`.
std::string ReadLineFd(int fd, int timeout_ms) {
  std::string line;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char ch;
    if (::read(fd, &ch, 1) != 1) break;
    if (ch == '\n') return line;
    line += ch;
  }
  return line;
}

TEST_F(TasksWorkersTest, StoppedWorkerLosesItsTaskAndItsLateCompleteIsRefused) {
  ASSERT_OK_AND_ASSIGN(
      json sub,
      client_->Call("task.submit", {{"queue", "stop"}, {"payload", "p"}, {"timeout_ms", 500}}));
  const std::string task_id = sub["task_id"];

  int to_child[2], from_child[2];
  ASSERT_EQ(::pipe(to_child), 0);
  ASSERT_EQ(::pipe(from_child), 0);
  const std::string socket = server_.socket_path();
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The sleepy worker: claim, report, wait to be let go, then complete late.
    ::close(to_child[1]);
    ::close(from_child[0]);
    auto c = net::LineClient::ConnectUnix(socket);
    if (!c.ok()) ::_exit(2);
    auto r = (*c)->Call("task.claim",
                        {{"queues", {"stop"}}, {"worker_id", "sleepy"}, {"wait_ms", 5000}});
    if (!r.ok() || (*r)["tasks"].size() != 1) ::_exit(3);
    const json t = (*r)["tasks"][0];
    std::string line = t["task_id"].get<std::string>() + " " +
                       std::to_string(t["lease_token"].get<uint64_t>()) + "\n";
    if (::write(from_child[1], line.data(), line.size()) < 0) ::_exit(4);
    char go;
    if (::read(to_child[0], &go, 1) != 1) ::_exit(5);
    auto late = (*c)->Call(
        "task.complete",
        {{"task_id", t["task_id"]}, {"lease_token", t["lease_token"]}, {"result", "late"}});
    std::string reason = late.ok() ? "OK" : std::string(StatusCodeReason(late.status().code()));
    reason += "\n";
    if (::write(from_child[1], reason.data(), reason.size()) < 0) ::_exit(6);
    ::_exit(0);
  }
  ::close(to_child[0]);
  ::close(from_child[1]);
  const std::string claimed = ReadLineFd(from_child[0], 10'000);
  ASSERT_EQ(claimed.substr(0, claimed.find(' ')), task_id) << "the sleepy worker did not claim";
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);

  // Another worker waits for the task; it comes back when the lease lapses.
  const auto t0 = Clock::now();
  ASSERT_OK_AND_ASSIGN(
      json r, client_->Call("task.claim",
                            {{"queues", {"stop"}}, {"worker_id", "awake"}, {"wait_ms", 5000}}));
  const int64_t waited = MsSince(t0);
  ASSERT_EQ(r["tasks"].size(), 1u);
  const json t = r["tasks"][0];
  EXPECT_EQ(t["task_id"], task_id);
  EXPECT_EQ(t["attempt"], 2);
  EXPECT_LT(waited, 3000);
  ASSERT_OK(client_->Call(
      "task.complete",
      {{"task_id", task_id}, {"lease_token", t["lease_token"]}, {"result", "awake"}}));

  ASSERT_EQ(::kill(pid, SIGCONT), 0);
  ASSERT_EQ(::write(to_child[1], "g", 1), 1);
  const std::string late = ReadLineFd(from_child[0], 10'000);
  EXPECT_EQ(late, "NOT_OWNER");
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  ::close(to_child[1]);
  ::close(from_child[0]);

  ASSERT_OK_AND_ASSIGN(json got, client_->Call("task.get", {{"task_id", task_id}}));
  EXPECT_EQ(got["state"], "completed");
  EXPECT_EQ(got["result"], "awake");
  ASSERT_EQ(got["attempts"].size(), 2u);
  EXPECT_EQ(got["attempts"][0]["worker_id"], "sleepy");
  EXPECT_NE(got["attempts"][0].value("error", "").find("stalled"), std::string::npos);
  EXPECT_EQ(got["attempts"][1]["worker_id"], "awake");
}

TEST_F(TasksWorkersTest, KilledWorkersTaskIsRetriedByAnother) {
  testing::TempDir dir;
  const std::string ran = dir.Sub("ran.txt");
  // Attempt 1 hangs (the worker is killed meanwhile); later attempts finish.
  const std::string script = "echo \"$SHIM_WORKER_ID $SHIM_TASK_ATTEMPT\" >> " + ran +
                             "; if [ \"$SHIM_TASK_ATTEMPT\" = 1 ]; then sleep 30; fi; cat";
  pid_t first = SpawnCliWorker(server_, "kill", "first", script, dir.Sub("w.log"));
  ASSERT_OK_AND_ASSIGN(json sub, client_->Call("task.submit", {{"queue", "kill"},
                                                               {"payload", {{"x", 1}}},
                                                               {"timeout_ms", 1000},
                                                               {"max_attempts", 3}}));
  const std::string task_id = sub["task_id"];
  const bool started = WaitUntil([&] { return !ReadLines(ran).empty(); }, 10'000);
  pid_t second = SpawnCliWorker(server_, "kill", "second", script, dir.Sub("w.log"));
  if (!started) {
    KillGroup(first);
    KillGroup(second);
    FAIL() << "the first worker never ran the task; see " << dir.Sub("w.log");
  }
  const std::string first_worker = ReadLines(ran)[0].substr(0, ReadLines(ran)[0].find(' '));
  KillGroup(first);  // mid-task: the worker and its command
  const auto t0 = Clock::now();
  const bool completed = WaitUntil(
      [&] {
        auto g = client_->Call("task.get", {{"task_id", task_id}});
        return g.ok() && (*g)["state"] == "completed";
      },
      15'000);
  const int64_t took = MsSince(t0);
  KillGroup(second);
  ASSERT_TRUE(completed) << "see " << dir.Sub("w.log");
  std::printf("[ info ] the killed worker's task was completed by another %lld ms after the kill\n",
              static_cast<long long>(took));
  ASSERT_OK_AND_ASSIGN(json got, client_->Call("task.get", {{"task_id", task_id}}));
  EXPECT_EQ(got["result"], json({{"x", 1}}));
  ASSERT_EQ(got["attempts"].size(), 2u);
  EXPECT_EQ(got["attempts"][0]["worker_id"], first_worker);
  EXPECT_NE(got["attempts"][0].value("error", "").find("stalled"), std::string::npos);
  EXPECT_NE(got["attempts"][1]["worker_id"], first_worker);
  std::vector<std::string> lines = ReadLines(ran);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1].substr(lines[1].find(' ') + 1), "2");
}

// Measurements, not checks (run with --gtest_also_run_disabled_tests):
// submit -> claim -> complete cycles per second with 1 and 50 concurrent
// LineClient workers, and task.claim latency with 1,000+ tasks ready, all
// against `shim serve --durability sync`.
TEST(TasksWorkersBench, DISABLED_CyclesPerSecondAndClaimLatency) {
  for (int workers : {1, 50}) {
    ServerProcess server;
    ASSERT_OK(server.Start());
    std::atomic<int> cycles{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int w = 0; w < workers; ++w) {
      threads.emplace_back([&, w] {
        auto c = server.Connect();
        if (!c.ok()) return;
        const std::string id = "bench-" + std::to_string(w);
        while (!stop.load()) {
          auto s = (*c)->Call("task.submit", {{"queue", "bench"}, {"payload", w}});
          auto r = (*c)->Call("task.claim",
                              {{"queues", {"bench"}}, {"worker_id", id}, {"wait_ms", 1000}});
          if (!s.ok() || !r.ok() || (*r)["tasks"].empty()) continue;
          const json& t = (*r)["tasks"][0];
          if ((*c)->Call("task.complete",
                         {{"task_id", t["task_id"]}, {"lease_token", t["lease_token"]}})
                  .ok()) {
            cycles.fetch_add(1);
          }
        }
      });
    }
    const auto t0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(5));
    stop = true;
    const int n = cycles.load();
    const int64_t ms = MsSince(t0);
    for (auto& t : threads) t.join();
    std::printf("[ bench ] %d worker(s): %d cycles in %lld ms = %.0f cycles/s\n", workers, n,
                static_cast<long long>(ms), n * 1000.0 / static_cast<double>(ms));
  }
  ServerProcess server;
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto c, server.Connect());
  ASSERT_EQ(SubmitMany(*c, "lat", 2000).size(), 2000u);
  std::vector<int64_t> us;
  for (int i = 0; i < 1000; ++i) {
    const auto t0 = Clock::now();
    auto r = c->Call("task.claim", {{"queues", {"lat"}}, {"worker_id", "lat"}});
    us.push_back(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count());
    ASSERT_TRUE(r.ok() && (*r)["tasks"].size() == 1u);
  }
  std::sort(us.begin(), us.end());
  std::printf("[ bench ] task.claim with 1000-2000 ready: p50 %lld us, p99 %lld us, max %lld us\n",
              static_cast<long long>(us[500]), static_cast<long long>(us[990]),
              static_cast<long long>(us.back()));
}

}  // namespace
}  // namespace shim
