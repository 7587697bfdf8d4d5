// Task queues: cascades of any length. Failing or cancelling the head of a
// dependency chain or a parent tree sets off as many transitions as the
// chain is long; they run as queued steps, TaskModule::kCascadeSlice per
// engine turn, never as recursion (a chain of tens of thousands once blew
// the stack, and again after every restart). A crash between slices leaves
// a cascade half done; recovery finishes it from the task states.
#include <string>
#include <vector>

#include "engine/tasks/tasks.h"
#include "tests/engine/tasks_fixture.h"
#include "tests/support/test_util.h"

namespace shim::engine::taskstest {
namespace {

constexpr size_t kSlice = TaskModule::kCascadeSlice;
// Chains far longer than a slice, and than a recursive cascade survived
// (it crashed at about 18,000 in the optimized build). Under a sanitizer,
// whose -O0 frames are several times bigger, a recursion would crash well
// before 8,000; the full lengths run in the optimized build, and
// tests/e2e/cascade_test.cc runs the lengths of the report in both.
const size_t kLongChain = testing::SanitizedLoad(25'000, 8'000);
const size_t kDeepChain = testing::SanitizedLoad(20'000, 8'000);

class TasksCascadeTest : public TasksTest {
 protected:
  // Keeps every finished task of the test queues, so states can be counted.
  void SetUp() override {
    TasksTest::SetUp();
    for (const char* q : {"q", "t"}) {
      Ok("queue.configure",
         {{"queue", q}, {"keep_completed", 10'000'000}, {"keep_failed", 10'000'000}});
    }
  }

  // A chain of `n` tasks, each depending on the one before, submitted in
  // batches (within a batch by ref, across batches by id). Returns the ids
  // in chain order; the head has no dependency.
  std::vector<std::string> Chain(size_t n, const char* link = "depends_on",
                                 json extra = json::object()) {
    std::vector<std::string> ids;
    while (ids.size() < n) {
      json batch = json::array();
      const size_t first = ids.size();
      for (size_t i = first; i < n && i < first + 10'000; ++i) {
        json t = {{"queue", "q"}, {"ref", "r" + std::to_string(i)}};
        t.update(extra);
        if (i > 0) {
          const std::string prev = i == first ? ids.back() : "r" + std::to_string(i - 1);
          if (std::string(link) == "depends_on") {
            t["depends_on"] = {prev};
          } else {
            t["parent_id"] = prev;
          }
        }
        batch.push_back(std::move(t));
      }
      std::vector<std::string> got = SubmitBatch(std::move(batch));
      EXPECT_EQ(got.size(), std::min(n - first, size_t{10'000}));
      if (got.empty()) break;
      ids.insert(ids.end(), got.begin(), got.end());
    }
    return ids;
  }
};

TEST_F(TasksCascadeTest, CancellingTheHeadOfALongDependencyChainFailsItInSlices) {
  const size_t n = kLongChain;
  std::vector<std::string> ids = Chain(n);
  ASSERT_EQ(ids.size(), n);
  ASSERT_OK(Call("task.cancel", {{"task_id", ids[0]}}));
  // The request is answered after the first slice: the tail still waits.
  EXPECT_EQ(StateOf(ids.back()), "waiting");
  EXPECT_EQ(engine_->NextTimerInMs(), std::optional<int64_t>(0)) << "the rest is due at once";
  const int turns = RunTurns();
  EXPECT_GE(turns, static_cast<int>(n / kSlice) - 1);
  EXPECT_EQ(StateOf(ids[0]), "cancelled");
  EXPECT_EQ(CountState(ids, "failed"), n - 1);
  json last = Get(ids.back());
  EXPECT_EQ(last["error"], "dependency " + ids[n - 2] + " failed");
  // Events follow the chain in order (the channel keeps its newest 10,000).
  std::vector<std::string> failed_order;
  for (const json& e : Events()) {
    if (e["type"] == "failed") failed_order.push_back(e["task_id"]);
  }
  ASSERT_GE(failed_order.size(), 4'000u);
  const size_t skipped = n - failed_order.size();
  for (size_t k = 0; k < failed_order.size(); ++k)
    ASSERT_EQ(failed_order[k], ids[skipped + k]) << k;
}

TEST_F(TasksCascadeTest, CancellingTheRootOfADeepParentChainCancelsEveryDescendant) {
  const size_t n = kDeepChain;
  std::vector<std::string> ids = Chain(n, "parent_id");
  ASSERT_EQ(ids.size(), n);
  EXPECT_EQ(StateOf(ids[0]), "waiting");
  EXPECT_EQ(StateOf(ids.back()), "ready");
  ASSERT_OK(Call("task.cancel", {{"task_id", ids[0]}}));
  RunTurns();
  EXPECT_EQ(CountState(ids, "cancelled"), n);
  EXPECT_EQ(Get(ids.back())["error"], "parent " + ids[n - 2] + " was cancelled");
}

TEST_F(TasksCascadeTest, FailingTheDeepestChildFailsEveryAncestor) {
  const size_t n = kDeepChain;
  std::vector<std::string> ids = Chain(n, "parent_id", {{"max_attempts", 1}});
  json leaf = ClaimOne("w");
  ASSERT_EQ(leaf["task_id"], ids.back());
  ASSERT_OK(Fail(leaf, /*retry=*/false));
  RunTurns();
  EXPECT_EQ(CountState(ids, "failed"), n);
  EXPECT_EQ(Get(ids[0])["error"], "child " + ids[1] + " failed");
}

TEST_F(TasksCascadeTest, OtherRequestsAreServedBetweenSlices) {
  std::vector<std::string> ids = Chain(5 * kSlice);
  ASSERT_OK(Call("task.cancel", {{"task_id", ids[0]}}));
  // A request between two slices is answered at once, with the cascade
  // still under way.
  ASSERT_OK(Call("state.set", {{"key", "k"}, {"value", 1}}));
  EXPECT_EQ(StateOf(ids.back()), "waiting");
  RunTurns();
  EXPECT_EQ(StateOf(ids.back()), "failed");
}

TEST_F(TasksCascadeTest, ACompletionWithManyDependentsReadiesThemAll) {
  const std::string head = Submit({});
  std::vector<std::string> deps;
  for (size_t b = 0; b < 3; ++b) {
    json batch = json::array();
    for (size_t i = 0; i < kSlice; ++i) batch.push_back({{"queue", "q"}, {"depends_on", {head}}});
    for (const std::string& id : SubmitBatch(std::move(batch))) deps.push_back(id);
  }
  json h = ClaimOne("w");
  ASSERT_EQ(h["task_id"], head);
  ASSERT_OK(Complete(h));
  RunTurns();
  EXPECT_EQ(CountState(deps, "ready"), deps.size());
}

TEST_F(TasksCascadeTest, ACrashBetweenSlicesIsFinishedByRecovery) {
  const size_t n = 4 * kSlice;
  std::vector<std::string> chain = Chain(n);
  std::vector<std::string> tree = Chain(n, "parent_id", {{"queue", "t"}});
  ASSERT_OK(Call("task.cancel", {{"task_id", chain[0]}}));
  ASSERT_OK(Call("task.cancel", {{"task_id", tree[0]}}));
  // One more slice is durable; then the server dies (the queued steps are
  // only in memory).
  engine_->RunTimers();
  Pump();
  ASSERT_EQ(StateOf(chain.back()), "waiting");
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(engine_->NextTimerInMs(), std::optional<int64_t>(0)) << "recovery queued the rest";
  RunTurns();
  EXPECT_EQ(CountState(chain, "failed"), n - 1);
  EXPECT_EQ(CountState(tree, "cancelled"), n);
}

TEST_F(TasksCascadeTest, RecoveryReadiesDependentsOfACompletionLeftHalfDone) {
  const std::string head = Submit({});
  json batch = json::array();
  for (size_t i = 0; i < 2 * kSlice; ++i) batch.push_back({{"queue", "q"}, {"depends_on", {head}}});
  std::vector<std::string> deps = SubmitBatch(std::move(batch));
  json h = ClaimOne("w");
  ASSERT_OK(Complete(h));
  ASSERT_GT(CountState(deps, "waiting"), 0u) << "the completion readied only one slice";
  ASSERT_NO_FATAL_FAILURE(Reopen());
  RunTurns();
  EXPECT_EQ(CountState(deps, "ready"), deps.size());
}

TEST_F(TasksCascadeTest, RetentionWaitsForTheCascadeAndThenForgets) {
  Ok("queue.configure", {{"queue", "q"}, {"keep_failed", 0}, {"keep_completed", 0}});
  const size_t n = 3 * kSlice;
  std::vector<std::string> ids = Chain(n);
  ASSERT_OK(Call("task.cancel", {{"task_id", ids[0]}}));
  // Mid-cascade, a restart must still find the head that started it.
  ASSERT_NO_FATAL_FAILURE(Reopen());
  RunTurns();
  EXPECT_EQ(CountState(ids, "absent"), n) << "every finished task forgotten once the cascade ended";
  json stats = Stats();
  EXPECT_EQ(stats["counts"]["waiting"], 0);
  EXPECT_EQ(stats["counts"]["failed"], 0);
}

TEST_F(TasksCascadeTest, ChildAddedToAWaitingParentIsAwaitedAfterARestart) {
  const std::string p = Submit({});
  const std::string c1 = Submit({{"parent_id", p}});
  const std::string c2 = Submit({{"parent_id", p}});  // the parent already waits
  ASSERT_NO_FATAL_FAILURE(Reopen());
  json t1 = ClaimOne("w");
  ASSERT_EQ(t1["task_id"], c1);
  ASSERT_OK(Complete(t1));
  EXPECT_EQ(StateOf(p), "waiting") << "c2 is not done";
  EXPECT_EQ(Get(p)["children_results"].size(), 2u);
  json t2 = ClaimOne("w");
  ASSERT_EQ(t2["task_id"], c2);
  ASSERT_OK(Complete(t2));
  EXPECT_EQ(StateOf(p), "ready");
}

TEST_F(TasksCascadeTest, ACycleCheckOfALongBatchChainDoesNotRecurse) {
  // One batch, one chain of 10,000 refs, closed into a cycle at the end.
  json batch = json::array();
  const size_t n = 10'000;
  for (size_t i = 0; i < n; ++i) {
    batch.push_back({{"queue", "q"},
                     {"ref", "r" + std::to_string(i)},
                     {"depends_on", {"r" + std::to_string((i + 1) % n)}}});
  }
  Result<json> r = Call("task.submit_batch", {{"tasks", batch}});
  ASSERT_TRUE(FailedWith(r, StatusCode::kDependencyCycle));
  EXPECT_EQ(r.status().details()["cycle"].size(), n + 1);
  batch.back().erase("depends_on");
  ASSERT_OK(Call("task.submit_batch", {{"tasks", batch}}));
}

TEST_F(TasksCascadeTest, QueueStatsOnAnUnknownQueueCreatesNothing) {
  for (int i = 0; i < 100; ++i) {
    json s = Stats("nobody-" + std::to_string(i));
    EXPECT_EQ(s["counts"]["ready"], 0);
  }
  const json listed = Ok(
      "queue.list", json::object());  // outlives the loop (range-for keeps only the last temporary)
  for (const json& q : listed["queues"]) {
    EXPECT_EQ(q["queue"].get<std::string>().rfind("nobody-", 0), std::string::npos) << q.dump();
  }
}

}  // namespace
}  // namespace shim::engine::taskstest
