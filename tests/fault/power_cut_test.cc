// Power cuts: a real `shim serve` runs with the test-only power-cut journal
// (storage/power_cut.h) under a load of numbered writes from 4 clients, is
// SIGKILLed at a random moment, and before it restarts the data directory
// loses everything the server had not synced — as after a power loss, which
// SIGKILL alone does not simulate (the page cache survives it, so a kill
// test passes even if nothing is ever fsynced).
//
// Each client writes a sequence of operations, one at a time, each
// numbered k = 1, 2, ... within its round (a round ends at the cut), and
// each leaving a trace a reader can test after the restart:
//   state.set      its own key pc/R/C/s<k> = k        survives: the key holds k
//   state.incr     its own counter pc/R/C/n (the j-th  survives: the counter >= j
//                  incr returns j)
//   state.txn      pc/R/C/ta = pc/R/C/tb = k, one txn  survives: ta >= k; always ta == tb
//   pubsub.publish channel pc.R.C, data {k}            survives: that seq holds k
//   task.submit / task.claim / task.complete on its own queue, one task
//                  at a time, payload and result {k}   survives: the task exists /
//                                                      is running or completed / completed
// After every cut and restart, per round and client:
//   - sync: every acknowledged operation survived (the one in flight at the
//     kill may or may not have);
//   - both classes: what survived is a prefix of the sequence (no gaps), and
//     across clients a consistent prefix of time: no operation survived that
//     was sent after another client's lost one had been acknowledged;
//   - async: an acknowledged operation may be lost only if it was acknowledged
//     after the last sync of the whole WAL began (the journal says when:
//     PowerCutReport::newest_wal_synced_ns); that is the window `async`
//     may lose (docs/protocol.md), whatever the load does to its length;
//   - the store opens after every cut (Start succeeds).
// After the last cut every earlier round is checked again: what survived a
// cut must survive the later ones (sync: every acknowledged operation).
// A third test runs the sync expectations against `--durability async` —
// a server whose commits do not wait for an fsync — and must catch
// acknowledged writes lost: the proof that these checks can fail.
//
// Knobs: SHIM_FAULT_POWER_CUTS (default 8 per test), SHIM_FAULT_SEED
// (random by default; printed).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/fault/fault_util.h"
#include "tests/support/server_process.h"
#include "tests/support/test_util.h"

namespace shim::fault {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

constexpr int kClients = 4;
// Per client and round: a bound on memory and on the checks after a cut,
// far above what a round of at most 600 ms sends (about 1,000 with async
// here), so that clients are still writing when the cut comes.
constexpr int kMaxOpsPerRound = 100'000;
constexpr uint64_t kTaskTimeoutMs = 3'600'000;  // a claimed task stays running through the test

enum Kind { kSet, kIncr, kTxn, kPublish, kSubmit, kClaim, kComplete, kKinds };
constexpr std::array<const char*, kKinds> kMethod = {"state.set",      "state.incr",  "state.txn",
                                                     "pubsub.publish", "task.submit", "task.claim",
                                                     "task.complete"};

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now().time_since_epoch())
      .count();
}

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

struct Op {
  Kind kind = kSet;
  int k = 0;  // position in the client's sequence of this round, from 1
  int64_t invoke_ns = 0;
  int64_t ack_ns = -1;      // -1: no reply came (the kill); it may or may not have happened
  uint64_t incr_index = 0;  // kIncr: the counter value it makes
  uint64_t seq = 0;         // kPublish: from the reply
  std::string task_id;      // task ops
  bool acked() const { return ack_ns >= 0; }
};

struct ClientRound {
  int round = 0, client = 0;
  std::vector<Op> ops;
  std::vector<bool> survived;  // per op, decided after the cut that ended the round
  std::string prefix() const {
    return "pc/" + std::to_string(round) + "/" + std::to_string(client) + "/";
  }
  std::string channel() const {
    return "pc." + std::to_string(round) + "." + std::to_string(client);
  }
  std::string queue() const { return "pc-" + std::to_string(round) + "-" + std::to_string(client); }
};

// Runs one client's sequence until the connection dies (the kill) or it
// has sent kMaxOpsPerRound. Unexpected errors go to `errors`.
void RunClient(const testing::ServerProcess& server, uint32_t seed, ClientRound* run,
               std::vector<std::string>* errors) {
  auto connected = server.Connect();
  if (!connected.ok()) return;
  net::LineClient& conn = **connected;
  std::mt19937 rng(seed);
  uint64_t incrs = 0;
  struct {
    std::string id;
    uint64_t lease_token = 0;
    enum { kNone, kSubmitted, kClaimed } stage = kNone;
  } task;
  for (int k = 1; k <= kMaxOpsPerRound; ++k) {
    Op op;
    op.k = k;
    const int pick = std::uniform_int_distribution<int>(0, 99)(rng);
    json params;
    if (pick < 25) {
      op.kind = kSet;
      params = {{"key", run->prefix() + "s" + std::to_string(k)}, {"value", k}};
    } else if (pick < 40) {
      op.kind = kIncr;
      op.incr_index = ++incrs;
      params = {{"key", run->prefix() + "n"}};
    } else if (pick < 55) {
      op.kind = kTxn;
      params = {{"success",
                 {{{"set", {{"key", run->prefix() + "ta"}, {"value", k}}}},
                  {{"set", {{"key", run->prefix() + "tb"}, {"value", k}}}}}}};
    } else if (pick < 75) {
      op.kind = kPublish;
      params = {{"channel", run->channel()}, {"data", {{"k", k}}}};
    } else if (task.stage == task.kNone) {
      op.kind = kSubmit;
      params = {{"queue", run->queue()}, {"payload", {{"k", k}}}, {"timeout_ms", kTaskTimeoutMs}};
    } else if (task.stage == task.kSubmitted) {
      op.kind = kClaim;
      op.task_id = task.id;
      params = {{"queues", {run->queue()}}, {"worker_id", "pc-worker"}};
    } else {
      op.kind = kComplete;
      op.task_id = task.id;
      params = {{"task_id", task.id}, {"lease_token", task.lease_token}, {"result", {{"k", k}}}};
    }
    op.invoke_ns = NowNs();
    Outcome o = Invoke(conn, kMethod[op.kind], params, 15'000);
    if (o.lost()) {
      run->ops.push_back(std::move(op));
      return;
    }
    op.ack_ns = NowNs();
    if (!o.ok()) {
      errors->push_back(std::string(kMethod[op.kind]) + " refused: " + o.status.ToString());
      return;
    }
    switch (op.kind) {
      case kIncr:
        if (o.result.value("value", uint64_t{0}) != op.incr_index) {
          errors->push_back("incr " + std::to_string(op.incr_index) + " answered " +
                            o.result.dump());
        }
        break;
      case kPublish:
        op.seq = U64(o.result, "seq");
        break;
      case kSubmit:
        op.task_id = o.result.value("task_id", "");
        task = {op.task_id, 0, task.kSubmitted};
        break;
      case kClaim: {
        const json& tasks = o.result["tasks"];
        if (tasks.size() != 1 || tasks[0].value("task_id", "") != task.id) {
          errors->push_back("claim of " + task.id + " answered " + o.result.dump());
          return;
        }
        task.lease_token = U64(tasks[0], "lease_token");
        task.stage = task.kClaimed;
        break;
      }
      case kComplete:
        task.stage = task.kNone;
        break;
      default:
        break;
    }
    run->ops.push_back(std::move(op));
  }
}

// Whether each acknowledged operation of `run` is there now (see the top).
// Unacknowledged operations are left `false`: they may or may not be there.
Result<std::vector<bool>> Survivors(net::LineClient& c, const ClientRound& run,
                                    std::vector<std::string>* errors) {
  std::vector<bool> out(run.ops.size(), false);
  auto get = [&](const std::string& key) -> Result<json> {
    return c.Call("state.get", {{"key", key}}, 15'000);
  };
  auto value_of = [](const json& got) -> int64_t {
    return got.is_object() && got["value"].is_number_integer() ? got["value"].get<int64_t>() : 0;
  };
  auto counter = get(run.prefix() + "n");
  if (!counter.ok()) return counter.status();
  auto ta = get(run.prefix() + "ta");
  if (!ta.ok()) return ta.status();
  auto tb = get(run.prefix() + "tb");
  if (!tb.ok()) return tb.status();
  if (value_of(*ta) != value_of(*tb)) {
    errors->push_back(run.prefix() + ": txn half applied: ta = " + ta->dump() +
                      ", tb = " + tb->dump());
  }
  std::map<uint64_t, int64_t> messages;  // seq -> k
  for (uint64_t from = 1;;) {
    auto page = c.Call("pubsub.history",
                       {{"channel", run.channel()}, {"from_seq", from}, {"limit", 1000}}, 15'000);
    if (!page.ok()) return page.status();
    for (const json& m : (*page)["messages"])
      messages[U64(m, "seq")] = m["data"].value("k", int64_t{-1});
    const uint64_t next = U64(*page, "next_seq");
    if ((*page)["messages"].empty() || next <= from) break;
    from = next;
  }
  std::map<std::string, json> tasks;
  for (size_t i = 0; i < run.ops.size(); ++i) {
    const Op& op = run.ops[i];
    if (!op.acked()) continue;
    switch (op.kind) {
      case kSet: {
        auto got = get(run.prefix() + "s" + std::to_string(op.k));
        if (!got.ok()) return got.status();
        out[i] = value_of(*got) == op.k;
        break;
      }
      case kIncr:
        out[i] = value_of(*counter) >= static_cast<int64_t>(op.incr_index);
        break;
      case kTxn:
        out[i] = value_of(*ta) >= op.k;
        break;
      case kPublish: {
        auto it = messages.find(op.seq);
        out[i] = it != messages.end() && it->second == op.k;
        break;
      }
      default: {
        auto it = tasks.find(op.task_id);
        if (it == tasks.end()) {
          Outcome got = Invoke(c, "task.get", {{"task_id", op.task_id}}, 15'000);
          if (got.lost()) return got.status;
          // A submit lost to a cut frees its id for a later submit: the
          // queue (one per round and client) tells whose the task is.
          json t = got.ok() ? got.result : json(nullptr);
          if (t.is_object() && t["queue"] != run.queue()) t = nullptr;
          it = tasks.emplace(op.task_id, std::move(t)).first;
        }
        const json& t = it->second;
        const std::string state = t.is_object() ? t.value("state", "") : "";
        if (op.kind == kSubmit) out[i] = t.is_object();
        if (op.kind == kClaim) out[i] = state == "running" || state == "completed";
        if (op.kind == kComplete)
          out[i] = state == "completed" && t["result"].value("k", -1) == op.k;
      }
    }
  }
  return out;
}

struct Counts {
  std::array<uint64_t, kKinds> acked{}, acked_lost{};
  uint64_t cuts = 0, in_flight = 0, bytes_dropped = 0, files_removed = 0, files_restored = 0,
           wal_syncs = 0;
  uint64_t violations = 0;
  int64_t max_loss_window_ms = 0;  // kill time minus the earliest ack of a lost write
  std::string Summary() const {
    std::ostringstream out;
    uint64_t total = 0, lost = 0;
    for (int k = 0; k < kKinds; ++k) total += acked[k], lost += acked_lost[k];
    out << cuts << " cuts; " << total << " acknowledged (";
    for (int k = 0; k < kKinds; ++k) out << (k ? ", " : "") << kMethod[k] << " " << acked[k];
    out << "); " << in_flight << " in flight at a cut; " << lost
        << " acknowledged then lost to a cut (";
    for (int k = 0; k < kKinds; ++k) out << (k ? ", " : "") << kMethod[k] << " " << acked_lost[k];
    out << "), widest loss window " << max_loss_window_ms << " ms; cuts dropped " << bytes_dropped
        << " unsynced bytes, removed " << files_removed << " unsynced files, restored "
        << files_restored << " by undoing renames; " << wal_syncs
        << " WAL syncs; violations: " << violations;
    return out.str();
  }
};

enum class Expect { kSync, kAsync };

class PowerCutLoop {
 public:
  PowerCutLoop(std::string durability, Expect expect)
      : server_({.durability = std::move(durability), .power_cut_journal = true}),
        expect_(expect) {}

  // Cuts until `cuts` are done, or — when stop_at_first_loss — until an
  // acknowledged write is found lost.
  void Run(uint64_t cuts, bool stop_at_first_loss = false) {
    seed_ = static_cast<uint32_t>(EnvOr("SHIM_FAULT_SEED", std::random_device()()));
    std::cout << "[ fault ] power cuts: seed " << seed_ << " (SHIM_FAULT_SEED)" << std::endl;
    std::mt19937 rng(seed_);
    ASSERT_OK(server_.Start());
    for (uint64_t round = 0; round < cuts; ++round) {
      std::vector<ClientRound> runs(kClients);
      std::vector<std::vector<std::string>> errors(kClients);
      std::vector<std::thread> threads;
      for (int c = 0; c < kClients; ++c) {
        runs[c].round = static_cast<int>(round);
        runs[c].client = c;
        threads.emplace_back(RunClient, std::cref(server_),
                             seed_ + static_cast<uint32_t>(round * kClients + c), &runs[c],
                             &errors[c]);
      }
      std::this_thread::sleep_for(
          std::chrono::milliseconds(std::uniform_int_distribution<int>(150, 600)(rng)));
      server_.Kill();
      const int64_t kill_ns = NowNs();
      for (auto& t : threads) t.join();
      for (auto& e : errors) {
        for (auto& msg : e) Violation("round " + std::to_string(round) + ": " + msg);
      }
      auto cut = server_.CutPower();
      ASSERT_OK(cut);
      ++counts_.cuts;
      counts_.bytes_dropped += cut->bytes_dropped;
      counts_.files_removed += cut->files_removed;
      counts_.files_restored += cut->files_restored;
      counts_.wal_syncs += cut->wal_syncs;
      const Status started = server_.Start();
      ASSERT_TRUE(started.ok()) << "the store did not open after a power cut: "
                                << started.ToString() << "; log:\n"
                                << testing::ReadFile(server_.log_path());
      ASSERT_OK_AND_ASSIGN(auto reader, server_.Connect());
      for (ClientRound& run : runs) {
        ASSERT_OK_AND_ASSIGN(run.survived, Survivors(*reader, run, &survivor_errors_));
      }
      CheckRound(runs, kill_ns, cut->newest_wal_synced_ns);
      for (auto& run : runs) history_.push_back(std::move(run));
      if (stop_at_first_loss && Lost() > 0) break;
    }
    // What survived a cut survives the later ones.
    ASSERT_OK_AND_ASSIGN(auto reader, server_.Connect());
    for (const ClientRound& run : history_) {
      ASSERT_OK_AND_ASSIGN(std::vector<bool> now, Survivors(*reader, run, &survivor_errors_));
      for (size_t i = 0; i < now.size(); ++i) {
        if (run.survived[i] && !now[i]) {
          Violation(run.prefix() + " op " + std::to_string(run.ops[i].k) + " (" +
                    kMethod[run.ops[i].kind] + ") survived its cut and was lost later");
        }
      }
    }
    for (const std::string& e : survivor_errors_) Violation(e);
    std::cout << "[ fault ] power cuts (" << (expect_ == Expect::kSync ? "sync" : "async")
              << " expectations): " << counts_.Summary() << std::endl;
  }

  uint64_t Lost() const {
    uint64_t n = 0;
    for (uint64_t l : counts_.acked_lost) n += l;
    return n;
  }
  const Counts& counts() const { return counts_; }
  const std::vector<std::string>& violations() const { return violations_; }

 private:
  void Violation(const std::string& what) {
    ++counts_.violations;
    if (violations_.size() < 20) violations_.push_back(what);
  }

  void CheckRound(const std::vector<ClientRound>& runs, int64_t kill_ns, int64_t wal_synced_ns) {
    // The first acknowledged operation each client lost, for the cross-client check.
    std::vector<const Op*> first_lost(runs.size(), nullptr);
    for (size_t c = 0; c < runs.size(); ++c) {
      const ClientRound& run = runs[c];
      bool gap = false;
      for (size_t i = 0; i < run.ops.size(); ++i) {
        const Op& op = run.ops[i];
        if (!op.acked()) {
          ++counts_.in_flight;
          continue;
        }
        ++counts_.acked[op.kind];
        if (run.survived[i]) {
          if (gap) {
            Violation(run.prefix() + " op " + std::to_string(op.k) + " (" + kMethod[op.kind] +
                      ") survived after an earlier acknowledged one was lost: not a prefix");
          }
          continue;
        }
        gap = true;
        ++counts_.acked_lost[op.kind];
        counts_.max_loss_window_ms =
            std::max<int64_t>(counts_.max_loss_window_ms, (kill_ns - op.ack_ns) / 1'000'000);
        if (!first_lost[c]) first_lost[c] = &op;
        const std::string what =
            run.prefix() + " op " + std::to_string(op.k) + " (" + kMethod[op.kind] + ")";
        if (expect_ == Expect::kSync) {
          Violation(what + " was acknowledged and lost to the cut");
        } else if (op.ack_ns < wal_synced_ns) {
          Violation(what + " was acknowledged " +
                    std::to_string((wal_synced_ns - op.ack_ns) / 1000) +
                    " us before the last WAL sync began and lost: outside the async window");
        }
      }
    }
    // Across clients: nothing sent after a lost write was acknowledged survived.
    for (size_t a = 0; a < runs.size(); ++a) {
      if (!first_lost[a]) continue;
      for (size_t b = 0; b < runs.size(); ++b) {
        for (size_t i = 0; i < runs[b].ops.size(); ++i) {
          const Op& y = runs[b].ops[i];
          if (runs[b].survived[i] && y.invoke_ns > first_lost[a]->ack_ns) {
            Violation(runs[b].prefix() + " op " + std::to_string(y.k) +
                      " survived, though sent after " + runs[a].prefix() + " op " +
                      std::to_string(first_lost[a]->k) +
                      " was acknowledged and lost: not a prefix in time");
            break;
          }
        }
      }
    }
  }

  testing::ServerProcess server_;
  Expect expect_;
  uint32_t seed_ = 0;
  Counts counts_;
  std::vector<ClientRound> history_;
  std::vector<std::string> violations_, survivor_errors_;
};

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += "  " + l + "\n";
  return out;
}

TEST(PowerCutLoopTest, SyncLosesNoAcknowledgedWrite) {
  PowerCutLoop loop("sync", Expect::kSync);
  loop.Run(EnvOr("SHIM_FAULT_POWER_CUTS", 8));
  EXPECT_EQ(loop.counts().violations, 0u) << Join(loop.violations());
  EXPECT_GT(loop.counts().in_flight, 0u) << "no cut caught a request in flight";
}

TEST(PowerCutLoopTest, AsyncLosesAtMostItsWindowAndKeepsAConsistentPrefix) {
  PowerCutLoop loop("async", Expect::kAsync);
  loop.Run(EnvOr("SHIM_FAULT_POWER_CUTS", 8));
  EXPECT_EQ(loop.counts().violations, 0u) << Join(loop.violations());
}

// The proof that the checks above can fail: a server that acknowledges
// before its fsync (`async`, as a `sync` that stopped syncing would) must
// be caught losing acknowledged writes, within a few cuts.
TEST(PowerCutLoopTest, TheSyncChecksCatchAServerThatDoesNotSyncBeforeAcknowledging) {
  PowerCutLoop loop("async", Expect::kSync);
  loop.Run(EnvOr("SHIM_FAULT_POWER_CUTS", 8), /*stop_at_first_loss=*/true);
  EXPECT_GT(loop.Lost(), 0u)
      << "acknowledged writes were never lost: the power cut does not drop unsynced data";
  EXPECT_GT(loop.counts().violations, 0u);
}

}  // namespace
}  // namespace shim::fault
