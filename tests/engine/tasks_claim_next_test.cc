// task.complete / task.fail with claim_next: finishing a task and claiming
// the next one in one call, the way a busy worker loops.
#include <string>

#include "engine/tasks/tasks.h"
#include "tests/engine/tasks_fixture.h"

namespace shim::engine::taskstest {
namespace {

using TasksClaimNextTest = TasksTest;

json ClaimNextOf(const json& claimed, json claim_next, json result = nullptr) {
  return {{"task_id", claimed["task_id"]},
          {"lease_token", claimed["lease_token"]},
          {"result", std::move(result)},
          {"claim_next", std::move(claim_next)}};
}

TEST_F(TasksClaimNextTest, CompleteHandsOutTheNextTaskInTheSameAnswer) {
  const std::string first = Submit({{"priority", 1}});
  const std::string second = Submit({{"priority", 2}, {"payload", {{"n", 2}}}});
  json t = ClaimOne("w");
  ASSERT_EQ(t["task_id"], first);

  json r = Ok("task.complete", ClaimNextOf(t, {{"queues", {"q"}}}, "done"));
  EXPECT_EQ(r["ok"], true);
  ASSERT_EQ(r["tasks"].size(), 1u);
  EXPECT_EQ(r["tasks"][0]["task_id"], second);
  EXPECT_EQ(r["tasks"][0]["payload"], json({{"n", 2}}));
  EXPECT_GT(r["tasks"][0]["lease_token"].get<uint64_t>(), 0u);

  EXPECT_EQ(StateOf(first), "completed");
  EXPECT_EQ(Get(first)["result"], "done");
  EXPECT_EQ(StateOf(second), "running");
  // Without a worker_id the finishing worker claims it.
  EXPECT_EQ(Get(second)["attempts"][0]["worker_id"], "w");
  // The next task is a normal claim: it completes with its own token.
  EXPECT_TRUE(Complete(r["tasks"][0]).ok());
  EXPECT_EQ(StateOf(second), "completed");
}

TEST_F(TasksClaimNextTest, ClaimNextMayNameAnotherWorkerAndSeveralQueuesAndMax) {
  Submit({});
  const std::string a = Submit({{"queue", "a"}, {"priority", 3}});
  const std::string b = Submit({{"queue", "b"}, {"priority", 1}});
  json t = ClaimOne("w");
  json r = Ok("task.complete",
              ClaimNextOf(t, {{"queues", {"a", "b"}}, {"worker_id", "w2"}, {"max", 5}}));
  ASSERT_EQ(r["tasks"].size(), 2u);
  EXPECT_EQ(r["tasks"][0]["task_id"], b);
  EXPECT_EQ(r["tasks"][1]["task_id"], a);
  EXPECT_EQ(Get(a)["attempts"][0]["worker_id"], "w2");
}

TEST_F(TasksClaimNextTest, WithoutClaimNextTheAnswerIsUnchanged) {
  Submit({});
  Submit({});
  json r = Ok("task.complete", ClaimNextOf(ClaimOne("w"), nullptr));
  EXPECT_EQ(r, json({{"ok", true}}));
  EXPECT_EQ(Stats()["counts"]["ready"], 1);
}

TEST_F(TasksClaimNextTest, NothingReadyAnswersAnEmptyListAtOnce) {
  const std::string id = Submit({});
  json r = Ok("task.complete", ClaimNextOf(ClaimOne("w"), {{"queues", {"q"}}}));
  EXPECT_EQ(r["ok"], true);
  EXPECT_EQ(r["tasks"], json::array());
  EXPECT_EQ(StateOf(id), "completed");
}

TEST_F(TasksClaimNextTest, AWaitingClaimNextIsServedByTheNextSubmit) {
  const std::string first = Submit({});
  auto client = std::make_shared<FakeClient>(7);
  json t = ClaimOne("w", "q", client);
  auto slot =
      Start("task.complete", ClaimNextOf(t, {{"queues", {"q"}}, {"wait_ms", 5000}}), client);
  EXPECT_FALSE(slot->done()) << "the answer waits for a task";
  EXPECT_EQ(StateOf(first), "completed") << "the complete itself is done and committed";

  const std::string next = Submit({});
  ASSERT_TRUE(slot->done());
  ASSERT_TRUE(slot->ok());
  EXPECT_EQ(slot->value()["ok"], true);
  ASSERT_EQ(slot->value()["tasks"].size(), 1u);
  EXPECT_EQ(slot->value()["tasks"][0]["task_id"], next);
  EXPECT_EQ(StateOf(next), "running");
}

TEST_F(TasksClaimNextTest, AWaitThatRunsOutAnswersOkWithNoTasks) {
  Submit({});
  auto slot =
      Start("task.complete", ClaimNextOf(ClaimOne("w"), {{"queues", {"q"}}, {"wait_ms", 100}}));
  EXPECT_FALSE(slot->done());
  Advance(99);
  EXPECT_FALSE(slot->done());
  Advance(1);
  ASSERT_TRUE(slot->done());
  EXPECT_EQ(slot->calls, 1);
  EXPECT_EQ(slot->value(), json({{"ok", true}, {"tasks", json::array()}}));
}

TEST_F(TasksClaimNextTest, ABadClaimNextRefusesTheWholeCall) {
  const std::string id = Submit({});
  json t = ClaimOne("w");
  struct Case {
    json claim_next;
    std::string field;
  };
  for (const Case& c : {Case{"q", "claim_next"}, Case{json::object(), "claim_next.queues"},
                        Case{{{"queues", json::array()}}, "claim_next.queues"},
                        Case{{{"queues", {1}}}, "claim_next.queues"},
                        Case{{{"queues", {"q"}}, {"max", 0}}, "claim_next.max"},
                        Case{{{"queues", {"q"}}, {"wait_ms", -1}}, "claim_next.wait_ms"},
                        Case{{{"queues", {"q"}}, {"worker_id", ""}}, "claim_next.worker_id"}}) {
    Result<json> r = Call("task.complete", ClaimNextOf(t, c.claim_next));
    ASSERT_TRUE(FailedWith(r, StatusCode::kInvalidParams)) << c.claim_next;
    EXPECT_EQ(r.status().details()["field"], c.field) << c.claim_next;
    EXPECT_EQ(StateOf(id), "running") << "nothing was completed for " << c.claim_next;
  }
  Result<json> f = Call("task.fail", {{"task_id", t["task_id"]},
                                      {"lease_token", t["lease_token"]},
                                      {"error", "x"},
                                      {"claim_next", {{"queues", "q"}}}});
  ASSERT_TRUE(FailedWith(f, StatusCode::kInvalidParams));
  EXPECT_EQ(f.status().details()["field"], "claim_next.queues");
  EXPECT_EQ(StateOf(id), "running");
  EXPECT_EQ(Get(id)["attempt"], 1);
}

TEST_F(TasksClaimNextTest, FailWithClaimNextCanTakeTheRetryAtOnce) {
  const std::string id =
      Submit({{"max_attempts", 2}, {"backoff", {{"type", "fixed"}, {"delay_ms", 0}}}});
  json t = ClaimOne("w");
  Result<json> r = Call("task.fail", {{"task_id", t["task_id"]},
                                      {"lease_token", t["lease_token"]},
                                      {"error", "flaky"},
                                      {"claim_next", {{"queues", {"q"}}}}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r.value()["state"], "ready") << "the state right after the failure";
  ASSERT_EQ(r.value()["tasks"].size(), 1u);
  EXPECT_EQ(r.value()["tasks"][0]["task_id"], id);
  EXPECT_EQ(r.value()["tasks"][0]["attempt"], 2);
  EXPECT_EQ(StateOf(id), "running");
}

TEST_F(TasksClaimNextTest, AStaleTokenIsRefusedAndClaimsNothing) {
  Submit({});
  const std::string other = Submit({});
  json t = ClaimOne("w");
  json stale = t;
  stale["lease_token"] = t["lease_token"].get<uint64_t>() + 1;
  Result<json> r = Call("task.complete", ClaimNextOf(stale, {{"queues", {"q"}}}));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(StateOf(other), "ready");
}

TEST_F(TasksClaimNextTest, ClaimNextRespectsTheWorkersConcurrencyLimit) {
  Register("w", {{"max_concurrency", 2}});
  for (int i = 0; i < 4; ++i) Submit({});
  json held = Claim("w", "q", 2);
  ASSERT_EQ(held.size(), 2u);
  // Finishing one frees one slot; asking for three gets one.
  json r = Ok("task.complete", ClaimNextOf(held[0], {{"queues", {"q"}}, {"max", 3}}));
  EXPECT_EQ(r["tasks"].size(), 1u);
  EXPECT_EQ(Stats()["counts"]["running"], 2);
}

TEST_F(TasksClaimNextTest, ARefusedClaimStillReportsTheCompleteAsDone) {
  const std::string id = Submit({});
  json t = ClaimOne("w");
  // Fill the server's table of waiting claims (on a queue with no tasks).
  auto waiting = std::make_shared<FakeClient>(9);
  for (size_t i = 0; i < TaskLimits{}.max_claim_waiters; ++i) {
    ASSERT_FALSE(WaitClaim("idle" + std::to_string(i), waiting, "empty")->done());
  }
  json r = Ok("task.complete", ClaimNextOf(t, {{"queues", {"q"}}, {"wait_ms", 1000}}));
  EXPECT_EQ(r["ok"], true) << "the complete happened; only the claim was refused";
  EXPECT_EQ(r["tasks"], json::array());
  EXPECT_EQ(r["claim_error"]["reason"], "OVERLOADED");
  EXPECT_EQ(StateOf(id), "completed");
}

}  // namespace
}  // namespace shim::engine::taskstest
