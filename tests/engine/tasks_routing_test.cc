// Task queues: routing among waiting claims (least_loaded, round_robin,
// capability), `requires`, max_concurrency, queue.pause / queue.resume.
#include <map>
#include <string>
#include <vector>

#include "tests/engine/tasks_fixture.h"

namespace shim::engine::taskstest {
namespace {

class TasksRoutingTest : public TasksTest {
 protected:
  // One connection and one waiting claim per worker.
  void Wait(const std::string& worker) {
    if (!conns_.count(worker)) conns_[worker] = NewClient();
    waits_[worker] = WaitClaim(worker, conns_[worker]);
    ASSERT_FALSE(waits_[worker]->done()) << worker << " should be waiting";
  }
  // Submits a task and returns the worker whose waiting claim got it ("" if
  // none); that worker waits again.
  std::string SubmitAndSeeWho(json task = json::object()) {
    const std::string id = Submit(std::move(task));
    std::string who;
    for (auto& [worker, slot] : waits_) {
      if (!slot->done()) continue;
      EXPECT_TRUE(slot->ok());
      EXPECT_EQ(slot->value()["tasks"].size(), 1u);
      EXPECT_EQ(slot->value()["tasks"][0]["task_id"], id);
      EXPECT_TRUE(who.empty()) << "two waiters served for one task";
      who = worker;
    }
    if (!who.empty()) Wait(who);
    return who;
  }
  std::map<std::string, std::shared_ptr<FakeClient>> conns_;
  std::map<std::string, std::shared_ptr<ReplySlot>> waits_;
};

TEST_F(TasksRoutingTest, LeastLoadedIsTheDefault) {
  Register("wa", {{"max_concurrency", 5}});
  Register("wb", {{"max_concurrency", 5}});
  Submit({});
  Submit({});
  ASSERT_EQ(Claim("wa", "q", 2).size(), 2u);  // wa runs 2
  Wait("wa");
  Wait("wb");
  EXPECT_EQ(SubmitAndSeeWho(), "wb");  // 0 < 2
  EXPECT_EQ(SubmitAndSeeWho(), "wb");  // 1 < 2
  EXPECT_EQ(SubmitAndSeeWho(), "wa");  // 2 == 2: the longer waiter
  EXPECT_EQ(SubmitAndSeeWho(), "wb");  // 3 > 2
  EXPECT_EQ(Stats()["routing"], "least_loaded");
}

TEST_F(TasksRoutingTest, RoundRobinRotatesByWorkerId) {
  Ok("queue.configure", {{"queue", "q"}, {"routing", "round_robin"}});
  for (const char* w : {"w3", "w1", "w2"}) Register(w, {{"max_concurrency", 10}});
  // Waiting in a different order than their ids.
  Wait("w3");
  Wait("w1");
  Wait("w2");
  std::vector<std::string> served;
  for (int i = 0; i < 7; ++i) served.push_back(SubmitAndSeeWho());
  EXPECT_EQ(served, (std::vector<std::string>{"w1", "w2", "w3", "w1", "w2", "w3", "w1"}));
}

TEST_F(TasksRoutingTest, CapabilityPicksTheMostSpecialisedEligibleWorker) {
  Ok("queue.configure", {{"queue", "q"}, {"routing", "capability"}});
  Register("general", {{"capabilities", {"gpu", "cpu", "ssd"}}, {"max_concurrency", 10}});
  Register("gpu-only", {{"capabilities", {"gpu"}}, {"max_concurrency", 10}});
  Register("plain", {{"max_concurrency", 10}});
  Wait("general");
  Wait("gpu-only");
  Wait("plain");
  EXPECT_EQ(SubmitAndSeeWho({{"requires", {"gpu"}}}), "gpu-only");
  EXPECT_EQ(SubmitAndSeeWho(), "plain");
  EXPECT_EQ(SubmitAndSeeWho({{"requires", {"cpu"}}}), "general");
  EXPECT_EQ(SubmitAndSeeWho({{"requires", {"gpu", "ssd"}}}), "general");
  EXPECT_EQ(SubmitAndSeeWho({{"requires", {"gpu"}}}), "gpu-only");
  // Nobody has it: the task stays ready, nobody is woken.
  EXPECT_EQ(SubmitAndSeeWho({{"requires", {"tpu"}}}), "");
  EXPECT_EQ(Stats()["counts"]["ready"], 1);
}

TEST_F(TasksRoutingTest, RequiresLimitsWhoMayClaim) {
  Register("plain");
  Register("gpu", {{"capabilities", {"gpu"}}});
  Register("both", {{"capabilities", {"gpu", "ssd"}}});
  const std::string needs_gpu = Submit({{"requires", {"gpu"}}, {"priority", 1}});
  const std::string needs_two = Submit({{"requires", {"gpu", "ssd"}}, {"priority", 1}});
  const std::string anyone = Submit({{"priority", 9}});
  // plain skips the tasks it cannot do and gets the low-priority one.
  json t = ClaimOne("plain");
  ASSERT_FALSE(t.is_null());
  EXPECT_EQ(t["task_id"], anyone);
  EXPECT_TRUE(ClaimOne("plain").is_null());
  t = ClaimOne("gpu");
  ASSERT_FALSE(t.is_null());
  EXPECT_EQ(t["task_id"], needs_gpu);
  EXPECT_TRUE(ClaimOne("gpu").is_null());  // busy (max_concurrency 1)
  t = ClaimOne("both");
  ASSERT_FALSE(t.is_null());
  EXPECT_EQ(t["task_id"], needs_two);
  // A waiting claim is not served with a task it cannot do.
  Wait("plain-2");
  Submit({{"requires", {"gpu"}}});
  EXPECT_FALSE(waits_["plain-2"]->done());
}

TEST_F(TasksRoutingTest, MaxConcurrencyIsRespected) {
  Register("w", {{"max_concurrency", 2}});
  for (int i = 0; i < 3; ++i) Submit({});
  json got = Claim("w", "q", 5);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_TRUE(Claim("w", "q", 5).empty());
  ASSERT_OK(Complete(got[0]));
  EXPECT_EQ(Claim("w", "q", 5).size(), 1u);
  json list = Ok("worker.list", json::object());
  ASSERT_EQ(list["workers"].size(), 1u);
  EXPECT_EQ(list["workers"][0]["active_tasks"], 2);
  EXPECT_EQ(list["workers"][0]["status"], "busy");
  EXPECT_EQ(Stats()["counts"]["ready"], 0);
  // At capacity, a waiting claim is passed over; another worker gets the task.
  Wait("w");
  Wait("x");
  EXPECT_EQ(SubmitAndSeeWho(), "x");
}

TEST_F(TasksRoutingTest, ClaimMaxTakesSeveralInOrder) {
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(Submit({{"priority", 4 - i}}));
  json got = Claim("free", "q", 3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0]["task_id"], ids[3]);
  EXPECT_EQ(got[1]["task_id"], ids[2]);
  EXPECT_EQ(got[2]["task_id"], ids[1]);
}

TEST_F(TasksRoutingTest, PauseStopsClaimsAndResumeServesWaiters) {
  const std::string id = Submit({});
  EXPECT_EQ(Ok("queue.pause", {{"queue", "q"}})["paused"], true);
  EXPECT_TRUE(ClaimOne("w").is_null());
  Wait("w");
  Submit({});
  EXPECT_FALSE(waits_["w"]->done());
  json stats = Stats();
  EXPECT_EQ(stats["paused"], true);
  EXPECT_EQ(stats["counts"]["ready"], 2);
  Ok("queue.resume", {{"queue", "q"}});
  ASSERT_TRUE(waits_["w"]->done());
  ASSERT_EQ(waits_["w"]->value()["tasks"].size(), 1u);
  EXPECT_EQ(waits_["w"]->value()["tasks"][0]["task_id"], id);
  EXPECT_EQ(Stats()["paused"], false);
}

TEST_F(TasksRoutingTest, WaitingClaimTimesOutEmpty) {
  auto conn = NewClient();
  auto slot = WaitClaim("w", conn, "q", 2000);
  Advance(1999);
  EXPECT_FALSE(slot->done());
  Advance(1);
  ASSERT_TRUE(slot->done());
  ASSERT_TRUE(slot->ok());
  EXPECT_TRUE(slot->value()["tasks"].empty());
  // A closed connection's waiting claim ends at once, with no tasks, and is
  // not served.
  auto gone = NewClient();
  auto dropped = WaitClaim("v", gone);
  gone->set_closed();
  engine_->OnClientClosed(gone->id());
  ASSERT_TRUE(dropped->done());
  EXPECT_TRUE(dropped->value()["tasks"].empty());
  const std::string id = Submit({});
  EXPECT_EQ(dropped->calls, 1);
  EXPECT_EQ(StateOf(id), "ready");
}

TEST_F(TasksRoutingTest, EndWaitsEndsTheConnectionsClaimsAtOnceAndTheNextTaskGoesElsewhere) {
  // A half-closed connection (EndWaits without a close): its waiting claim
  // is answered now, with no tasks, and the task goes to a live claimer.
  auto quitting = NewClient();
  auto ended = WaitClaim("quitter", quitting, "q", 3'600'000);
  auto live = NewClient();
  auto served = WaitClaim("stayer", live, "q", 3'600'000);
  engine_->EndWaits(quitting->id());
  Pump();
  ASSERT_TRUE(ended->done()) << "answered at once, not when wait_ms runs out";
  ASSERT_TRUE(ended->ok());
  EXPECT_TRUE(ended->value()["tasks"].empty());
  EXPECT_FALSE(served->done());
  const std::string id = Submit({});
  ASSERT_TRUE(served->done());
  ASSERT_EQ(served->value()["tasks"].size(), 1u);
  EXPECT_EQ(served->value()["tasks"][0]["task_id"], id);
  EXPECT_EQ(ended->calls, 1);
}

TEST_F(TasksRoutingTest, DeadWorkersWaitingClaimIsNotHandedTasks) {
  Register("mortal", {{"heartbeat_ttl_ms", 1000}});
  Wait("mortal");
  Advance(1000);  // dies while its claim waits
  const std::string id = Submit({});
  EXPECT_EQ(StateOf(id), "ready") << "a dead worker's waiting claim must not take tasks";
  EXPECT_EQ(Stats()["health"]["saturated"], true) << "a dead worker cannot take the ready task";
  // Alive again (heartbeat): its still-waiting claim is served by the next task.
  Ok("worker.heartbeat", {{"worker_id", "mortal"}});
  const std::string next = Submit({});
  ASSERT_TRUE(waits_["mortal"]->done());
  EXPECT_EQ(waits_["mortal"]->value()["tasks"][0]["task_id"], id);
  EXPECT_EQ(StateOf(next), "ready");
}

}  // namespace
}  // namespace shim::engine::taskstest

namespace shim::engine::taskstest {
namespace {

TEST_F(TasksRoutingTest, InProcessWaitingClaimWithoutAClientIsAnswered) {
  // Engine::Execute allows a null client (in-process callers); the reply
  // must still come exactly once, with the task.
  auto slot = WaitClaim("local", nullptr);
  EXPECT_FALSE(slot->done());
  const std::string id = Submit({});
  ASSERT_TRUE(slot->done()) << "the waiting claim was dropped without a reply";
  ASSERT_TRUE(slot->ok());
  ASSERT_EQ(slot->value()["tasks"].size(), 1u);
  EXPECT_EQ(slot->value()["tasks"][0]["task_id"], id);
  Advance(60'000);
  EXPECT_EQ(slot->calls, 1);
}

}  // namespace
}  // namespace shim::engine::taskstest
