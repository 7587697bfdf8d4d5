// The linearizability checker on hand-made histories: it must accept the
// linearizable ones (including lost requests that may or may not have
// happened) and reject the ones that are not, and it must be fast on a few
// thousand concurrent operations.
#include "tests/fault/linearizability_checker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "tests/support/test_seed.h"

namespace shim::fault::lin {
namespace {

using nlohmann::json;

// Builders. Times are in arbitrary units.
Op MakeOp(int client, int64_t inv, int64_t resp, const char* method, json params) {
  Op op;
  op.client = client;
  op.invoke_ns = inv;
  op.response_ns = resp;
  op.method = method;
  op.params = std::move(params);
  return op;
}
Op Get(int client, int64_t inv, int64_t resp, const std::string& key, json value,
       uint64_t version) {
  Op op = MakeOp(client, inv, resp, "state.get", {{"key", key}});
  op.result =
      version == 0 ? json(nullptr) : json{{"key", key}, {"value", value}, {"version", version}};
  return op;
}
Op GetAbsent(int client, int64_t inv, int64_t resp, const std::string& key) {
  return Get(client, inv, resp, key, nullptr, 0);
}
Op Set(int client, int64_t inv, int64_t resp, const std::string& key, json value, uint64_t version,
       std::optional<uint64_t> expected = std::nullopt) {
  Op op = MakeOp(client, inv, resp, "state.set", {{"key", key}, {"value", value}});
  if (expected) op.params["expected_version"] = *expected;
  op.result = {{"version", version}, {"revision", 0}};
  return op;
}
Op Conflict(int client, int64_t inv, int64_t resp, const std::string& key, json value,
            uint64_t expected, uint64_t current) {
  Op op = MakeOp(client, inv, resp, "state.set",
                 {{"key", key}, {"value", value}, {"expected_version", expected}});
  op.error = StatusCode::kVersionConflict;
  op.error_details = {{"current_version", current}};
  return op;
}
Op Lost(Op op, int64_t deadline) {
  op.lost = true;
  op.result = nullptr;
  op.error.reset();
  op.response_ns = deadline;
  return op;
}
Op Incr(int client, int64_t inv, int64_t resp, const std::string& key, int64_t value,
        uint64_t version) {
  Op op = MakeOp(client, inv, resp, "state.incr", {{"key", key}});
  op.result = {{"value", value}, {"version", version}, {"revision", 0}};
  return op;
}
Op Txn(int client, int64_t inv, int64_t resp, json compare, json success, json failure,
       bool succeeded, json results) {
  Op op = MakeOp(client, inv, resp, "state.txn",
                 {{"compare", compare}, {"success", success}, {"failure", failure}});
  op.result = {{"succeeded", succeeded}, {"results", results}, {"revision", 0}};
  return op;
}

void ExpectOk(const std::vector<Op>& h) {
  CheckResult r = Check(h);
  EXPECT_TRUE(r.ok) << r.message;
}
void ExpectRejected(const std::vector<Op>& h) {
  CheckResult r = Check(h);
  EXPECT_FALSE(r.ok) << "a non-linearizable history was accepted";
  EXPECT_NE(r.message.find("not linearizable"), std::string::npos) << r.message;
}

TEST(LinearizabilityCheckerTest, AcceptsSequentialAndConcurrentHistories) {
  ExpectOk({GetAbsent(0, 0, 1, "k"), Set(0, 2, 3, "k", "a", 1), Get(1, 4, 5, "k", "a", 1),
            Set(1, 6, 7, "k", "b", 2, 1), Get(0, 8, 9, "k", "b", 2)});
  // Overlapping: the read may see either side of the concurrent write.
  ExpectOk({Set(0, 0, 1, "k", "a", 1), Set(1, 2, 10, "k", "b", 2), Get(2, 3, 4, "k", "b", 2),
            Get(3, 5, 6, "k", "b", 2)});
  ExpectOk({Set(0, 0, 1, "k", "a", 1), Set(1, 2, 10, "k", "b", 2), Get(2, 3, 4, "k", "a", 1),
            Get(3, 5, 6, "k", "b", 2)});
  // Two concurrent writes whose versions tell their order, against real-time intervals.
  ExpectOk({Set(0, 0, 10, "k", "x", 2), Set(1, 1, 9, "k", "y", 1), Get(2, 11, 12, "k", "x", 2)});
  // Keys are independent.
  ExpectOk({Set(0, 0, 1, "a", 1, 1), Set(0, 2, 3, "b", 1, 1), Get(1, 4, 5, "a", 1, 1),
            GetAbsent(1, 6, 7, "c")});
}

TEST(LinearizabilityCheckerTest, RejectsAStaleRead) {
  // b was acknowledged before the read began, yet the read returns a.
  ExpectRejected({Set(0, 0, 1, "k", "a", 1), Set(0, 2, 3, "k", "b", 2), Get(1, 4, 5, "k", "a", 1)});
  // A read that goes back in time: after one reader saw b, a later one sees a.
  ExpectRejected({Set(0, 0, 1, "k", "a", 1), Set(1, 2, 20, "k", "b", 2), Get(2, 3, 4, "k", "b", 2),
                  Get(3, 5, 6, "k", "a", 1)});
  // A read of a value nobody wrote.
  ExpectRejected({Set(0, 0, 1, "k", "a", 1), Get(1, 2, 3, "k", "zzz", 1)});
  // A key seen, then absent without a delete.
  ExpectRejected({Set(0, 0, 1, "k", "a", 1), GetAbsent(1, 2, 3, "k")});
}

TEST(LinearizabilityCheckerTest, RejectsLostUpdatesAndBadCompareAndSet) {
  // Two CAS from version 1 both "succeed".
  ExpectRejected(
      {Set(0, 0, 1, "k", "a", 1), Set(1, 2, 5, "k", "b", 2, 1), Set(2, 2, 5, "k", "c", 2, 1)});
  // A CAS that succeeded though the key was not at the expected version.
  ExpectRejected(
      {Set(0, 0, 1, "k", "a", 1), Set(0, 2, 3, "k", "b", 2), Set(1, 4, 5, "k", "c", 3, 1)});
  // A conflict reporting a version the key never had at that time.
  ExpectRejected({Set(0, 0, 1, "k", "a", 1), Conflict(1, 2, 3, "k", "x", 0, 2)});
  // ... and a correct conflict is fine.
  ExpectOk(
      {Set(0, 0, 1, "k", "a", 1), Conflict(1, 2, 3, "k", "x", 0, 1), Get(1, 4, 5, "k", "a", 1)});
  // Concurrent increments must return distinct values.
  ExpectRejected({Incr(0, 0, 5, "n", 1, 1), Incr(1, 0, 5, "n", 1, 1)});
  ExpectOk({Incr(0, 0, 5, "n", 2, 2), Incr(1, 0, 5, "n", 1, 1), Get(2, 6, 7, "n", 2, 2)});
}

TEST(LinearizabilityCheckerTest, LostRequestsMayOrMayNotHaveHappenedButOnlyBeforeTheCrash) {
  // A lost set (the server died at 10) that nobody saw: fine.
  ExpectOk({Set(0, 0, 1, "k", "a", 1), Lost(Set(1, 2, 3, "k", "b", 0), 10),
            Get(2, 11, 12, "k", "a", 1)});
  // One that a later read saw: fine too.
  ExpectOk({Set(0, 0, 1, "k", "a", 1), Lost(Set(1, 2, 3, "k", "b", 0), 10),
            Get(2, 11, 12, "k", "b", 2)});
  // But not one that appeared after the crash: a read after the crash saw a,
  // a later one b, with no other writer.
  ExpectRejected({Set(0, 0, 1, "k", "a", 1), Lost(Set(1, 2, 3, "k", "b", 0), 10),
                  Get(2, 11, 12, "k", "a", 1), Get(2, 13, 14, "k", "b", 2)});
  // A lost CAS can only have happened if the key was at its expected version.
  ExpectRejected({Set(0, 0, 1, "k", "a", 1), Lost(Set(1, 2, 3, "k", "b", 0, 0), 10),
                  Get(2, 11, 12, "k", "b", 2)});
  // A request sent after the server was gone never happened.
  ExpectRejected({Set(0, 0, 1, "k", "a", 1), Lost(Set(1, 12, 13, "k", "b", 0), 10),
                  Get(2, 14, 15, "k", "b", 2)});
}

TEST(LinearizabilityCheckerTest, TransactionsAreCheckedOnEveryKeyTheyTouch) {
  const json cmp = json::array({{{"key", "a"}, {"version", 1}}});
  const json ops =
      json::array({json{{"set", {{"key", "a"}, {"value", "a2"}}}}, json{{"incr", {{"key", "n"}}}}});
  // Succeeded at a@1: a becomes version 2, n counts from 0.
  ExpectOk({Set(0, 0, 1, "a", "a1", 1),
            Txn(0, 2, 3, cmp, ops, json::array(), true,
                json::array({{{"version", 2}}, {{"value", 1}, {"version", 1}}})),
            Get(1, 4, 5, "a", "a2", 2), Get(1, 6, 7, "n", 1, 1)});
  // Claims success though a was at version 2 by then.
  ExpectRejected({Set(0, 0, 1, "a", "a1", 1), Set(0, 2, 3, "a", "a1b", 2),
                  Txn(0, 4, 5, cmp, ops, json::array(), true,
                      json::array({{{"version", 3}}, {{"value", 1}, {"version", 1}}}))});
  // Claims failure though a was at version 1 (a single compare, on a).
  ExpectRejected(
      {Set(0, 0, 1, "a", "a1", 1), Txn(0, 2, 3, cmp, ops, json::array(), false, json::array())});
  // Failed at a@2, running the failure branch.
  ExpectOk({Set(0, 0, 1, "a", "a1", 1), Set(0, 2, 3, "a", "a1b", 2),
            Txn(0, 4, 5, cmp, ops, json::array({json{{"incr", {{"key", "n"}, {"by", 5}}}}}), false,
                json::array({{{"value", 5}, {"version", 1}}})),
            Get(1, 6, 7, "n", 5, 1)});
  // A lost txn: either all of its success branch on a key, or nothing.
  ExpectOk({Set(0, 0, 1, "a", "a1", 1),
            Lost(Txn(0, 2, 3, cmp, ops, json::array(), true, nullptr), 10),
            Get(1, 11, 12, "n", 1, 1), Get(1, 13, 14, "a", "a2", 2)});
  ExpectRejected({Set(0, 0, 1, "a", "a1", 1),
                  Lost(Txn(0, 2, 3, cmp, ops, json::array(), true, nullptr), 10),
                  Get(1, 11, 12, "n", 2, 1)});
}

// A linearizable history by construction: each client's operation takes
// effect at a random instant inside its interval, in the order of those
// instants, against the sequential model.
std::vector<Op> RandomLinearizableHistory(int clients, int ops_per_client, int keys,
                                          uint32_t seed) {
  std::mt19937 rng(seed);
  struct Pending {
    int64_t point;
    int client;
    Op op;
  };
  std::vector<Pending> pending;
  for (int c = 0; c < clients; ++c) {
    int64_t t = std::uniform_int_distribution<int64_t>(0, 50)(rng);
    for (int i = 0; i < ops_per_client; ++i) {
      const int64_t inv = t;
      const int64_t point = inv + std::uniform_int_distribution<int64_t>(1, 100)(rng);
      const int64_t resp = point + std::uniform_int_distribution<int64_t>(1, 100)(rng);
      Op op = MakeOp(c, inv, resp, "", nullptr);
      pending.push_back({point, c, op});
      t = resp + std::uniform_int_distribution<int64_t>(1, 20)(rng);
    }
  }
  std::sort(pending.begin(), pending.end(),
            [](const Pending& a, const Pending& b) { return a.point < b.point; });
  struct Cell {
    json value;
    uint64_t version = 0;
  };
  std::map<std::string, Cell> model;
  std::vector<Op> history;
  int n = 0;
  for (Pending& p : pending) {
    Op op = p.op;
    const std::string key =
        "k" + std::to_string(std::uniform_int_distribution<int>(0, keys - 1)(rng));
    Cell& cell = model[key];
    const int kind = std::uniform_int_distribution<int>(0, 9)(rng);
    if (kind < 4) {
      op.method = "state.get";
      op.params = {{"key", key}};
      op.result =
          cell.version ? json{{"value", cell.value}, {"version", cell.version}} : json(nullptr);
    } else if (kind < 7) {
      op.method = "state.set";
      op.params = {{"key", key}, {"value", "v" + std::to_string(++n)}};
      cell.value = op.params["value"];
      op.result = {{"version", ++cell.version}};
    } else {
      // CAS against a guess of the version: sometimes right, sometimes stale.
      const uint64_t expected =
          cell.version -
          std::min<uint64_t>(cell.version, std::uniform_int_distribution<int>(0, 1)(rng));
      op.method = "state.set";
      op.params = {
          {"key", key}, {"value", "v" + std::to_string(++n)}, {"expected_version", expected}};
      if (expected == cell.version) {
        cell.value = op.params["value"];
        op.result = {{"version", ++cell.version}};
      } else {
        op.error = StatusCode::kVersionConflict;
        op.error_details = {{"current_version", cell.version}};
      }
    }
    history.push_back(std::move(op));
  }
  return history;
}

TEST(LinearizabilityCheckerTest, ChecksThousandsOfConcurrentOpsQuickly) {
  SHIM_TEST_SEED_TRACE(base, 1);
  for (uint32_t seed : {base, base + 1, base + 2}) {
    std::vector<Op> h = RandomLinearizableHistory(8, 500, 4, seed);
    const auto start = std::chrono::steady_clock::now();
    CheckResult r = Check(h);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    EXPECT_TRUE(r.ok) << "seed " << seed << ": " << r.message;
    EXPECT_EQ(r.ops, h.size());
    EXPECT_LT(ms.count(), 10'000) << "seed " << seed;
    std::cout << "[ info ] seed " << seed << ": " << h.size() << " ops on " << r.keys
              << " keys checked in " << ms.count() << " ms, " << r.steps << " search steps"
              << std::endl;

    // Swap the results of two reads of one key that saw different versions at
    // clearly different times: no longer linearizable.
    std::vector<Op> bad = h;
    bool broken = false;
    for (size_t i = 0; i < bad.size() && !broken; ++i) {
      if (bad[i].method != "state.get" || bad[i].result.is_null()) continue;
      for (size_t j = i + 1; j < bad.size() && !broken; ++j) {
        if (bad[j].method != "state.get" || bad[j].result.is_null() ||
            bad[j].params != bad[i].params)
          continue;
        if (bad[j].invoke_ns <= bad[i].response_ns + 2000) continue;  // far apart in time
        if (bad[j].result["version"].get<uint64_t>() <=
            bad[i].result["version"].get<uint64_t>() + 1)
          continue;
        std::swap(bad[i].result, bad[j].result);
        broken = true;
      }
    }
    ASSERT_TRUE(broken);
    EXPECT_FALSE(Check(bad).ok) << "seed " << seed;
  }
}

}  // namespace
}  // namespace shim::fault::lin
