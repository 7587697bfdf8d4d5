// Task queues: retention (keep_completed / keep_failed drop the oldest
// finished tasks), queue.stats counts and health (saturated, starving),
// queue.list, task.list paging.
#include <string>
#include <vector>

#include "tests/engine/tasks_fixture.h"

namespace shim::engine::taskstest {
namespace {

using TasksQueueTest = TasksTest;

TEST_F(TasksQueueTest, RetentionDropsTheOldestCompleted) {
  Ok("queue.configure", {{"queue", "q"}, {"keep_completed", 2}});
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(Submit({{"payload", i}}));
  ASSERT_EQ(DrainIds("w"), ids);
  EXPECT_TRUE(FailedWith(Call("task.get", {{"task_id", ids[0]}}), StatusCode::kNotFound));
  EXPECT_TRUE(FailedWith(Call("task.get", {{"task_id", ids[1]}}), StatusCode::kNotFound));
  EXPECT_EQ(StateOf(ids[2]), "completed");
  EXPECT_EQ(StateOf(ids[3]), "completed");
  json list = Ok("task.list", {{"queue", "q"}});
  ASSERT_EQ(list["tasks"].size(), 2u);
  EXPECT_EQ(list["tasks"][0]["task_id"], ids[2]);
  EXPECT_EQ(Stats()["counts"]["completed"], 2);
  // Lowering the limit applies at once.
  Ok("queue.configure", {{"queue", "q"}, {"keep_completed", 1}});
  EXPECT_EQ(StateOf(ids[2]), "absent");
  EXPECT_EQ(StateOf(ids[3]), "completed");
  // Unfinished tasks are never dropped.
  const std::string pending = Submit({});
  Ok("queue.configure", {{"queue", "q"}, {"keep_completed", 0}});
  EXPECT_EQ(StateOf(ids[3]), "absent");
  EXPECT_EQ(StateOf(pending), "ready");
  // Completing with keep_completed 0 still answers ok.
  json t = ClaimOne("w");
  EXPECT_OK(Complete(t));
  EXPECT_EQ(StateOf(pending), "absent");
}

TEST_F(TasksQueueTest, RetentionOfTheDeadLetterList) {
  Ok("queue.configure", {{"queue", "q"}, {"keep_failed", 1}, {"keep_completed", 10}});
  std::vector<std::string> failed;
  for (int i = 0; i < 3; ++i) {
    failed.push_back(Submit({{"max_attempts", 1}}));
    json t = ClaimOne("w");
    ASSERT_EQ(Fail(t)->at("state"), "failed");
  }
  const std::string done = Submit({});
  DrainIds("w");
  EXPECT_EQ(StateOf(failed[0]), "absent");
  EXPECT_EQ(StateOf(failed[1]), "absent");
  EXPECT_EQ(StateOf(failed[2]), "failed");
  EXPECT_EQ(StateOf(done), "completed");
  json stats = Stats();
  EXPECT_EQ(stats["counts"]["failed"], 1);
  EXPECT_EQ(stats["dead_letter"], 1);
}

TEST_F(TasksQueueTest, StatsCountEveryState) {
  const std::string dep = Submit({});                        // will run
  Submit({{"depends_on", {dep}}});                           // waiting
  Submit({{"delay_ms", 60'000}});                            // delayed
  const std::string to_cancel = Submit({{"priority", 10}});  // cancelled
  const std::string to_fail = Submit({{"max_attempts", 1}, {"priority", 1}});
  const std::string to_complete = Submit({{"priority", 2}});
  Submit({{"priority", 9}});  // stays ready
  Ok("task.cancel", {{"task_id", to_cancel}});
  json f = ClaimOne("w");
  ASSERT_EQ(f["task_id"], to_fail);
  ASSERT_OK(Fail(f));
  Advance(250);
  json c = ClaimOne("w");
  ASSERT_EQ(c["task_id"], to_complete);
  Advance(100);
  ASSERT_OK(Complete(c));
  json r = ClaimOne("w");
  ASSERT_EQ(r["task_id"], dep);  // running
  json stats = Stats();
  EXPECT_EQ(stats["counts"], json({{"waiting", 1},
                                   {"delayed", 1},
                                   {"ready", 1},
                                   {"running", 1},
                                   {"completed", 1},
                                   {"failed", 1},
                                   {"cancelled", 1}}));
  EXPECT_EQ(stats["completed_per_min"], 1);
  EXPECT_EQ(stats["workers"], 1);
  EXPECT_EQ(stats["p50_run_ms"], 100);
  EXPECT_GE(stats["p50_wait_ms"].get<int64_t>(), 250);
  EXPECT_EQ(stats["oldest_ready_age_ms"], 350);
  json ql = Ok("queue.list", json::object());
  ASSERT_EQ(ql["queues"].size(), 1u);
  EXPECT_EQ(ql["queues"][0]["queue"], "q");
  EXPECT_EQ(ql["queues"][0]["counts"], stats["counts"]);
  Advance(60'001);
  EXPECT_EQ(Stats()["completed_per_min"], 0);
}

TEST_F(TasksQueueTest, HealthSaturatedWithoutAnyLiveWorker) {
  json h = Stats()["health"];
  EXPECT_EQ(h["saturated"], false);
  EXPECT_EQ(h["starving"], false);
  Submit({});
  h = Stats()["health"];
  EXPECT_EQ(h["saturated"], true) << h.dump();
  ASSERT_FALSE(h["reasons"].empty());
  Register("w", {{"heartbeat_ttl_ms", 10'000}});
  EXPECT_EQ(Stats()["health"]["saturated"], false);
  Advance(10'000);  // the worker dies
  EXPECT_EQ(Stats()["health"]["saturated"], true);
}

TEST_F(TasksQueueTest, HealthSaturatedWhenNoWorkerHasTheCapabilities) {
  Register("plain", {{"heartbeat_ttl_ms", 60'000}});
  Submit({{"requires", {"gpu"}}});
  EXPECT_EQ(Stats()["health"]["saturated"], true);
  Register("gpu", {{"capabilities", {"gpu"}}, {"heartbeat_ttl_ms", 60'000}});
  EXPECT_EQ(Stats()["health"]["saturated"], false);
}

TEST_F(TasksQueueTest, HealthSaturatedOverSaturationReady) {
  Register("w", {{"heartbeat_ttl_ms", 600'000}});
  Ok("queue.configure", {{"queue", "q"}, {"saturation_ready", 2}});
  Submit({});
  Submit({});
  EXPECT_EQ(Stats()["health"]["saturated"], false);  // 2 is not over 2
  Submit({});
  json h = Stats()["health"];
  EXPECT_EQ(h["saturated"], true);
  EXPECT_EQ(h["starving"], false);
}

TEST_F(TasksQueueTest, HealthStarving) {
  Register("w", {{"heartbeat_ttl_ms", 600'000}});
  Ok("queue.configure", {{"queue", "q"}, {"starvation_ms", 5000}});
  Submit({});
  Advance(5000);
  EXPECT_EQ(Stats()["health"]["starving"], false);
  Advance(1);
  json s = Stats();
  EXPECT_EQ(s["health"]["starving"], true);
  EXPECT_EQ(s["oldest_ready_age_ms"], 5001);
  EXPECT_EQ(s["health"]["saturated"], false);
  DrainIds("w");
  EXPECT_EQ(Stats()["health"]["starving"], false);
}

TEST_F(TasksQueueTest, ListFiltersAndPages) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(Submit({}));
  json t = ClaimOne("w");
  json page = Ok("task.list", {{"queue", "q"}, {"limit", 2}});
  ASSERT_EQ(page["tasks"].size(), 2u);
  EXPECT_EQ(page["tasks"][0]["task_id"], ids[0]);
  EXPECT_EQ(page["next"], ids[1]);
  page = Ok("task.list", {{"queue", "q"}, {"limit", 10}, {"after", page["next"]}});
  ASSERT_EQ(page["tasks"].size(), 3u);
  EXPECT_EQ(page["tasks"][0]["task_id"], ids[2]);
  EXPECT_TRUE(page["next"].is_null());
  json running = Ok("task.list", {{"queue", "q"}, {"state", "running"}});
  ASSERT_EQ(running["tasks"].size(), 1u);
  EXPECT_EQ(running["tasks"][0]["task_id"], t["task_id"]);
  EXPECT_TRUE(FailedWith(Call("task.list", {{"queue", "q"}, {"state", "sleeping"}}),
                         StatusCode::kInvalidParams));
  EXPECT_TRUE(FailedWith(Call("queue.configure", {{"queue", "q"}, {"routing", "random"}}),
                         StatusCode::kInvalidParams));
}

TEST_F(TasksQueueTest, RetriedTaskThatFailsAgainCountsOnceForRetention) {
  Ok("queue.configure", {{"queue", "q"}, {"keep_failed", 2}});
  const std::string a = Submit({{"max_attempts", 1}});
  ASSERT_OK(Fail(ClaimOne("w")));
  Ok("task.retry", {{"task_id", a}});
  ASSERT_OK(Fail(ClaimOne("w")));  // a fails again: the newest failure
  const std::string b = Submit({{"max_attempts", 1}});
  ASSERT_OK(Fail(ClaimOne("w")));
  // The last two failures are a and b: both kept.
  EXPECT_EQ(StateOf(a), "failed");
  EXPECT_EQ(StateOf(b), "failed");
  EXPECT_EQ(Stats()["counts"]["failed"], 2);
  const std::string c = Submit({{"max_attempts", 1}});
  ASSERT_OK(Fail(ClaimOne("w")));
  EXPECT_EQ(StateOf(a), "absent");
  EXPECT_EQ(StateOf(b), "failed");
  EXPECT_EQ(StateOf(c), "failed");
}

// Every queue has its events channel, events.<queue>: the longest queue name
// accepted must still give a valid channel, so its events are recorded.
TEST_F(TasksQueueTest, LongestQueueNameStillHasItsEventsChannel) {
  const std::string longest(249, 'q');
  json r = Ok("task.submit", {{"queue", longest}, {"payload", 1}});
  ASSERT_TRUE(r.contains("task_id"));
  json events = Ok("pubsub.history", {{"channel", "events." + longest}, {"from_seq", 1}});
  ASSERT_EQ(events["messages"].size(), 1u);
  EXPECT_EQ(events["messages"][0]["data"]["type"], "submitted");
  EXPECT_TRUE(FailedWith(Call("task.submit", {{"queue", longest + "q"}, {"payload", 1}}),
                         StatusCode::kTooLarge));
}

}  // namespace
}  // namespace shim::engine::taskstest
