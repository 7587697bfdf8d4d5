// Task queues: dependencies. Ready only when every dependency completed;
// on_dependency_failure fail vs ignore; failure and cancellation through a
// chain; cycles (2-, 3-, self-, via a parent) rejected with nothing stored.
#include <algorithm>
#include <string>
#include <vector>

#include "tests/engine/tasks_fixture.h"

namespace shim::engine::taskstest {
namespace {

class TasksDepsTest : public TasksTest {
 protected:
  // Claims `id` (the only ready task) and completes or fails it.
  void Finish(const std::string& id, bool ok) {
    json t = ClaimOne("w");
    ASSERT_FALSE(t.is_null()) << "expected " << id << " to be ready";
    ASSERT_EQ(t["task_id"], id);
    if (ok) {
      ASSERT_OK(Complete(t, id + "-result"));
    } else {
      ASSERT_EQ(Fail(t, false)->at("state"), "failed");
    }
  }
  // Submits the chain A <- B <- C (each depends on the one before); their ids.
  void SubmitChainOfThree(std::vector<std::string>* ids) {
    *ids = SubmitBatch({{{"queue", "q"}, {"ref", "A"}},
                        {{"queue", "q"}, {"ref", "B"}, {"depends_on", {"A"}}},
                        {{"queue", "q"}, {"ref", "C"}, {"depends_on", {"B"}}}});
    ASSERT_EQ(ids->size(), 3u);
  }
};

TEST_F(TasksDepsTest, ReadyOnlyWhenAllDependenciesCompleted) {
  const std::string a = Submit({});
  const std::string b = Submit({});
  const std::string c = Submit({{"depends_on", {a, b}}});
  EXPECT_EQ(StateOf(c), "waiting");
  EXPECT_EQ(Stats()["counts"]["waiting"], 1);
  ASSERT_NO_FATAL_FAILURE(Finish(a, true));
  EXPECT_EQ(StateOf(c), "waiting");
  ASSERT_NO_FATAL_FAILURE(Finish(b, true));
  EXPECT_EQ(StateOf(c), "ready");
  EXPECT_EQ(Get(c)["depends_on"], json({a, b}));
  // Depending on an already completed task: ready at once.
  EXPECT_EQ(StateOf(Submit({{"depends_on", {a}}})), "ready");
}

TEST_F(TasksDepsTest, DependentWithDelayWaitsForItsRunTimeToo) {
  const std::string a = Submit({});
  const std::string b = Submit({{"depends_on", {a}}, {"delay_ms", 10'000}});
  ASSERT_NO_FATAL_FAILURE(Finish(a, true));
  EXPECT_EQ(StateOf(b), "delayed");
  Advance(10'000);
  EXPECT_EQ(StateOf(b), "ready");
}

TEST_F(TasksDepsTest, DependencyFailureFailsTheDependentByDefault) {
  const std::string a = Submit({});
  const std::string fail_dep = Submit({{"depends_on", {a}}});
  const std::string ignore_dep = Submit({{"depends_on", {a}}, {"on_dependency_failure", "ignore"}});
  ASSERT_NO_FATAL_FAILURE(Finish(a, false));
  json got = Get(fail_dep);
  EXPECT_EQ(got["state"], "failed");
  EXPECT_NE(got["error"].get<std::string>().find(a), std::string::npos);
  EXPECT_EQ(got["attempt"], 0);  // never ran
  EXPECT_EQ(EventTypes("q", fail_dep), (std::vector<std::string>{"submitted", "failed"}));
  EXPECT_EQ(StateOf(ignore_dep), "ready");
  // Submitting against an already failed dependency.
  EXPECT_EQ(StateOf(Submit({{"depends_on", {a}}})), "failed");
  EXPECT_EQ(StateOf(Submit({{"depends_on", {a}}, {"on_dependency_failure", "ignore"}})), "ready");
  EXPECT_TRUE(
      FailedWith(Call("task.submit",
                      {{"queue", "q"}, {"depends_on", {a}}, {"on_dependency_failure", "maybe"}}),
                 StatusCode::kInvalidParams));
}

TEST_F(TasksDepsTest, FailurePropagatesThroughAChain) {
  std::vector<std::string> ids;
  ASSERT_NO_FATAL_FAILURE(SubmitChainOfThree(&ids));
  EXPECT_EQ(StateOf(ids[1]), "waiting");
  EXPECT_EQ(StateOf(ids[2]), "waiting");
  ASSERT_NO_FATAL_FAILURE(Finish(ids[0], false));
  EXPECT_EQ(StateOf(ids[1]), "failed");
  EXPECT_EQ(StateOf(ids[2]), "failed");
  EXPECT_NE(Get(ids[2])["error"].get<std::string>().find(ids[1]), std::string::npos);
  EXPECT_EQ(Stats()["counts"]["failed"], 3);
  EXPECT_EQ(Stats()["counts"]["waiting"], 0);
}

TEST_F(TasksDepsTest, CancellationPropagatesThroughAChain) {
  std::vector<std::string> ids;
  ASSERT_NO_FATAL_FAILURE(SubmitChainOfThree(&ids));
  Ok("task.cancel", {{"task_id", ids[0]}});
  EXPECT_EQ(StateOf(ids[0]), "cancelled");
  EXPECT_EQ(StateOf(ids[1]), "failed");
  EXPECT_EQ(StateOf(ids[2]), "failed");
  EXPECT_NE(Get(ids[1])["error"].get<std::string>().find("cancelled"), std::string::npos);
  EXPECT_TRUE(ClaimOne("w").is_null());
}

TEST_F(TasksDepsTest, IgnoreInTheMiddleOfAChainLetsItRun) {
  std::vector<std::string> ids = SubmitBatch(
      {{{"queue", "q"}, {"ref", "A"}},
       {{"queue", "q"}, {"ref", "B"}, {"depends_on", {"A"}}, {"on_dependency_failure", "ignore"}},
       {{"queue", "q"}, {"ref", "C"}, {"depends_on", {"B"}}}});
  ASSERT_NO_FATAL_FAILURE(Finish(ids[0], false));
  EXPECT_EQ(StateOf(ids[1]), "ready");
  EXPECT_EQ(StateOf(ids[2]), "waiting");
  ASSERT_NO_FATAL_FAILURE(Finish(ids[1], true));
  EXPECT_EQ(StateOf(ids[2]), "ready");
}

TEST_F(TasksDepsTest, BatchRefsMayPointForwardAndAtExistingTasks) {
  const std::string old = Submit({});
  std::vector<std::string> ids =
      SubmitBatch({{{"queue", "q"}, {"ref", "late"}, {"depends_on", {"early", old}}},
                   {{"queue", "q"}, {"ref", "early"}}});
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(StateOf(ids[0]), "waiting");
  EXPECT_EQ(Get(ids[0])["depends_on"], json({ids[1], old}));
  EXPECT_EQ(DrainIds("w"), (std::vector<std::string>{old, ids[1], ids[0]}));
}

class TasksCycleTest : public TasksDepsTest {
 protected:
  // Submits the batch, expects DEPENDENCY_CYCLE naming exactly `refs` (in
  // some rotation, the first repeated at the end), and nothing stored.
  void ExpectCycle(json tasks, std::vector<std::string> refs) {
    const uint64_t before = Revision();
    Result<json> r = Call("task.submit_batch", {{"tasks", std::move(tasks)}});
    ASSERT_TRUE(FailedWith(r, StatusCode::kDependencyCycle));
    const json& cycle = r.status().details()["cycle"];
    ASSERT_TRUE(cycle.is_array()) << r.status().details().dump();
    std::vector<std::string> got = cycle.get<std::vector<std::string>>();
    ASSERT_EQ(got.size(), refs.size() + 1) << cycle.dump();
    EXPECT_EQ(got.front(), got.back()) << cycle.dump();
    got.pop_back();
    std::sort(got.begin(), got.end());
    std::sort(refs.begin(), refs.end());
    EXPECT_EQ(got, refs) << cycle.dump();
    EXPECT_EQ(Revision(), before) << "a rejected batch must write nothing";
    EXPECT_TRUE(Ok("task.list", {{"queue", "q"}})["tasks"].empty());
    EXPECT_TRUE(Ok("queue.list", json::object())["queues"].empty());
    EXPECT_TRUE(Events("q").empty());
  }
};

TEST_F(TasksCycleTest, TwoCycle) {
  ExpectCycle({{{"queue", "q"}, {"ref", "a"}, {"depends_on", {"b"}}},
               {{"queue", "q"}, {"ref", "b"}, {"depends_on", {"a"}}}},
              {"a", "b"});
}

TEST_F(TasksCycleTest, ThreeCycleAmongOtherTasks) {
  ExpectCycle({{{"queue", "q"}, {"ref", "ok"}},
               {{"queue", "q"}, {"ref", "x"}, {"depends_on", {"z", "ok"}}},
               {{"queue", "q"}, {"ref", "y"}, {"depends_on", {"x"}}},
               {{"queue", "q"}, {"ref", "z"}, {"depends_on", {"y"}}}},
              {"x", "y", "z"});
}

TEST_F(TasksCycleTest, SelfDependency) {
  ExpectCycle({{{"queue", "q"}, {"ref", "me"}, {"depends_on", {"me"}}}}, {"me"});
  const uint64_t before = Revision();
  Result<json> single =
      Call("task.submit", {{"queue", "q"}, {"ref", "me"}, {"depends_on", {"me"}}});
  EXPECT_TRUE(FailedWith(single, StatusCode::kDependencyCycle));
  EXPECT_EQ(Revision(), before);
}

TEST_F(TasksCycleTest, ChildDependingOnItsParent) {
  // The parent waits for its child, the child for its parent.
  ExpectCycle({{{"queue", "q"}, {"ref", "p"}},
               {{"queue", "q"}, {"ref", "c"}, {"parent_id", "p"}, {"depends_on", {"p"}}}},
              {"p", "c"});
}

TEST_F(TasksCycleTest, DiamondIsNotACycle) {
  std::vector<std::string> ids =
      SubmitBatch({{{"queue", "q"}, {"ref", "a"}},
                   {{"queue", "q"}, {"ref", "b"}, {"depends_on", {"a"}}},
                   {{"queue", "q"}, {"ref", "c"}, {"depends_on", {"a"}}},
                   {{"queue", "q"}, {"ref", "d"}, {"depends_on", {"b", "c"}}}});
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(DrainIds("w"), ids);
}

}  // namespace
}  // namespace shim::engine::taskstest
