// One crash test per failpoint (storage/failpoint.h, docs/failpoints.md):
// start `shim serve --durability sync` with the failpoint armed, drive
// writes until one of them hits it and the process dies, restart unarmed,
// and check that
//   - everything acknowledged before is there, exactly;
//   - the write that was in flight is entirely there or entirely absent
//     (a state.txn of three sets and an incr, a publish, a checkpoint, a
//     three-task submit_batch), and which of the two is what the failpoint's
//     position implies: absent before the store write, present after it;
//   - with many pipelined writers, what landed from each connection is a
//     prefix of what it sent (groups commit whole and in order);
//   - the revision did not go back, and the server serves new writes.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "storage/failpoint.h"
#include "tests/fault/fault_util.h"
#include "tests/support/server_process.h"
#include "tests/support/test_util.h"

namespace shim::fault {
namespace {

using nlohmann::json;
using testing::ServerProcess;

constexpr char kSession[] = "fp-session";
constexpr char kChannel[] = "fp.channel";
constexpr char kFailpointQueue[] = "fpq";
constexpr int kTasksPerBatch = 3;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Where the failpoint sits relative to the store write decides the fate of
// the write in flight.
bool InFlightWriteSurvives(const std::string& failpoint) {
  return failpoint != "store.before_write";
}

enum Kind { kTxn = 0, kPublish, kCheckpoint, kTaskBatch, kKinds };
const char* KindName(int k) {
  static const char* names[] = {"state.txn", "pubsub.publish", "checkpoint.save",
                                "task.submit_batch"};
  return names[k];
}

std::string Key(int i, char part) { return "fp/" + std::to_string(i) + "/" + part; }

json Request(int i, std::string* method) {
  switch ((i - 1) % kKinds) {
    case kTxn:
      *method = "state.txn";
      return {{"success",
               {{{"set", {{"key", Key(i, 'a')}, {"value", i}}}},
                {{"set", {{"key", Key(i, 'b')}, {"value", i}}}},
                {{"set", {{"key", Key(i, 'c')}, {"value", i}}}},
                {{"incr", {{"key", "fp/ctr"}}}}}}};
    case kPublish:
      *method = "pubsub.publish";
      return {{"channel", kChannel}, {"data", {{"i", i}}}};
    case kCheckpoint:
      *method = "checkpoint.save";
      return {{"session_id", kSession}, {"data", {{"i", i}, {"blob", std::string(2000, 'x')}}}};
    default: {
      *method = "task.submit_batch";
      json tasks = json::array();
      for (int j = 0; j < kTasksPerBatch; ++j)
        tasks.push_back(
            {{"queue", kFailpointQueue}, {"payload", {{"i", i}, {"j", j}}}, {"tags", {i, j}}});
      return {{"tasks", tasks}};
    }
  }
}

// What survived of op i, as a count of its parts found (0 = absent,
// `parts` = entirely present); checks acknowledged results exactly.
struct Found {
  int parts = 0;
  int of = 1;
};

Found Inspect(net::LineClient& c, int i, const json* acked) {
  Found f;
  switch ((i - 1) % kKinds) {
    case kTxn: {
      f.of = 3;
      for (char part : {'a', 'b', 'c'}) {
        Outcome g = Invoke(c, "state.get", {{"key", Key(i, part)}});
        EXPECT_TRUE(g.ok()) << g.status.ToString();
        if (g.ok() && !g.result.is_null()) {
          EXPECT_EQ(g.result["value"], i);
          EXPECT_EQ(g.result["version"], 1);
          ++f.parts;
        }
      }
      break;
    }
    case kPublish: {
      Outcome h =
          Invoke(c, "pubsub.history", {{"channel", kChannel}, {"from_seq", 1}, {"limit", 1000}});
      EXPECT_TRUE(h.ok()) << h.status.ToString();
      for (const json& m : h.result.value("messages", json::array())) {
        if (m["data"]["i"] != i) continue;
        ++f.parts;
        if (acked) {
          EXPECT_EQ(m["seq"], (*acked)["seq"]);
        }
      }
      break;
    }
    case kCheckpoint: {
      Outcome l = Invoke(c, "checkpoint.list", {{"session_id", kSession}, {"limit", 1000}});
      EXPECT_TRUE(l.ok()) << l.status.ToString();
      for (const json& m : l.result.value("checkpoints", json::array())) {
        Outcome g = Invoke(c, "checkpoint.get",
                           {{"session_id", kSession}, {"checkpoint_id", m["checkpoint_id"]}});
        EXPECT_TRUE(g.ok()) << g.status.ToString();
        if (!g.ok() || g.result["data"]["i"] != i) continue;
        ++f.parts;
        EXPECT_EQ(g.result["data"]["blob"], std::string(2000, 'x'));
        if (acked) {
          EXPECT_EQ(m["checkpoint_id"], (*acked)["checkpoint_id"]);
        }
      }
      break;
    }
    default: {
      f.of = kTasksPerBatch;
      Outcome l = Invoke(c, "task.list", {{"queue", kFailpointQueue}, {"limit", 1000}});
      EXPECT_TRUE(l.ok()) << l.status.ToString();
      std::set<std::string> ids;
      for (const json& t : l.result.value("tasks", json::array())) {
        if (t["tags"][0] != i) continue;  // task.list leaves payloads out; tags are [i, j]
        ++f.parts;
        ids.insert(t["task_id"].get<std::string>());
      }
      if (acked) {
        for (const json& id : (*acked)["task_ids"])
          EXPECT_TRUE(ids.count(id.get<std::string>())) << id;
      }
    }
  }
  return f;
}

struct SequentialCase {
  std::string failpoint;
  int kind;
};

class FailpointSequentialTest : public ::testing::TestWithParam<SequentialCase> {};

// One client writes one request at a time, so exactly one write is in flight
// when the process dies: commit 1 is session.open, commit 1+i is op i.
TEST_P(FailpointSequentialTest, AcknowledgedSurvivesInFlightIsAllOrNothing) {
  const SequentialCase& tc = GetParam();
  const int crash_op =
      4 + 1 + tc.kind;  // the second round of kinds, so each kind has acked ops before
  ServerProcess server(
      {.durability = "sync",
       .extra_args = {},
       .env = {"SHIM_FAILPOINTS=" + tc.failpoint + ":crash@" + std::to_string(crash_op + 1)}});
  ASSERT_OK(server.Start());
  std::map<int, json> acked;
  uint64_t max_revision = 0;
  int lost = 0;
  {
    ASSERT_OK_AND_ASSIGN(auto c, server.Connect());
    Outcome open =
        Invoke(*c, "session.open", {{"session_id", kSession}, {"keep_checkpoints", 1000}});
    ASSERT_TRUE(open.ok()) << open.status.ToString();
    for (int i = 1; i <= 3 * kKinds && lost == 0; ++i) {
      std::string method;
      json params = Request(i, &method);
      Outcome o = Invoke(*c, method, params);
      if (o.lost()) {
        lost = i;
        break;
      }
      ASSERT_TRUE(o.ok()) << method << ": " << o.status.ToString();
      acked[i] = o.result;
      max_revision = std::max(max_revision, U64(o.result, "revision"));
    }
  }
  ASSERT_EQ(lost, crash_op) << "the failpoint fired at another write than expected";
  ASSERT_EQ((lost - 1) % kKinds, tc.kind);
  EXPECT_EQ(server.WaitForExit(10'000), failpoint::kFailpointExitCode);
  const std::string log = ReadFile(server.log_path());
  EXPECT_NE(
      log.find("failpoint " + tc.failpoint + " fired (hit " + std::to_string(crash_op + 1) + ")"),
      std::string::npos)
      << log;

  server.options().env.clear();
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto c, server.Connect());
  Outcome info = Invoke(*c, "sys.info", json::object());
  ASSERT_TRUE(info.ok());
  EXPECT_GE(U64(info.result, "revision"), max_revision) << "the revision went back";

  for (const auto& [i, result] : acked) {
    Found f = Inspect(*c, i, &result);
    EXPECT_EQ(f.parts, f.of) << KindName((i - 1) % kKinds) << " #" << i
                             << " was acknowledged but is not all there";
  }
  Found f = Inspect(*c, lost, nullptr);
  EXPECT_TRUE(f.parts == 0 || f.parts == f.of)
      << KindName(tc.kind) << " in flight at the crash was applied in part: " << f.parts << " of "
      << f.of;
  EXPECT_EQ(f.parts, InFlightWriteSurvives(tc.failpoint) ? f.of : 0)
      << KindName(tc.kind) << " in flight at " << tc.failpoint;

  // The counter the txns increment: one per txn that landed.
  int txns = 0;
  for (const auto& [i, result] : acked) txns += (i - 1) % kKinds == kTxn;
  if (tc.kind == kTxn && f.parts) ++txns;
  Outcome ctr = Invoke(*c, "state.get", {{"key", "fp/ctr"}});
  ASSERT_TRUE(ctr.ok());
  EXPECT_EQ(ctr.result["value"], txns);

  // And it serves: the next write lands after everything, at a higher revision.
  Outcome w = Invoke(*c, "state.incr", {{"key", "fp/ctr"}});
  ASSERT_TRUE(w.ok()) << w.status.ToString();
  EXPECT_EQ(w.result["value"], txns + 1);
  EXPECT_GT(U64(w.result, "revision"), max_revision);
}

std::vector<SequentialCase> SequentialCases() {
  std::vector<SequentialCase> out;
  for (const char* fp : {"store.before_write", "store.after_write_before_sync", "store.after_sync",
                         "engine.after_commit_before_reply"}) {
    for (int k = 0; k < kKinds; ++k) out.push_back({fp, k});
  }
  return out;
}

std::string CaseName(const ::testing::TestParamInfo<SequentialCase>& info) {
  std::string name = info.param.failpoint + "_" + KindName(info.param.kind);
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(WritePath, FailpointSequentialTest, ::testing::ValuesIn(SequentialCases()),
                         CaseName);

class FailpointPipelinedTest : public ::testing::TestWithParam<std::string> {};

// Several connections pipeline many writes, so groups hold many commands
// from several clients; the process dies at the 10th commit. What landed
// from each connection must be a prefix of what it sent, covering at least
// what was acknowledged.
TEST_P(FailpointPipelinedTest, WhatLandedIsAPrefixPerConnection) {
  const std::string fp = GetParam();
  constexpr int kConns = 4;
  constexpr int kBursts = 20;
  constexpr int kBurst =
      25;  // writes pipelined per burst; a burst's replies are read before the next
  constexpr int kWrites = kBursts * kBurst;
  ServerProcess server(
      {.durability = "sync", .extra_args = {}, .env = {"SHIM_FAILPOINTS=" + fp + ":crash@10"}});
  ASSERT_OK(server.Start());
  std::vector<int> acked(kConns, 0);
  std::atomic<uint64_t> max_revision{0};
  std::vector<std::thread> threads;
  for (int conn = 0; conn < kConns; ++conn) {
    threads.emplace_back([&, conn] {
      auto c = server.Connect();
      if (!c.ok()) return;
      for (int burst = 0; burst < kBursts; ++burst) {
        std::vector<uint64_t> ids;
        for (int n = burst * kBurst; n < (burst + 1) * kBurst; ++n) {
          auto id = (*c)->SendRequest(
              "state.set",
              {{"key", "pipe/" + std::to_string(conn) + "/" + std::to_string(n)}, {"value", n}});
          if (!id.ok()) return;
          ids.push_back(*id);
        }
        for (uint64_t id : ids) {
          auto envelope = (*c)->ReadResponse(id, 10'000);
          if (!envelope.ok()) return;
          auto r = net::LineClient::Unwrap(*envelope);
          EXPECT_TRUE(r.ok()) << r.status().ToString();
          if (!r.ok()) return;
          ++acked[conn];
          uint64_t rev = U64(*r, "revision"), seen = max_revision.load();
          while (rev > seen && !max_revision.compare_exchange_weak(seen, rev)) {
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(server.WaitForExit(10'000), failpoint::kFailpointExitCode)
      << "the failpoint did not fire";
  server.Kill();

  server.options().env.clear();
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto c, server.Connect());
  Outcome info = Invoke(*c, "sys.info", json::object());
  ASSERT_TRUE(info.ok());
  EXPECT_GE(U64(info.result, "revision"), max_revision.load());
  int total_acked = 0, total_landed = 0;
  for (int conn = 0; conn < kConns; ++conn) {
    const std::string prefix = "pipe/" + std::to_string(conn) + "/";
    std::vector<int> present;
    Outcome l = Invoke(*c, "state.list", {{"prefix", prefix}, {"limit", 1000}});
    ASSERT_TRUE(l.ok()) << l.status.ToString();
    for (const json& item : l.result["items"]) present.push_back(item["value"].get<int>());
    std::sort(present.begin(), present.end());
    for (size_t n = 0; n < present.size(); ++n) {
      ASSERT_EQ(present[n], static_cast<int>(n))
          << "connection " << conn << ": write " << n << " is missing but a later one landed";
    }
    EXPECT_GE(static_cast<int>(present.size()), acked[conn])
        << "connection " << conn << ": acknowledged write lost";
    total_acked += acked[conn];
    total_landed += static_cast<int>(present.size());
  }
  EXPECT_GT(total_landed, 0);
  std::cout << "[ info ] " << fp << ": " << total_acked << " acknowledged, " << total_landed
            << " landed of " << kConns * kWrites << " pipelined writes" << std::endl;
  Outcome w = Invoke(*c, "state.set", {{"key", "pipe/after"}, {"value", 1}});
  EXPECT_TRUE(w.ok()) << w.status.ToString();
}

INSTANTIATE_TEST_SUITE_P(WritePath, FailpointPipelinedTest,
                         ::testing::Values("store.before_write", "store.after_write_before_sync",
                                           "store.after_sync", "engine.after_commit_before_reply"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '.', '_');
                           return name;
                         });

// The recovery failpoints, one per module's Recover() (recovery.mid_scan is
// the state module's): a store with records in every module is opened with
// each armed in turn, so the process dies in the middle of that module's
// scan (at its 3rd record: every module has at least three here); recovery
// only reads, so the next unarmed start finds everything of every module,
// at the same revision, and serves.
// What the store holds before the crashes, as the server answered it.
struct RecoveredView {
  json keys, leases, locks, channel, workers, tasks, sessions;
  uint64_t revision = 0;
};

RecoveredView ReadView(net::LineClient& c, const std::vector<std::string>& task_ids) {
  RecoveredView v;
  auto call = [&](const char* method, const json& params) {
    Outcome o = Invoke(c, method, params);
    EXPECT_TRUE(o.ok()) << method << ": " << o.status.ToString();
    return o.result;
  };
  v.keys = call("state.list", {{"prefix", "rec/"}, {"limit", 1000}})["items"];
  v.leases = call("lease.list", json::object())["leases"];
  for (json& l : v.leases) l.erase("expires_at_ms");  // full TTL again after a restart
  v.locks = json::array();
  for (const char* name : {"rec.lock.a", "rec.lock.b", "rec.lock.c"}) {
    json st = call("lock.status", {{"name", name}});
    st.erase("expires_at_ms");
    v.locks.push_back(st);
  }
  v.channel = call("pubsub.history", {{"channel", "rec.ch"}})["messages"];
  v.workers = call("worker.list", json::object())["workers"];
  for (json& w : v.workers) w.erase("last_heartbeat_at_ms");
  v.tasks = json::array();
  for (const std::string& id : task_ids) {
    json t = call("task.get", {{"task_id", id}});
    t.erase("lease_expires_at_ms");
    v.tasks.push_back(t);
  }
  v.sessions = call("session.list", json::object())["sessions"];
  v.revision = U64(call("sys.ping", json::object()), "revision");
  return v;
}

std::vector<std::string> RecoveryFailpoints() {
  std::vector<std::string> out;
  for (std::string_view name : failpoint::kFailpointNames) {
    if (name.substr(0, 9) == "recovery.") out.emplace_back(name);
  }
  return out;
}

TEST(FailpointRecoveryTest, CrashInEveryModulesRecoveryLosesNothing) {
  ServerProcess server;
  ASSERT_OK(server.Start());
  std::vector<std::string> task_ids;
  RecoveredView before;
  {
    ASSERT_OK_AND_ASSIGN(auto c, server.Connect());
    auto must = [&](const char* method, const json& params) {
      Outcome o = Invoke(*c, method, params);
      EXPECT_TRUE(o.ok()) << method << ": " << o.status.ToString();
      return o.result;
    };
    for (int i = 0; i < 40; ++i)
      must("state.set", {{"key", "rec/" + std::to_string(i)}, {"value", i}});
    for (int i = 0; i < 3; ++i) {
      const uint64_t lease =
          U64(must("lease.grant", {{"ttl_ms", 600'000}, {"owner", "rec"}}), "lease_id");
      must("state.set",
           {{"key", "rec/leased/" + std::to_string(i)}, {"value", i}, {"lease_id", lease}});
    }
    for (const char* name : {"rec.lock.a", "rec.lock.b", "rec.lock.c"}) {
      must("lock.acquire", {{"name", name}, {"owner", name}, {"ttl_ms", 600'000}});
    }
    must("pubsub.publish", {{"channel", "rec.ch"}, {"data", "m"}});
    for (int i = 0; i < 3; ++i) {
      must("worker.register",
           {{"worker_id", "rec-w" + std::to_string(i)}, {"heartbeat_ttl_ms", 600'000}});
    }
    json ids =
        must("task.submit_batch", {{"tasks",
                                    {{{"queue", "rec.q"}, {"ref", "a"}},
                                     {{"queue", "rec.q"}, {"ref", "b"}, {"depends_on", {"a"}}},
                                     {{"queue", "rec.q"}, {"delay_ms", 600'000}}}}})["task_ids"];
    for (const json& id : ids) task_ids.push_back(id.get<std::string>());
    must("task.claim", {{"queues", {"rec.q"}}, {"worker_id", "rec-w0"}});
    for (int i = 0; i < 3; ++i) {
      must("session.open",
           {{"session_id", "rec-s" + std::to_string(i)}, {"heartbeat_ttl_ms", 600'000}});
    }
    before = ReadView(*c, task_ids);
  }
  server.Kill();
  for (const std::string& fp : RecoveryFailpoints()) {
    server.options().env = {"SHIM_FAILPOINTS=" + fp + ":crash@3"};
    EXPECT_FALSE(server.Start().ok()) << "the server started although " << fp << "@3 was armed";
    EXPECT_EQ(server.last_exit_status(), failpoint::kFailpointExitCode) << fp;
    EXPECT_NE(ReadFile(server.log_path()).find("failpoint " + fp + " fired (hit 3)"),
              std::string::npos)
        << fp;
  }
  server.options().env.clear();
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto c, server.Connect());
  RecoveredView after = ReadView(*c, task_ids);
  EXPECT_EQ(after.revision, before.revision);
  EXPECT_EQ(after.keys, before.keys);
  EXPECT_EQ(after.keys.size(), 43u);
  EXPECT_EQ(after.leases, before.leases);
  EXPECT_EQ(after.leases.size(), 3u);
  EXPECT_EQ(after.locks, before.locks);
  EXPECT_EQ(after.channel, before.channel);
  EXPECT_EQ(after.workers, before.workers);
  EXPECT_EQ(after.workers.size(), 3u);
  EXPECT_EQ(after.tasks, before.tasks);
  EXPECT_EQ(after.sessions, before.sessions);
  EXPECT_EQ(after.sessions.size(), 3u);
  Outcome w = Invoke(*c, "state.set", {{"key", "rec/after"}, {"value", 1}});
  ASSERT_TRUE(w.ok()) << w.status.ToString();
  EXPECT_EQ(U64(w.result, "revision"), before.revision + 1);
}

// engine.reload: the third group write fails (store.before_write:error@3)
// and the process dies in the reload that follows. The two acknowledged
// writes are there after a restart, the failed one is not, and the
// revision goes on from the last acknowledged one.
TEST(FailpointReloadTest, CrashInTheReloadAfterAFailedWriteLosesNothingAcknowledged) {
  ServerProcess server({.durability = "sync",
                        .extra_args = {},
                        .env = {"SHIM_FAILPOINTS=store.before_write:error@3,engine.reload:crash"}});
  ASSERT_OK(server.Start());
  uint64_t acked_revision = 0;
  {
    ASSERT_OK_AND_ASSIGN(auto c, server.Connect());
    Outcome stats = Invoke(*c, "sys.stats", json::object());
    ASSERT_TRUE(stats.ok());
    ASSERT_EQ(stats.result["engine"]["store_commits"], 0)
        << "the failpoint counts on the writes below being the first";
    for (const char* key : {"reload/a", "reload/b"}) {
      Outcome w = Invoke(*c, "state.set", {{"key", key}, {"value", 1}});
      ASSERT_TRUE(w.ok()) << w.status.ToString();
      acked_revision = U64(w.result, "revision");
    }
    // Its answer (INTERNAL) may or may not leave before the process dies.
    (void)Invoke(*c, "state.set", {{"key", "reload/failed"}, {"value", 1}});
  }
  EXPECT_EQ(server.WaitForExit(10'000), failpoint::kFailpointExitCode)
      << "the failpoint did not fire";
  EXPECT_NE(ReadFile(server.log_path()).find("failpoint engine.reload fired (hit 1): crash"),
            std::string::npos)
      << ReadFile(server.log_path());

  server.options().env.clear();
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto c, server.Connect());
  for (const char* key : {"reload/a", "reload/b"}) {
    Outcome r = Invoke(*c, "state.get", {{"key", key}});
    ASSERT_TRUE(r.ok()) << r.status.ToString();
    EXPECT_EQ(r.result["value"], 1) << key;
  }
  Outcome failed = Invoke(*c, "state.get", {{"key", "reload/failed"}});
  ASSERT_TRUE(failed.ok());
  EXPECT_TRUE(failed.result.is_null()) << failed.result.dump();
  Outcome w = Invoke(*c, "state.set", {{"key", "reload/after"}, {"value", 1}});
  ASSERT_TRUE(w.ok()) << w.status.ToString();
  EXPECT_EQ(U64(w.result, "revision"), acked_revision + 1);
}

}  // namespace
}  // namespace shim::fault
