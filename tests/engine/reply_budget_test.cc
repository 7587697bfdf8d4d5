// Paged list reads end their page at EngineLimits::max_reply_bytes
// (engine/reply_budget.h): every page holds at least one item, at most the
// budget plus one item, and its continuation reaches every item exactly
// once. FakeClock, a real store, no sockets.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "base/json_text.h"
#include "tests/engine/engine_fixture.h"

namespace shim::engine::test {
namespace {

constexpr size_t kBudget = 4000;
const std::string kBlob(1000, 'x');  // each item carries about this much

class ReplyBudgetTest : public EngineTest {
 protected:
  void SetUp() override {
    limits_.max_reply_bytes = kBudget;
    EngineTest::SetUp();
  }

  // Reads every page of `method`: `cursor` is the param that takes the
  // previous page's `next_field`. Returns the items in order and checks
  // each page's size.
  std::vector<json> ReadAll(const std::string& method, json params, const std::string& items_field,
                            const std::string& cursor = "after",
                            const std::string& next_field = "next") {
    std::vector<json> all;
    for (int page = 0; page < 1000; ++page) {
      json r = Ok(method, params);
      const json& items = r[items_field];
      EXPECT_FALSE(items.empty()) << method << ": a page holds at least one item";
      size_t bytes = 0, largest = 0;
      for (const json& item : items) {
        const size_t n = DumpCompact(item).size();
        bytes += n;
        largest = std::max(largest, n);
        all.push_back(item);
      }
      EXPECT_LE(bytes, kBudget + largest)
          << method << ": page " << page << " is over the budget plus one item";
      ++pages_;
      if (r[next_field].is_null()) return all;
      params[cursor] = r[next_field];
    }
    ADD_FAILURE() << method << " never ended";
    return all;
  }
  // `method`, asked with no params, lists `count` items in three pages or more.
  void ExpectListOverPages(const std::string& method, const std::string& items_field,
                           size_t count) {
    pages_ = 0;
    EXPECT_EQ(ReadAll(method, json::object(), items_field).size(), count) << method;
    EXPECT_GE(pages_, 3) << method;
  }
  int pages_ = 0;
};

TEST_F(ReplyBudgetTest, StateListPagesBigValuesByBytesAndReachesEveryKeyOnce) {
  for (int i = 0; i < 20; ++i)
    Ok("state.set", {{"key", "k/" + std::to_string(100 + i)}, {"value", kBlob}});
  std::vector<json> items = ReadAll("state.list", {{"prefix", "k/"}, {"limit", 1000}}, "items");
  ASSERT_EQ(items.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(items[i]["key"], "k/" + std::to_string(100 + i));
  EXPECT_GE(pages_, 5) << "20 values of 1 KB in pages of 4 KB";
}

TEST_F(ReplyBudgetTest, AnItemLargerThanTheBudgetStillComesAloneOnItsPage) {
  const std::string huge(3 * kBudget, 'h');
  Ok("state.set", {{"key", "a"}, {"value", huge}});
  Ok("state.set", {{"key", "b"}, {"value", huge}});
  json first = Ok("state.list", json::object());
  ASSERT_EQ(first["items"].size(), 1u);
  EXPECT_EQ(first["items"][0]["value"], huge);
  EXPECT_EQ(first["next"], "a");
  json second = Ok("state.list", {{"after", "a"}});
  ASSERT_EQ(second["items"].size(), 1u);
  EXPECT_TRUE(second["next"].is_null());
}

TEST_F(ReplyBudgetTest, TaskListPagesByBytes) {
  std::set<std::string> ids;
  for (int i = 0; i < 12; ++i) {
    json r = Ok("task.submit", {{"queue", "q"}, {"payload", kBlob}});
    ids.insert(r["task_id"].get<std::string>());
    // Results are in the listing: a completed task with a 1 KB result is a 1 KB item.
    json claimed = Ok("task.claim", {{"queues", {"q"}}, {"worker_id", "w"}});
    Ok("task.complete", {{"task_id", claimed["tasks"][0]["task_id"]},
                         {"lease_token", claimed["tasks"][0]["lease_token"]},
                         {"result", kBlob}});
  }
  std::vector<json> items = ReadAll("task.list", {{"queue", "q"}, {"limit", 1000}}, "tasks");
  std::set<std::string> seen;
  for (const json& t : items) seen.insert(t["task_id"].get<std::string>());
  EXPECT_EQ(seen, ids);
  EXPECT_EQ(items.size(), ids.size());
  EXPECT_GE(pages_, 3);
}

TEST_F(ReplyBudgetTest, CheckpointListPagesByBytes) {
  Ok("session.open", {{"session_id", "s"}});
  for (int i = 0; i < 10; ++i) {
    Ok("checkpoint.save", {{"session_id", "s"}, {"data", i}, {"signals", {{"note", kBlob}}}});
  }
  std::vector<json> items = ReadAll("checkpoint.list", {{"session_id", "s"}, {"limit", 1000}},
                                    "checkpoints", "before", "next_before");
  ASSERT_EQ(items.size(), 10u);
  for (size_t i = 1; i < items.size(); ++i)
    EXPECT_LT(items[i]["checkpoint_id"], items[i - 1]["checkpoint_id"]);
  EXPECT_GE(pages_, 3);
}

TEST_F(ReplyBudgetTest, WorkerAndSessionListsPageByBytes) {
  for (int i = 0; i < 10; ++i) {
    Ok("worker.register",
       {{"worker_id", "w" + std::to_string(i)}, {"metadata", {{"blob", kBlob}}}});
    Ok("session.open", {{"session_id", "s" + std::to_string(i)}, {"metadata", {{"blob", kBlob}}}});
  }
  ExpectListOverPages("worker.list", "workers", 10);
  ExpectListOverPages("session.list", "sessions", 10);
}

TEST_F(ReplyBudgetTest, LeaseLockAndQueueListsPageByBytes) {
  // Small items: the budget of 4 KB holds a few dozen of each.
  for (int i = 0; i < 200; ++i) {
    const std::string n = std::to_string(1000 + i);
    Ok("lease.grant", {{"ttl_ms", 60'000}, {"owner", "owner-" + n}});
    Ok("lock.acquire", {{"name", "lock-" + n}, {"owner", "o"}, {"ttl_ms", 60'000}});
    Ok("queue.configure", {{"queue", "queue-" + n}});
  }
  ExpectListOverPages("lease.list", "leases", 200);
  ExpectListOverPages("lock.list", "locks", 200);
  ExpectListOverPages("queue.list", "queues", 200);
}

TEST_F(ReplyBudgetTest, SignalHistoryPagesFromASinceTimeAndKeepsTheNewestWithoutOne) {
  Ok("session.open", {{"session_id", "s"}});
  for (int i = 0; i < 10; ++i) {
    Ok("signal.record", {{"session_id", "s"}, {"signals", {{"messages", i}, {"note", kBlob}}}});
    Advance(1);
  }
  std::vector<json> all =
      ReadAll("signal.history", {{"session_id", "s"}, {"since_at_ms", 0}, {"limit", 1000}},
              "signals", "since_at_ms", "next_since_at_ms");
  ASSERT_EQ(all.size(), 10u) << "one sample per millisecond: no repeats";
  for (int i = 0; i < 10; ++i) EXPECT_EQ(all[i]["signals"]["messages"], i);
  // Without since_at_ms: the most recent that fit, oldest first.
  json newest = Ok("signal.history", {{"session_id", "s"}, {"limit", 1000}});
  const json& samples = newest["signals"];
  ASSERT_GE(samples.size(), 1u);
  ASSERT_LT(samples.size(), 10u);
  EXPECT_EQ(samples.back()["signals"]["messages"], 9);
  EXPECT_TRUE(newest["next_since_at_ms"].is_null());
}

}  // namespace
}  // namespace shim::engine::test
