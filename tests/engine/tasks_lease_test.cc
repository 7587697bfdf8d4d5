// Task queues: execution leases. A lapsed lease returns the task as a
// stalled attempt and its old lease_token stops working; a dead worker's
// tasks come back at once; progress/extend; cancelling a running task
// notifies its worker's connection.
#include <string>
#include <vector>

#include "tests/engine/tasks_fixture.h"

namespace shim::engine::taskstest {
namespace {

using TasksLeaseTest = TasksTest;

TEST_F(TasksLeaseTest, StalledLeaseReturnsTheTaskAndFencesTheOldToken) {
  const std::string id = Submit({{"timeout_ms", 1000}, {"max_attempts", 3}});
  json first = ClaimOne("w1");
  ASSERT_FALSE(first.is_null());
  Advance(999);
  EXPECT_EQ(StateOf(id), "running");
  Advance(1);
  // Back to ready at once, as a failed attempt.
  json got = Get(id);
  EXPECT_EQ(got["state"], "ready");
  EXPECT_EQ(got["attempt"], 1);
  ASSERT_EQ(got["attempts"].size(), 1u);
  EXPECT_NE(got["attempts"][0]["error"].get<std::string>().find("stalled"), std::string::npos);
  EXPECT_EQ(got["attempts"][0]["ended_at_ms"], Now());
  std::vector<std::string> types = EventTypes("q", id);
  EXPECT_EQ(types, (std::vector<std::string>{"submitted", "claimed", "stalled", "retrying"}));

  // The stale token is refused while the task is ready...
  const json stale = {{"task_id", id}, {"lease_token", first["lease_token"]}};
  auto with = [&](json extra) {
    json p = stale;
    p.update(extra);
    return p;
  };
  EXPECT_TRUE(FailedWith(Call("task.complete", stale), StatusCode::kNotOwner));
  // ...and after another worker got it.
  json second = ClaimOne("w2");
  ASSERT_FALSE(second.is_null());
  EXPECT_EQ(second["attempt"], 2);
  EXPECT_NE(second["lease_token"], first["lease_token"]);
  EXPECT_TRUE(FailedWith(Call("task.complete", stale), StatusCode::kNotOwner));
  EXPECT_TRUE(FailedWith(Call("task.progress", with({{"progress", 50}})), StatusCode::kNotOwner));
  EXPECT_TRUE(FailedWith(Call("task.extend", with({{"extend_ms", 5000}})), StatusCode::kNotOwner));
  EXPECT_TRUE(FailedWith(Call("task.fail", with({{"error", "late"}})), StatusCode::kNotOwner));
  EXPECT_EQ(StateOf(id), "running");
  EXPECT_EQ(Get(id)["worker_id"], "w2");
  // The current holder is unaffected.
  EXPECT_OK(Complete(second, "done"));
  EXPECT_EQ(Get(id)["result"], "done");
  EXPECT_TRUE(FailedWith(Complete(second), StatusCode::kInvalidState));
}

// Between the lease's end and its timer (requests are served in between)
// the task has stalled already: a late complete is refused, and the stall is
// recorded exactly as the timer would have done it.
TEST_F(TasksLeaseTest, CompleteAfterTheLeaseButBeforeItsTimerIsRefused) {
  const std::string id = Submit({{"timeout_ms", 1000}, {"max_attempts", 3}});
  json first = ClaimOne("w1");
  ASSERT_FALSE(first.is_null());
  clock_.Advance(1000);  // no RunTimers
  EXPECT_TRUE(FailedWith(Complete(first, "late"), StatusCode::kNotOwner));
  json got = Get(id);
  EXPECT_EQ(got["state"], "ready");
  EXPECT_TRUE(got["result"].is_null());
  Advance(0);  // the old timer is a no-op now
  EXPECT_EQ(EventTypes("q", id),
            (std::vector<std::string>{"submitted", "claimed", "stalled", "retrying"}));
}

TEST_F(TasksLeaseTest, StallOnTheLastAttemptFailsTheTask) {
  const std::string id = Submit({{"timeout_ms", 500}, {"max_attempts", 1}});
  ASSERT_FALSE(ClaimOne("w").is_null());
  Advance(500);
  EXPECT_EQ(StateOf(id), "failed");
  EXPECT_EQ(EventTypes("q", id),
            (std::vector<std::string>{"submitted", "claimed", "stalled", "failed"}));
}

TEST_F(TasksLeaseTest, ExtendAndProgressKeepTheLease) {
  const std::string id = Submit({{"timeout_ms", 1000}});
  json t = ClaimOne("w");
  Advance(800);
  json r =
      Ok("task.extend", {{"task_id", id}, {"lease_token", t["lease_token"]}, {"extend_ms", 1000}});
  EXPECT_EQ(r["lease_expires_at_ms"], Now() + 1000);
  Advance(900);  // past the original lease, within the extension
  EXPECT_EQ(StateOf(id), "running");
  Ok("task.progress",
     {{"task_id", id}, {"lease_token", t["lease_token"]}, {"progress", 0.5}, {"message", "half"}});
  json got = Get(id);
  EXPECT_EQ(got["progress"], 0.5);
  EXPECT_EQ(got["progress_message"], "half");
  Advance(100);
  EXPECT_EQ(StateOf(id), "ready");
  EXPECT_EQ(EventTypes("q", id),
            (std::vector<std::string>{"submitted", "claimed", "progress", "stalled", "retrying"}));
}

TEST_F(TasksLeaseTest, DeadWorkerReturnsItsTasksAtOnce) {
  Register("mortal", {{"heartbeat_ttl_ms", 500}, {"max_concurrency", 2}});
  Register("steady", {{"heartbeat_ttl_ms", 60'000}});
  const std::string a = Submit({{"timeout_ms", 60'000}, {"backoff", {{"delay_ms", 0}}}});
  const std::string b = Submit({{"timeout_ms", 60'000}, {"backoff", {{"delay_ms", 200}}}});
  json claimed = Claim("mortal", "q", 2);
  ASSERT_EQ(claimed.size(), 2u);
  // The steady worker waits for work.
  auto client = NewClient();
  auto waiting = WaitClaim("steady", client);
  EXPECT_FALSE(waiting->done());
  Advance(499);
  EXPECT_EQ(StateOf(a), "running");
  Advance(1);  // the heartbeat TTL lapses, long before the 60 s lease
  // `a` (no backoff) went back and was handed to the waiting worker at once.
  ASSERT_TRUE(waiting->done());
  ASSERT_TRUE(waiting->ok());
  ASSERT_EQ(waiting->value()["tasks"].size(), 1u);
  EXPECT_EQ(waiting->value()["tasks"][0]["task_id"], a);
  EXPECT_EQ(waiting->value()["tasks"][0]["attempt"], 2);
  // `b` waits for its backoff.
  EXPECT_EQ(StateOf(b), "delayed");
  EXPECT_EQ(Get(b)["run_at_ms"], Now() + 200);
  Advance(200);
  EXPECT_EQ(StateOf(b), "ready");
  // The dead worker's tokens no longer work, and it may not claim.
  for (const json& t : claimed) EXPECT_TRUE(FailedWith(Complete(t), StatusCode::kNotOwner));
  EXPECT_TRUE(FailedWith(Call("task.claim", {{"queues", {"q"}}, {"worker_id", "mortal"}}),
                         StatusCode::kInvalidState));
  // worker.failed on events.workers; the attempts say why.
  json hist =
      Ok("pubsub.history", {{"channel", "events.workers"}, {"from_seq", 1}, {"limit", 100}});
  bool failed_event = false;
  for (const json& m : hist["messages"]) failed_event |= m["data"]["type"] == "worker.failed";
  EXPECT_TRUE(failed_event);
  EXPECT_NE(Get(b)["attempts"][0]["error"].get<std::string>().find("mortal"), std::string::npos);
}

TEST_F(TasksLeaseTest, DeregisterReturnsRunningTasks) {
  Register("leaver");
  const std::string id = Submit({{"backoff", {{"delay_ms", 0}}}});
  json t = ClaimOne("leaver");
  ASSERT_FALSE(t.is_null());
  Ok("worker.deregister", {{"worker_id", "leaver"}});
  EXPECT_EQ(StateOf(id), "ready");
  EXPECT_TRUE(FailedWith(Complete(t), StatusCode::kNotOwner));
}

TEST_F(TasksLeaseTest, CancelNotifiesTheWorkerOnlyAfterTheCancelIsDurable) {
  auto worker_conn = NewClient();
  const std::string id = Submit({});
  ASSERT_FALSE(ClaimOne("w", "q", worker_conn).is_null());
  int answered = 0;
  engine_->Execute("task.cancel", json{{"task_id", id}}, NewClient(),
                   [&](Result<json>) { ++answered; });
  // Applied but not committed: neither the caller nor the worker hears of it.
  EXPECT_EQ(answered, 0);
  EXPECT_TRUE(worker_conn->Of("task.cancelled").empty());
  Pump();
  EXPECT_EQ(answered, 1);
  EXPECT_EQ(worker_conn->Of("task.cancelled").size(), 1u);
}

TEST_F(TasksLeaseTest, CancelRunningTaskNotifiesTheWorkerAndRevokesTheToken) {
  auto worker_conn = NewClient();
  auto other_conn = NewClient();
  const std::string id = Submit({});
  json t = ClaimOne("w", "q", worker_conn);
  ASSERT_FALSE(t.is_null());
  json r = Ok("task.cancel", {{"task_id", id}, {"reason", "not needed"}}, other_conn);
  EXPECT_EQ(r["state"], "cancelled");
  std::vector<json> notes = worker_conn->Of("task.cancelled");
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0]["task_id"], id);
  EXPECT_TRUE(other_conn->Of("task.cancelled").empty());
  EXPECT_TRUE(FailedWith(Complete(t), StatusCode::kNotOwner));
  EXPECT_TRUE(FailedWith(
      Call("task.progress", {{"task_id", id}, {"lease_token", t["lease_token"]}, {"progress", 1}}),
      StatusCode::kNotOwner));
  EXPECT_TRUE(FailedWith(Fail(t), StatusCode::kNotOwner));
  json got = Get(id);
  EXPECT_EQ(got["state"], "cancelled");
  EXPECT_EQ(got["error"], "not needed");
  EXPECT_EQ(Stats()["counts"]["cancelled"], 1);
  EXPECT_EQ(Stats()["counts"]["running"], 0);
  EXPECT_EQ(EventTypes("q", id).back(), "cancelled");
  // Cancelling again is a no-op; a completed task cannot be cancelled.
  EXPECT_EQ(Ok("task.cancel", {{"task_id", id}})["state"], "cancelled");
  const std::string done = Submit({});
  ASSERT_OK(Complete(ClaimOne("w")));
  EXPECT_TRUE(FailedWith(Call("task.cancel", {{"task_id", done}}), StatusCode::kInvalidState));
}

TEST_F(TasksLeaseTest, CancelledReadyTaskIsNeverHandedOut) {
  const std::string a = Submit({});
  const std::string b = Submit({});
  Ok("task.cancel", {{"task_id", a}});
  EXPECT_EQ(DrainIds("w"), std::vector<std::string>{b});
  // Cancelled tasks can be retried.
  EXPECT_EQ(Ok("task.retry", {{"task_id", a}})["state"], "ready");
  EXPECT_EQ(DrainIds("w"), std::vector<std::string>{a});
}

}  // namespace
}  // namespace shim::engine::taskstest
