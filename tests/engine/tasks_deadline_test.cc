// Task queues: deadlines. A task not yet running at deadline_at_ms -
// escalate_before_ms is raised to priority 1 (event `escalated`); one not
// completed at deadline_at_ms gets `deadline_missed`.
#include <algorithm>
#include <string>
#include <vector>

#include "tests/engine/tasks_fixture.h"

namespace shim::engine::taskstest {
namespace {

using TasksDeadlineTest = TasksTest;

int Count(const std::vector<std::string>& v, const std::string& s) {
  return static_cast<int>(std::count(v.begin(), v.end(), s));
}

TEST_F(TasksDeadlineTest, EscalatesThenMissesTheDeadline) {
  const std::string busy = Submit({{"priority", 5}});
  const std::string urgent =
      Submit({{"priority", 10}, {"deadline_at_ms", Now() + 10'000}, {"escalate_before_ms", 3000}});
  Advance(6999);
  EXPECT_EQ(Get(urgent)["priority"], 10);
  EXPECT_EQ(Get(urgent)["escalated"], false);
  Advance(1);  // deadline - escalate_before
  json got = Get(urgent);
  EXPECT_EQ(got["priority"], 1);
  EXPECT_EQ(got["escalated"], true);
  std::vector<json> ev = Events("q", urgent);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[1]["type"], "escalated");
  EXPECT_EQ(ev[1]["from_priority"], 10);
  // It now goes before the older priority-5 task, but is left unclaimed.
  json first = ClaimOne("w");
  ASSERT_FALSE(first.is_null());
  EXPECT_EQ(first["task_id"], urgent);
  ASSERT_OK(Fail(first, true));  // back to delayed, still not done
  Advance(2999);
  EXPECT_EQ(Count(EventTypes("q", urgent), "deadline_missed"), 0);
  Advance(1);
  std::vector<std::string> types = EventTypes("q", urgent);
  EXPECT_EQ(Count(types, "deadline_missed"), 1);
  EXPECT_EQ(Count(types, "escalated"), 1);
  EXPECT_EQ(Get(urgent)["deadline_missed"], true);
  EXPECT_EQ(StateOf(busy), "ready");
  Advance(60'000);
  EXPECT_EQ(Count(EventTypes("q", urgent), "deadline_missed"), 1) << "reported once";
}

TEST_F(TasksDeadlineTest, EscalatedDelayedTaskKeepsPriorityOneWhenReady) {
  const std::string normal = Submit({{"priority", 2}});
  const std::string later = Submit({{"priority", 9},
                                    {"delay_ms", 5000},
                                    {"deadline_at_ms", Now() + 6000},
                                    {"escalate_before_ms", 3000}});
  Advance(3000);
  EXPECT_EQ(Get(later)["priority"], 1);
  EXPECT_EQ(StateOf(later), "delayed");
  Advance(2000);
  EXPECT_EQ(DrainIds("w"), (std::vector<std::string>{later, normal}));
}

TEST_F(TasksDeadlineTest, RunningOrCompletedTasksAreNotEscalated) {
  const std::string running =
      Submit({{"deadline_at_ms", Now() + 5000}, {"escalate_before_ms", 2000}});
  const std::string done = Submit({{"deadline_at_ms", Now() + 5000}, {"escalate_before_ms", 2000}});
  json r = ClaimOne("w");
  ASSERT_EQ(r["task_id"], running);
  json d = ClaimOne("w");
  ASSERT_EQ(d["task_id"], done);
  ASSERT_OK(Complete(d));
  Advance(5000);
  std::vector<std::string> rt = EventTypes("q", running);
  EXPECT_EQ(Count(rt, "escalated"), 0);
  EXPECT_EQ(Count(rt, "deadline_missed"), 1);  // running, not completed
  std::vector<std::string> dt = EventTypes("q", done);
  EXPECT_EQ(Count(dt, "escalated"), 0);
  EXPECT_EQ(Count(dt, "deadline_missed"), 0);
  EXPECT_EQ(Get(running)["priority"], 5);
}

TEST_F(TasksDeadlineTest, EscalateBeforeNeedsADeadline) {
  EXPECT_TRUE(FailedWith(Call("task.submit", {{"queue", "q"}, {"escalate_before_ms", 100}}),
                         StatusCode::kInvalidParams));
}

}  // namespace
}  // namespace shim::engine::taskstest
