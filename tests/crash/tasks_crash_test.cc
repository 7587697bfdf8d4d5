// Crash test for the task queues: `shim serve --durability sync` is
// SIGKILLed while a submitter and several LineClient workers drain a queue.
// After the restart: every acknowledged submit exists, every acknowledged
// completion is completed, no completion was acknowledged to two workers,
// tasks running at the kill either complete once with their old token or
// are re-claimed after their lease, and in the end every task is completed
// exactly once (one `completed` event each).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/server_process.h"
#include "tests/support/test_util.h"

namespace shim {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using testing::ServerProcess;

constexpr char kQueue[] = "crashq";
using testing::kCallTimeoutMs;
// Long enough for the restart and the listing of ~3,000 tasks after it to
// finish within the lease the restart gives running tasks again (under ASan
// they took longer than 2.5 s), short enough for the leftovers to lapse.
constexpr int64_t kLeaseMs = testing::LatencyBoundMs(2500);
constexpr int kBatch = 20;  // tasks per submit_batch during the drain

struct Ledger {
  std::mutex mu;
  std::set<std::string> submitted;                        // acknowledged submits
  std::map<std::string, std::vector<std::string>> acked;  // task -> workers told "completed"
  std::map<std::string, uint64_t> held;                   // claimed, complete not acknowledged
  std::set<std::string> complete_sent;                    // a complete was sent for a held task
  int completions = 0;
  int lost_leases = 0;  // completes refused because the lease had lapsed
};

json TaskSpec(int i) {
  return {{"queue", kQueue},
          {"payload", {{"i", i}}},
          {"timeout_ms", kLeaseMs},
          {"max_attempts", 100},
          {"backoff", {{"delay_ms", 0}}}};
}

// Submits a batch every 10 ms until stopped or the server goes away.
void Submitter(const ServerProcess& server, int first, Ledger* ledger, std::atomic<bool>* stop) {
  auto c = server.Connect();
  if (!c.ok()) return;
  for (int n = first; !stop->load(); n += kBatch) {
    json tasks = json::array();
    for (int i = n; i < n + kBatch; ++i) tasks.push_back(TaskSpec(i));
    auto r = (*c)->Call("task.submit_batch", {{"tasks", tasks}}, kCallTimeoutMs);
    if (!r.ok()) return;
    {
      std::lock_guard<std::mutex> lock(ledger->mu);
      for (const json& id : (*r)["task_ids"]) ledger->submitted.insert(id);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// Claims up to 10, "works" for `work_ms`, and completes them pipelined,
// recording what was acknowledged; stops at the first error (the server was
// killed) or when `stop` is set and nothing was claimed.
void Worker(const ServerProcess& server, const std::string& name, int work_ms, Ledger* ledger,
            std::atomic<bool>* stop) {
  auto connected = server.Connect();
  if (!connected.ok()) return;
  auto& c = **connected;
  while (true) {
    auto r = c.Call("task.claim",
                    {{"queues", {kQueue}}, {"worker_id", name}, {"max", 10}, {"wait_ms", 100}},
                    kCallTimeoutMs);
    if (!r.ok()) return;
    if ((*r)["tasks"].empty() && stop->load()) return;
    std::vector<std::pair<uint64_t, std::string>> pending;
    {
      std::lock_guard<std::mutex> lock(ledger->mu);
      for (const json& t : (*r)["tasks"])
        ledger->held[t["task_id"]] = t["lease_token"].get<uint64_t>();
    }
    if (work_ms > 0 && !(*r)["tasks"].empty())
      std::this_thread::sleep_for(std::chrono::milliseconds(work_ms));
    for (const json& t : (*r)["tasks"]) {
      {
        std::lock_guard<std::mutex> lock(ledger->mu);
        ledger->complete_sent.insert(t["task_id"].get<std::string>());
      }
      auto id = c.SendRequest(
          "task.complete",
          {{"task_id", t["task_id"]}, {"lease_token", t["lease_token"]}, {"result", name}});
      if (!id.ok()) return;
      pending.emplace_back(*id, t["task_id"]);
    }
    for (const auto& [rid, task_id] : pending) {
      auto done = c.ReadResponse(rid, kCallTimeoutMs);
      std::lock_guard<std::mutex> lock(ledger->mu);
      if (done.ok()) {
        ledger->acked[task_id].push_back(name);
        ledger->held.erase(task_id);
        ledger->complete_sent.erase(task_id);
        ++ledger->completions;
        continue;
      }
      if (done.status().code() == StatusCode::kInternal) return;  // connection lost
      // The lease lapsed (a slow machine): the task is someone else's now,
      // and nothing was acknowledged. Anything else is a bug.
      EXPECT_EQ(done.status().code(), StatusCode::kNotOwner)
          << name << " " << task_id << ": " << done.status().ToString();
      ++ledger->lost_leases;
      ledger->held.erase(task_id);
      ledger->complete_sent.erase(task_id);
    }
  }
}

// task_id -> task description, every task of the queue.
std::map<std::string, json> ListAll(net::LineClient& c) {
  std::map<std::string, json> out;
  json after = nullptr;
  for (int page = 0; page < 1000; ++page) {
    json p = {{"queue", kQueue}, {"limit", 1000}};
    if (!after.is_null()) p["after"] = after;
    auto r = c.Call("task.list", p, kCallTimeoutMs);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) break;
    for (const json& t : (*r)["tasks"]) out[t["task_id"]] = t;
    after = (*r)["next"];
    if (after.is_null()) break;
  }
  return out;
}

TEST(TasksCrashTest, KillDuringDrainLosesNothingAndRunsNothingTwice) {
  constexpr int kInitialTasks = testing::SanitizedLoad(2000, 600);
  ServerProcess server;  // --durability sync (the default)
  ASSERT_OK(server.Start());
  Ledger ledger;
  {
    ASSERT_OK_AND_ASSIGN(auto c, server.Connect());
    ASSERT_OK(c->Call("queue.configure", {{"queue", kQueue}, {"keep_completed", 1'000'000}}));
    ASSERT_OK(c->Call("pubsub.configure",
                      {{"channel", std::string("events.") + kQueue}, {"max_messages", 1'000'000}}));
    json tasks = json::array();
    for (int i = 0; i < kInitialTasks; ++i) tasks.push_back(TaskSpec(-1 - i));
    ASSERT_OK_AND_ASSIGN(json r, c->Call("task.submit_batch", {{"tasks", tasks}}, 60'000));
    for (const json& id : r["task_ids"]) ledger.submitted.insert(id);
  }

  // Phase 1: drain while submitting, then SIGKILL the server mid-stream.
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  threads.emplace_back(Submitter, std::cref(server), 0, &ledger, &stop);
  for (int w = 0; w < 4; ++w)
    threads.emplace_back(Worker, std::cref(server), "w" + std::to_string(w), 20, &ledger, &stop);
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> lock(ledger.mu);
      // Mid-stream: some claims are held, their completes not yet acknowledged.
      if (ledger.completions >= kInitialTasks * 3 / 4 && ledger.held.size() >= 5) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  server.Kill();
  stop = true;
  for (auto& t : threads) t.join();
  threads.clear();
  std::printf(
      "[ info ] at the kill: %zu submits acknowledged, %d completions acknowledged, %zu tasks "
      "held\n",
      ledger.submitted.size(), ledger.completions, ledger.held.size());
  ASSERT_GT(ledger.completions, 0);

  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto c, server.Connect());
  std::map<std::string, json> tasks = ListAll(*c);
  // No acknowledged submit is lost; no acknowledged completion is lost.
  for (const auto& id : ledger.submitted)
    ASSERT_TRUE(tasks.count(id)) << "acknowledged submit lost: " << id;
  // An in-flight batch is all there or not there at all.
  EXPECT_EQ((tasks.size() - ledger.submitted.size()) % kBatch, 0u);
  for (const auto& [id, workers] : ledger.acked) {
    ASSERT_TRUE(tasks.count(id)) << id;
    EXPECT_EQ(tasks[id]["state"], "completed") << "acknowledged completion lost: " << id;
    EXPECT_EQ(workers.size(), 1u) << id << " acknowledged as completed to several workers";
  }

  // Tasks held at the kill: half are completed with their old token right
  // away (they keep running, with a full lease again, unless the lost
  // acknowledgement's write made it); the rest are left to their lease.
  std::set<std::string> durable_unacked;  // completed by a write whose ack was lost
  int retried_with_old_token = 0;
  int i = 0;
  for (const auto& [id, token] : ledger.held) {
    const bool sent = ledger.complete_sent.count(id) > 0;
    if (i++ % 2 == 0) {
      auto r = c->Call("task.complete",
                       {{"task_id", id}, {"lease_token", token}, {"result", "after-restart"}});
      if (r.ok()) {
        ledger.acked[id].push_back("after-restart");
        ++retried_with_old_token;
      } else {
        EXPECT_EQ(r.status().code(), StatusCode::kInvalidState)
            << id << ": " << r.status().ToString();
        EXPECT_TRUE(sent) << id << " was completed though no complete was ever sent";
        durable_unacked.insert(id);
      }
    } else if (tasks[id]["state"] == "completed") {
      EXPECT_TRUE(sent) << id;
      durable_unacked.insert(id);
    } else {
      EXPECT_EQ(tasks[id]["state"], "running") << id;
    }
  }

  // Phase 2: fresh workers drain the rest, including the leftovers once
  // their leases lapse.
  std::atomic<bool> stop2{false};
  for (int w = 0; w < 3; ++w)
    threads.emplace_back(Worker, std::cref(server), "r" + std::to_string(w), 0, &ledger, &stop2);
  const size_t total = tasks.size();
  bool drained = false;
  const auto deadline2 = Clock::now() + std::chrono::milliseconds(testing::LatencyBoundMs(30'000));
  while (!drained && Clock::now() < deadline2) {
    auto s = c->Call("queue.stats", {{"queue", kQueue}});
    drained = s.ok() && (*s)["counts"]["completed"] == total;
    if (!drained) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stop2 = true;
  for (auto& t : threads) t.join();
  ASSERT_TRUE(drained) << "the queue was not drained after the restart";
  std::printf(
      "[ info ] after restart: %d held tasks completed with their old token, %zu were already "
      "completed, %d completes refused for a lapsed lease\n",
      retried_with_old_token, durable_unacked.size(), ledger.lost_leases);

  // Every task completed exactly once: one acknowledgement (none if the
  // write of a lost acknowledgement made it), and one `completed` event.
  tasks = ListAll(*c);
  EXPECT_EQ(tasks.size(), total);
  std::map<std::string, int> completed_events, claimed_events;
  int64_t from = 1;
  for (int page = 0; page < 1000; ++page) {
    auto r = c->Call(
        "pubsub.history",
        {{"channel", std::string("events.") + kQueue}, {"from_seq", from}, {"limit", 1000}});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if ((*r)["messages"].empty()) break;
    for (const json& m : (*r)["messages"]) {
      if (m["data"]["type"] == "completed") ++completed_events[m["data"]["task_id"]];
      if (m["data"]["type"] == "claimed") ++claimed_events[m["data"]["task_id"]];
    }
    from = (*r)["next_seq"].get<int64_t>();
  }
  int bad = 0;
  for (const auto& [id, t] : tasks) {
    const size_t acks = ledger.acked.count(id) ? ledger.acked[id].size() : 0;
    const bool ok =
        t["state"] == "completed" && completed_events[id] == 1 &&
        (acks == 1 ||
         (acks == 0 && durable_unacked.count(id) + ledger.complete_sent.count(id) > 0)) &&
        claimed_events[id] == t["attempt"].get<int>();
    if (!ok && ++bad <= 5) {
      ADD_FAILURE() << id << ": state " << t["state"] << ", acks " << acks << ", completed events "
                    << completed_events[id] << ", claimed events " << claimed_events[id]
                    << ", attempt " << t["attempt"];
    }
  }
  EXPECT_EQ(bad, 0);
}

}  // namespace
}  // namespace shim
