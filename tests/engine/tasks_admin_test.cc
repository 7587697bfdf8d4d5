// Task queues: queue.drain and queue.delete. Both touch every task of a
// queue and run in slices of TaskModule::kAdminSlice tasks per engine turn,
// answering once the last slice is durable; a crash between slices is
// finished by recovery from the job's stored record.
#include <string>
#include <vector>

#include "engine/tasks/tasks.h"
#include "tests/engine/tasks_fixture.h"

namespace shim::engine::taskstest {
namespace {

class TasksAdminTest : public TasksTest {
 protected:
  // `n` plain ready tasks in queue `queue`.
  std::vector<std::string> Fill(size_t n, const std::string& queue = "q") {
    std::vector<std::string> ids;
    while (ids.size() < n) {
      json batch = json::array();
      for (size_t i = ids.size(); i < n && batch.size() < 10'000; ++i)
        batch.push_back({{"queue", queue}, {"payload", i}});
      std::vector<std::string> got = SubmitBatch(std::move(batch));
      if (got.empty()) break;
      ids.insert(ids.end(), got.begin(), got.end());
    }
    return ids;
  }

  bool Listed(const std::string& queue) {
    // Held in a local: a range-for over a member of the temporary reply
    // would iterate freed memory (ASan caught it).
    const json listed = Ok("queue.list", json::object());
    for (const json& q : listed["queues"]) {
      if (q["queue"] == queue) return true;
    }
    return false;
  }
};

TEST_F(TasksAdminTest, DrainRemovesTasksNotStartedAndLeavesRunningOnes) {
  const std::string running = Submit({});
  json claimed = ClaimOne("w");
  ASSERT_EQ(claimed["task_id"], running);
  const std::string ready1 = Submit({}), ready2 = Submit({});
  const std::string delayed = Submit({{"delay_ms", 60'000}});
  const std::string waiting = Submit({{"depends_on", {running}}});
  ASSERT_EQ(StateOf(waiting), "waiting");
  ASSERT_EQ(StateOf(delayed), "delayed");

  json r = Ok("queue.drain", {{"queue", "q"}});
  EXPECT_EQ(r, json({{"queue", "q"}, {"removed", 4}}));
  for (const std::string& id : {ready1, ready2, delayed, waiting})
    EXPECT_EQ(StateOf(id), "absent") << id;
  EXPECT_EQ(StateOf(running), "running");
  json counts = Stats()["counts"];
  EXPECT_EQ(counts["ready"], 0);
  EXPECT_EQ(counts["delayed"], 0);
  EXPECT_EQ(counts["waiting"], 0);
  EXPECT_EQ(counts["running"], 1);
  // The running task finishes as usual; the drained dependent is not woken.
  ASSERT_OK(Complete(claimed));
  EXPECT_EQ(StateOf(running), "completed");
  // A drained delayed task's timer finds nothing to run.
  Advance(61'000);
  EXPECT_EQ(Stats()["counts"]["ready"], 0);
  std::vector<json> events = Events();
  ASSERT_FALSE(events.empty());
  bool drained = false;
  for (const json& e : events) drained |= e["type"] == "drained" && e["removed"] == 4;
  EXPECT_TRUE(drained);
}

TEST_F(TasksAdminTest, DrainOfAnUnknownQueueIsNotFound) {
  EXPECT_TRUE(FailedWith(Call("queue.drain", {{"queue", "nope"}}), StatusCode::kNotFound));
  EXPECT_TRUE(FailedWith(Call("queue.delete", {{"queue", "nope"}}), StatusCode::kNotFound));
  EXPECT_FALSE(Listed("nope")) << "a refused admin call creates no queue";
}

TEST_F(TasksAdminTest, ADrainedTaskOthersWaitOnIsCancelledAndTheyFail) {
  const std::string head = Submit({});
  const std::string other = Submit({{"queue", "o"}, {"depends_on", {head}}});
  json r = Ok("queue.drain", {{"queue", "q"}});
  EXPECT_EQ(r["removed"], 1);
  RunTurns();
  EXPECT_EQ(StateOf(head), "cancelled");
  EXPECT_EQ(Get(head)["error"], "queue 'q' drained");
  EXPECT_EQ(StateOf(other), "failed");
  EXPECT_EQ(Get(other)["error"], "dependency " + head + " was cancelled");
}

TEST_F(TasksAdminTest, ALargeDrainRunsInSlicesAndSparesLaterSubmits) {
  std::vector<std::string> ids = Fill(2 * TaskModule::kAdminSlice + 10);
  std::shared_ptr<ReplySlot> drain = Start("queue.drain", {{"queue", "q"}});
  EXPECT_FALSE(drain->done()) << "answered only once the last slice is durable";
  EXPECT_GT(CountState(ids, "ready"), 0u);
  // Other requests are served between slices, and a task submitted now is
  // not the drain's to remove.
  const std::string later = Submit({});
  EXPECT_GE(RunTurns(), 2);
  ASSERT_TRUE(drain->done());
  ASSERT_TRUE(drain->ok()) << drain->result->status().ToString();
  EXPECT_EQ(drain->value()["removed"], ids.size());
  EXPECT_EQ(CountState(ids, "absent"), ids.size());
  EXPECT_EQ(StateOf(later), "ready");
  EXPECT_EQ(Stats()["counts"]["ready"], 1);
}

TEST_F(TasksAdminTest, ACrashBetweenDrainSlicesIsFinishedByRecovery) {
  std::vector<std::string> ids = Fill(3 * TaskModule::kAdminSlice);
  std::shared_ptr<ReplySlot> drain = Start("queue.drain", {{"queue", "q"}});
  const std::string later = Submit({});
  ASSERT_NO_FATAL_FAILURE(Reopen());
  ASSERT_GT(CountState(ids, "ready"), 0u) << "the crash came before the last slice";
  EXPECT_EQ(engine_->NextTimerInMs(), std::optional<int64_t>(0)) << "recovery goes on with it";
  RunTurns();
  EXPECT_EQ(CountState(ids, "absent"), ids.size());
  EXPECT_EQ(StateOf(later), "ready");
  const std::vector<json> events = Events();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back()["type"], "drained");
  EXPECT_EQ(events.back()["removed"], ids.size()) << "the count survives the crash";
}

TEST_F(TasksAdminTest, DeleteIsRefusedWhileTasksRunUnlessForced) {
  auto worker_conn = NewClient();
  Submit({});
  json claimed = ClaimOne("w", "q", worker_conn);
  ASSERT_FALSE(claimed.is_null());
  Result<json> refused = Call("queue.delete", {{"queue", "q"}});
  ASSERT_TRUE(FailedWith(refused, StatusCode::kInvalidState));
  EXPECT_EQ(refused.status().details()["running"], 1);
  EXPECT_NE(refused.status().message().find("force"), std::string::npos);
  EXPECT_EQ(StateOf(claimed["task_id"]), "running") << "a refused delete changes nothing";

  json r = Ok("queue.delete", {{"queue", "q"}, {"force", true}});
  EXPECT_EQ(r, json({{"queue", "q"}, {"removed", 1}}));
  // The lease ended: the worker was told, and its complete is refused.
  ASSERT_EQ(worker_conn->Of("task.cancelled").size(), 1u);
  EXPECT_EQ(worker_conn->Of("task.cancelled")[0]["reason"], "queue 'q' deleted");
  EXPECT_TRUE(FailedWith(Complete(claimed), StatusCode::kNotFound));
}

TEST_F(TasksAdminTest, DeleteRemovesTasksOfEveryStateSettingsAndStats) {
  Ok("queue.configure", {{"queue", "q"}, {"keep_completed", 7}, {"routing", "round_robin"}});
  const std::string done = Submit({});
  ASSERT_OK(Complete(ClaimOne("w")));
  const std::string failed = Submit({{"max_attempts", 1}});
  ASSERT_OK(Fail(ClaimOne("w"), /*retry=*/false));
  const std::string cancelled = Submit({});
  Ok("task.cancel", {{"task_id", cancelled}});
  const std::string delayed = Submit({{"delay_ms", 60'000}});
  const std::string ready = Submit({});
  Ok("queue.pause", {{"queue", "q"}});

  json r = Ok("queue.delete", {{"queue", "q"}});
  EXPECT_EQ(r["removed"], 5);
  for (const std::string& id : {done, failed, cancelled, delayed, ready})
    EXPECT_EQ(StateOf(id), "absent") << id;
  EXPECT_FALSE(Listed("q"));
  json stats = Stats();
  EXPECT_EQ(stats["routing"], "least_loaded") << "the settings went with it";
  EXPECT_EQ(stats["paused"], false);
  EXPECT_EQ(stats["p50_run_ms"], 0) << "the stats went with it";
  EXPECT_EQ(Events().back(), json({{"type", "deleted"}, {"queue", "q"}, {"removed", 5}}));

  // Gone from the store too, and the name is free for a new queue.
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_FALSE(Listed("q"));
  EXPECT_EQ(StateOf(done), "absent");
  const std::string fresh = Submit({});
  EXPECT_EQ(StateOf(fresh), "ready");
  EXPECT_EQ(Ok("queue.configure", {{"queue", "q"}})["keep_completed"], 1000);
}

TEST_F(TasksAdminTest, ADeleteCancelsWhatOtherQueuesWaitOnBeforeErasingIt) {
  const std::string head = Submit({});
  const std::string parent = Submit({{"queue", "o"}});
  const std::string child = Submit({{"parent_id", parent}});
  const std::string dependent = Submit({{"queue", "o"}, {"depends_on", {head}}});
  // The cancels' cascades run first; the delete answers after erasing.
  std::shared_ptr<ReplySlot> del = Start("queue.delete", {{"queue", "q"}});
  RunTurns();
  ASSERT_TRUE(del->ok());
  EXPECT_EQ(del->value()["removed"], 2);
  EXPECT_EQ(StateOf(head), "absent");
  EXPECT_EQ(StateOf(child), "absent");
  EXPECT_EQ(StateOf(dependent), "failed");
  EXPECT_EQ(StateOf(parent), "failed");
  EXPECT_EQ(Get(parent)["error"], "child " + child + " was cancelled");
}

TEST_F(TasksAdminTest, ALargeDeleteHoldsClaimsRefusesSubmitsAndSurvivesACrash) {
  std::vector<std::string> ids = Fill(3 * TaskModule::kAdminSlice);
  Ok("queue.configure", {{"queue", "q"}, {"keep_completed", 5}});
  std::shared_ptr<ReplySlot> del = Start("queue.delete", {{"queue", "q"}});
  EXPECT_FALSE(del->done());
  // While it runs the queue hands nothing out and takes nothing in.
  EXPECT_TRUE(ClaimOne("w").is_null());
  EXPECT_TRUE(FailedWith(Call("task.submit", {{"queue", "q"}}), StatusCode::kInvalidState));
  EXPECT_TRUE(FailedWith(Call("queue.drain", {{"queue", "q"}}), StatusCode::kInvalidState));
  ASSERT_NO_FATAL_FAILURE(Reopen());
  ASSERT_GT(CountState(ids, "ready"), 0u) << "the crash came before the last slice";
  EXPECT_TRUE(ClaimOne("w").is_null()) << "still held after the restart";
  EXPECT_TRUE(FailedWith(Call("task.submit", {{"queue", "q"}}), StatusCode::kInvalidState));
  RunTurns();
  EXPECT_EQ(CountState(ids, "absent"), ids.size());
  EXPECT_FALSE(Listed("q"));
  EXPECT_EQ(Events().back()["removed"], ids.size());
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_FALSE(Listed("q"));
  EXPECT_EQ(Ok("queue.configure", {{"queue", "q"}})["keep_completed"], 1000);
}

}  // namespace
}  // namespace shim::engine::taskstest
