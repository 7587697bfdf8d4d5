// Task queues across a restart (the engine reopened on the same store):
// ready / delayed / running / waiting tasks come back in their state, a
// running task gets its full timeout again, dependencies and parents still
// count what is left, counts match, queue settings and keys persist.
#include <string>
#include <vector>

#include "tests/engine/tasks_fixture.h"

namespace shim::engine::taskstest {
namespace {

using TasksRestartTest = TasksTest;

TEST_F(TasksRestartTest, StatesCountsAndOrderSurvive) {
  const std::string b5 = Submit({{"priority", 5}});
  const std::string a3 = Submit({{"priority", 3}});
  const std::string b5b = Submit({{"priority", 5}});
  const std::string delayed = Submit({{"delay_ms", 10'000}, {"queue", "other"}});
  const std::string done = Submit({{"queue", "other"}});
  ASSERT_OK(Complete(ClaimOne("w", "other")));
  const std::string dead = Submit({{"queue", "other"}, {"max_attempts", 1}});
  ASSERT_OK(Fail(ClaimOne("w", "other")));
  const json before_q = Stats("q")["counts"];
  const json before_other = Stats("other")["counts"];
  const uint64_t rev = Revision();

  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(Revision(), rev);
  EXPECT_EQ(Stats("q")["counts"], before_q);
  EXPECT_EQ(Stats("other")["counts"], before_other);
  EXPECT_EQ(StateOf(delayed), "delayed");
  EXPECT_EQ(StateOf(done), "completed");
  EXPECT_EQ(StateOf(dead), "failed");
  EXPECT_EQ(Get(done)["result"], nullptr);
  // Priority, then FIFO, as before the restart.
  EXPECT_EQ(DrainIds("w", "q"), (std::vector<std::string>{a3, b5, b5b}));
  Advance(10'000);
  EXPECT_EQ(StateOf(delayed), "ready");
  // New tasks queue behind the recovered ones.
  const std::string fresh = Submit({{"queue", "other"}});
  EXPECT_EQ(DrainIds("w", "other"), (std::vector<std::string>{delayed, fresh}));
  EXPECT_GT(Revision(), rev);
}

TEST_F(TasksRestartTest, RunningTaskGetsItsFullTimeoutAgain) {
  const std::string id = Submit({{"timeout_ms", 5000}});
  json t = ClaimOne("w");
  ASSERT_FALSE(t.is_null());
  Advance(4000);
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(StateOf(id), "running");
  EXPECT_EQ(Stats()["counts"]["running"], 1);
  Advance(4999);  // past the original lease, within the renewed one
  EXPECT_EQ(StateOf(id), "running");
  // The token still works after the restart...
  Ok("task.progress", {{"task_id", id}, {"lease_token", t["lease_token"]}, {"progress", 1}});
  Advance(1);
  // ...until the lease lapses.
  EXPECT_EQ(StateOf(id), "ready");
  EXPECT_TRUE(FailedWith(Complete(t), StatusCode::kNotOwner));
}

TEST_F(TasksRestartTest, RunningTaskCanBeCompletedWithItsTokenAfterRestart) {
  const std::string id = Submit({});
  json t = ClaimOne("w");
  ASSERT_NO_FATAL_FAILURE(Reopen());
  ASSERT_OK(Complete(t, 42));
  EXPECT_EQ(Get(id)["result"], 42);
  EXPECT_EQ(Stats()["counts"]["running"], 0);
  EXPECT_EQ(Stats()["counts"]["completed"], 1);
}

TEST_F(TasksRestartTest, WorkerActiveTasksAreRecountedAndDeathStillReturnsTasks) {
  Register("w", {{"heartbeat_ttl_ms", 3000}, {"max_concurrency", 1}});
  const std::string id = Submit({{"backoff", {{"delay_ms", 0}}}});
  ASSERT_FALSE(ClaimOne("w").is_null());
  Submit({});
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_TRUE(ClaimOne("w").is_null()) << "max_concurrency 1 and one task running";
  Advance(3000);  // the worker's full TTL after restart, without a heartbeat
  EXPECT_EQ(StateOf(id), "ready");
}

TEST_F(TasksRestartTest, WaitingDependentsStillWaitForWhatIsLeft) {
  const std::string a = Submit({});
  const std::string b = Submit({});
  const std::string c = Submit({});
  const std::string w = Submit({{"depends_on", {a, b, c}}});
  json ta = ClaimOne("w");
  ASSERT_EQ(ta["task_id"], a);
  ASSERT_OK(Complete(ta));
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(StateOf(w), "waiting");
  json tb = ClaimOne("w");
  ASSERT_EQ(tb["task_id"], b);
  ASSERT_OK(Complete(tb));
  EXPECT_EQ(StateOf(w), "waiting") << "c has not completed yet";
  json tc = ClaimOne("w");
  ASSERT_EQ(tc["task_id"], c);
  ASSERT_OK(Complete(tc));
  EXPECT_EQ(StateOf(w), "ready") << "all dependencies completed";
}

TEST_F(TasksRestartTest, ParentsStillWaitForTheRemainingChildren) {
  std::vector<std::string> ids =
      SubmitBatch({{{"queue", "q"}, {"ref", "p"}, {"aggregate", "concatenate"}},
                   {{"queue", "q"}, {"parent_id", "p"}},
                   {{"queue", "q"}, {"parent_id", "p"}},
                   {{"queue", "q"}, {"parent_id", "p"}}});
  ASSERT_EQ(ids.size(), 4u);
  json c1 = ClaimOne("w");
  ASSERT_EQ(c1["task_id"], ids[1]);
  ASSERT_OK(Complete(c1, 1));
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(StateOf(ids[0]), "waiting");
  json c2 = ClaimOne("w");
  ASSERT_EQ(c2["task_id"], ids[2]);
  ASSERT_OK(Complete(c2, 2));
  EXPECT_EQ(StateOf(ids[0]), "waiting") << "one child is still pending";
  json c3 = ClaimOne("w");
  ASSERT_EQ(c3["task_id"], ids[3]);
  ASSERT_OK(Complete(c3, 3));
  json parent = Get(ids[0]);
  EXPECT_EQ(parent["state"], "completed");
  EXPECT_EQ(parent["result"], json({1, 2, 3}));
}

TEST_F(TasksRestartTest, DeadlinesQueueSettingsAndKeysPersist) {
  Ok("queue.configure", {{"queue", "q"}, {"routing", "round_robin"}, {"keep_completed", 1}});
  Ok("queue.pause", {{"queue", "q"}});
  const std::string keyed = Submit({{"idempotency_key", "once"}});
  const std::string urgent =
      Submit({{"priority", 9}, {"deadline_at_ms", Now() + 5000}, {"escalate_before_ms", 1000}});
  ASSERT_NO_FATAL_FAILURE(Reopen());
  json stats = Stats();
  EXPECT_EQ(stats["paused"], true);
  EXPECT_EQ(stats["routing"], "round_robin");
  EXPECT_EQ(Ok("task.submit", {{"queue", "q"}, {"idempotency_key", "once"}})["task_id"], keyed);
  EXPECT_TRUE(ClaimOne("w").is_null()) << "still paused";
  Advance(4000);
  EXPECT_EQ(Get(urgent)["priority"], 1);
  Advance(1000);
  std::vector<std::string> types = EventTypes("q", urgent);
  EXPECT_EQ(types, (std::vector<std::string>{"submitted", "escalated", "deadline_missed"}));
  Ok("queue.resume", {{"queue", "q"}});
  EXPECT_EQ(DrainIds("w"), (std::vector<std::string>{urgent, keyed}));
  EXPECT_EQ(StateOf(urgent), "absent") << "keep_completed 1 survived the restart";
}

}  // namespace
}  // namespace shim::engine::taskstest
