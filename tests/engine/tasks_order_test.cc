// Task queues: claim order (priority, then FIFO), idempotent submits, and
// bad input (priorities, delays, unknown ids, oversized batches).
#include <string>
#include <vector>

#include "tests/engine/tasks_fixture.h"

namespace shim::engine::taskstest {
namespace {

using TasksOrderTest = TasksTest;

TEST_F(TasksOrderTest, HigherPriorityFirstThenFifo) {
  const std::string p10a = Submit({{"priority", 10}});
  const std::string p5a = Submit({});  // default priority 5
  const std::string p1a = Submit({{"priority", 1}});
  const std::string p5b = Submit({{"priority", 5}});
  const std::string p10b = Submit({{"priority", 10}});
  const std::string p1b = Submit({{"priority", 1}});
  EXPECT_EQ(DrainIds("w"), (std::vector<std::string>{p1a, p1b, p5a, p5b, p10a, p10b}));
}

TEST_F(TasksOrderTest, FifoWithinOnePriorityAcrossABatch) {
  json tasks = json::array();
  for (int i = 0; i < 50; ++i) tasks.push_back({{"queue", "q"}, {"payload", i}, {"priority", 3}});
  const std::vector<std::string> ids = SubmitBatch(tasks);
  ASSERT_EQ(ids.size(), 50u);
  EXPECT_EQ(DrainIds("w"), ids);
}

TEST_F(TasksOrderTest, ClaimReturnsPayloadAttemptAndLease) {
  const std::string id = Submit({{"payload", {{"x", 1}}}, {"timeout_ms", 5000}, {"tags", {"a"}}});
  json t = ClaimOne("w");
  ASSERT_FALSE(t.is_null());
  EXPECT_EQ(t["task_id"], id);
  EXPECT_EQ(t["queue"], "q");
  EXPECT_EQ(t["payload"], json({{"x", 1}}));
  EXPECT_EQ(t["attempt"], 1);
  EXPECT_EQ(t["lease_expires_at_ms"], Now() + 5000);
  EXPECT_GT(t["lease_token"].get<uint64_t>(), 0u);
  EXPECT_EQ(StateOf(id), "running");
  EXPECT_TRUE(ClaimOne("w2").is_null());
}

TEST_F(TasksOrderTest, ClaimAcrossQueuesTakesTheBestOfAll) {
  const std::string a = Submit({{"queue", "a"}, {"priority", 5}});
  const std::string b = Submit({{"queue", "b"}, {"priority", 2}});
  const std::string c = Submit({{"queue", "c"}, {"priority", 1}});  // not asked for
  json r = Ok("task.claim", {{"queues", {"a", "b"}}, {"worker_id", "w"}, {"max", 3}});
  ASSERT_EQ(r["tasks"].size(), 2u);
  EXPECT_EQ(r["tasks"][0]["task_id"], b);
  EXPECT_EQ(r["tasks"][1]["task_id"], a);
  EXPECT_EQ(StateOf(c), "ready");
}

TEST_F(TasksOrderTest, IdempotencyKeyReturnsTheExistingTask) {
  json first = Ok("task.submit", {{"queue", "q"}, {"payload", 1}, {"idempotency_key", "k"}});
  json again = Ok("task.submit", {{"queue", "q"}, {"payload", 2}, {"idempotency_key", "k"}});
  EXPECT_EQ(again["task_id"], first["task_id"]);
  EXPECT_EQ(again["existing"], true);
  // Another queue has its own keys.
  json other = Ok("task.submit", {{"queue", "q2"}, {"payload", 3}, {"idempotency_key", "k"}});
  EXPECT_NE(other["task_id"], first["task_id"]);
  // In a batch, the existing task and an earlier duplicate of the batch.
  std::vector<std::string> ids = SubmitBatch({{{"queue", "q"}, {"idempotency_key", "k"}},
                                              {{"queue", "q"}, {"idempotency_key", "n"}},
                                              {{"queue", "q"}, {"idempotency_key", "n"}}});
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[0], first["task_id"]);
  EXPECT_EQ(ids[1], ids[2]);
  EXPECT_EQ(Stats()["counts"]["ready"], 2);
  EXPECT_EQ(Get(first["task_id"])["payload"], 1);
}

TEST_F(TasksOrderTest, UnknownQueuesAreCreatedOnUse) {
  EXPECT_TRUE(Claim("w", "never-seen").empty());
  json stats = Stats("also-new");
  EXPECT_EQ(stats["counts"]["ready"], 0);
  const std::string id = Submit({{"queue", "brand-new"}});
  EXPECT_EQ(StateOf(id), "ready");
  json list = Ok("task.list", {{"queue", "brand-new"}});
  ASSERT_EQ(list["tasks"].size(), 1u);
  EXPECT_TRUE(Ok("task.list", {{"queue", "nothing-here"}})["tasks"].empty());
}

TEST_F(TasksOrderTest, UnknownTaskIdsAreNotFound) {
  for (const char* m : {"task.get", "task.cancel", "task.retry"}) {
    EXPECT_TRUE(FailedWith(Call(m, {{"task_id", "t999999"}}), StatusCode::kNotFound)) << m;
    EXPECT_TRUE(FailedWith(Call(m, {{"task_id", "nonsense"}}), StatusCode::kNotFound)) << m;
  }
  EXPECT_TRUE(FailedWith(Call("task.complete", {{"task_id", "t999999"}, {"lease_token", 1}}),
                         StatusCode::kNotFound));
  EXPECT_TRUE(
      FailedWith(Call("task.fail", {{"task_id", "t999999"}, {"lease_token", 1}, {"error", "x"}}),
                 StatusCode::kNotFound));
  EXPECT_TRUE(FailedWith(
      Call("task.progress", {{"task_id", "t999999"}, {"lease_token", 1}, {"progress", 1}}),
      StatusCode::kNotFound));
  EXPECT_TRUE(FailedWith(
      Call("task.extend", {{"task_id", "t999999"}, {"lease_token", 1}, {"extend_ms", 1}}),
      StatusCode::kNotFound));
  EXPECT_TRUE(FailedWith(Call("task.submit", {{"queue", "q"}, {"depends_on", {"t999999"}}}),
                         StatusCode::kNotFound));
}

TEST_F(TasksOrderTest, BadPrioritiesAndDelaysAreInvalidParams) {
  const uint64_t before = Revision();
  for (int p : {0, 11, -1}) {
    Result<json> r = Call("task.submit", {{"queue", "q"}, {"priority", p}});
    ASSERT_TRUE(FailedWith(r, StatusCode::kInvalidParams)) << p;
    EXPECT_EQ(r.status().details()["field"], "priority");
  }
  Result<json> r = Call("task.submit", {{"queue", "q"}, {"delay_ms", -1}});
  ASSERT_TRUE(FailedWith(r, StatusCode::kInvalidParams));
  EXPECT_EQ(r.status().details()["field"], "delay_ms");
  EXPECT_TRUE(FailedWith(Call("task.submit", {{"queue", "q"}, {"priority", "high"}}),
                         StatusCode::kInvalidParams));
  EXPECT_TRUE(FailedWith(Call("task.submit", {{"payload", 1}}), StatusCode::kInvalidParams));
  EXPECT_TRUE(FailedWith(Call("task.submit", {{"queue", "q"}, {"backoff", {{"delay_ms", -5}}}}),
                         StatusCode::kInvalidParams));
  EXPECT_TRUE(FailedWith(Call("task.submit", {{"queue", "q"}, {"backoff", {{"type", "linear"}}}}),
                         StatusCode::kInvalidParams));
  // A bad task inside a batch names its index; nothing of the batch is stored.
  Result<json> b = Call("task.submit_batch",
                        {{"tasks", {{{"queue", "q"}}, {{"queue", "q"}, {"priority", 11}}}}});
  ASSERT_TRUE(FailedWith(b, StatusCode::kInvalidParams));
  EXPECT_EQ(b.status().details()["field"], "tasks[1].priority");
  EXPECT_EQ(Revision(), before);
  EXPECT_TRUE(Ok("task.list", {{"queue", "q"}})["tasks"].empty());
}

TEST_F(TasksOrderTest, HugeBatchIsTooLarge) {
  json tasks = json::array();
  for (int i = 0; i < 100'000; ++i) tasks.push_back({{"queue", "q"}});
  const uint64_t before = Revision();
  Result<json> r = Call("task.submit_batch", {{"tasks", std::move(tasks)}});
  ASSERT_TRUE(FailedWith(r, StatusCode::kTooLarge));
  EXPECT_EQ(r.status().details()["limit"], 10'000);
  EXPECT_EQ(Revision(), before);
  EXPECT_EQ(Stats()["counts"]["ready"], 0);
  // Exactly at the limit is fine.
  json at_limit = json::array();
  for (int i = 0; i < 10'000; ++i) at_limit.push_back({{"queue", "q"}});
  EXPECT_EQ(SubmitBatch(at_limit).size(), 10'000u);
  EXPECT_EQ(Stats()["counts"]["ready"], 10'000);
}

TEST_F(TasksOrderTest, DelayedTaskBecomesReadyAtItsRunTime) {
  const std::string id = Submit({{"delay_ms", 5000}});
  EXPECT_EQ(StateOf(id), "delayed");
  EXPECT_TRUE(ClaimOne("w").is_null());
  Advance(4999);
  EXPECT_EQ(StateOf(id), "delayed");
  Advance(1);
  EXPECT_EQ(StateOf(id), "ready");
  // run_at_ms in the past is ready at once.
  EXPECT_EQ(StateOf(Submit({{"run_at_ms", Now() - 10}})), "ready");
  EXPECT_TRUE(
      FailedWith(Call("task.submit", {{"queue", "q"}, {"delay_ms", 1}, {"run_at_ms", Now()}}),
                 StatusCode::kInvalidParams));
}

TEST_F(TasksOrderTest, LifecycleEventsOnTheQueueChannel) {
  const std::string id = Submit({{"queue", "jobs"}, {"priority", 4}});
  json t = ClaimOne("w", "jobs");
  Ok("task.progress", {{"task_id", id}, {"lease_token", t["lease_token"]}, {"progress", 0.5}});
  ASSERT_OK(Complete(t, {{"ok", true}}));
  std::vector<json> ev = Events("jobs");
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[0]["type"], "submitted");
  EXPECT_EQ(ev[0]["priority"], 4);
  EXPECT_EQ(ev[1]["type"], "claimed");
  EXPECT_EQ(ev[1]["worker_id"], "w");
  EXPECT_EQ(ev[2]["type"], "progress");
  EXPECT_EQ(ev[2]["progress"], 0.5);
  EXPECT_EQ(ev[3]["type"], "completed");
  EXPECT_EQ(ev[3]["result"], json({{"ok", true}}));
  for (const json& e : ev) {
    EXPECT_EQ(e["task_id"], id);
    EXPECT_EQ(e["queue"], "jobs");
  }
  EXPECT_TRUE(Events("q").empty()) << "events go to the task's own queue channel";
}

}  // namespace
}  // namespace shim::engine::taskstest
