// Task queues: parents and children. With `aggregate` a parent completes by
// itself once its children are completed (concatenate / merge / first /
// last, in child order) with event parent_completed; without it, it becomes
// ready and task.get shows children_results. A failed child fails the parent
// unless the parent ignores dependency failures.
#include <map>
#include <string>
#include <vector>

#include "tests/engine/tasks_fixture.h"

namespace shim::engine::taskstest {
namespace {

class TasksParentTest : public TasksTest {
 protected:
  // Submits parent "p" (with `parent_extra`) and children c0..c{n-1}; returns
  // {parent, children...}.
  std::vector<std::string> Family(size_t n, json parent_extra = json::object()) {
    json p = {{"queue", "q"}, {"ref", "p"}};
    p.update(parent_extra);
    json tasks = json::array({p});
    for (size_t i = 0; i < n; ++i) {
      tasks.push_back(
          {{"queue", "q"}, {"ref", "c" + std::to_string(i)}, {"parent_id", "p"}, {"payload", i}});
    }
    return SubmitBatch(tasks);
  }
  // Claims every ready task; task_id -> claim, of every claim so far.
  std::map<std::string, json> ClaimAll() {
    for (const json& t : Claim("w", "q", 100)) claims_[t["task_id"]] = t;
    return claims_;
  }
  // Completes children in the order given with the results given.
  void CompleteInOrder(const std::vector<std::string>& ids, const std::vector<json>& results) {
    auto claims = ClaimAll();
    for (size_t i = 0; i < ids.size(); ++i) {
      ASSERT_TRUE(claims.count(ids[i])) << ids[i] << " was not ready";
      ASSERT_OK(Complete(claims[ids[i]], results[i]));
    }
  }
  std::map<std::string, json> claims_;
};

TEST_F(TasksParentTest, ConcatenateInChildOrder) {
  auto ids = Family(3, {{"aggregate", "concatenate"}});
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(StateOf(ids[0]), "waiting");
  // Children finish out of order; the parent is never handed out.
  CompleteInOrder({ids[3], ids[1]}, {"r2", "r0"});
  EXPECT_EQ(StateOf(ids[0]), "waiting");
  CompleteInOrder({ids[2]}, {"r1"});
  json parent = Get(ids[0]);
  EXPECT_EQ(parent["state"], "completed");
  EXPECT_EQ(parent["result"], json({"r0", "r1", "r2"}));
  EXPECT_EQ(parent["attempt"], 0);
  std::vector<std::string> types = EventTypes("q", ids[0]);
  EXPECT_EQ(types, (std::vector<std::string>{"submitted", "parent_completed", "completed"}));
  EXPECT_TRUE(ClaimOne("w").is_null());
}

TEST_F(TasksParentTest, MergeDeepMergesObjectsInChildOrder) {
  auto ids = Family(3, {{"aggregate", "merge"}});
  CompleteInOrder({ids[3], ids[2], ids[1]},
                  {{{"b", 3}, {"deep", {{"z", 3}}}},
                   {{"deep", {{"y", 2}, {"x", "overridden"}}}, {"list", {2}}},
                   {{"a", 1}, {"b", 1}, {"deep", {{"x", 1}}}, {"list", {1, 1}}}});
  json parent = Get(ids[0]);
  EXPECT_EQ(parent["state"], "completed");
  EXPECT_EQ(parent["result"], json({{"a", 1},
                                    {"b", 3},
                                    {"deep", {{"x", "overridden"}, {"y", 2}, {"z", 3}}},
                                    {"list", {2}}}));
}

TEST_F(TasksParentTest, FirstAndLastFollowChildOrder) {
  for (const char* how : {"first", "last"}) {
    SCOPED_TRACE(how);
    auto ids = Family(3, {{"aggregate", how}, {"queue", "q"}});
    // Completed last-to-first: completion order must not matter.
    CompleteInOrder({ids[3], ids[2], ids[1]}, {"third", "second", "first"});
    json parent = Get(ids[0]);
    EXPECT_EQ(parent["state"], "completed");
    EXPECT_EQ(parent["result"], std::string(how) == "first" ? "first" : "third");
    EXPECT_EQ(EventTypes("q", ids[0])[1], "parent_completed");
  }
}

TEST_F(TasksParentTest, WithoutAggregateTheParentRunsWithChildrenResults) {
  auto ids = Family(2);
  CompleteInOrder({ids[2], ids[1]}, {json({{"n", 2}}), json({{"n", 1}})});
  json parent = Get(ids[0]);
  EXPECT_EQ(parent["state"], "ready");
  ASSERT_EQ(parent["children_results"].size(), 2u);
  EXPECT_EQ(parent["children_results"][0]["task_id"], ids[1]);
  EXPECT_EQ(parent["children_results"][0]["result"], json({{"n", 1}}));
  EXPECT_EQ(parent["children_results"][1]["task_id"], ids[2]);
  EXPECT_EQ(parent["children_results"][1]["state"], "completed");
  EXPECT_EQ(parent["children_results"][1]["result"], json({{"n", 2}}));
  json t = ClaimOne("w");
  ASSERT_FALSE(t.is_null());
  EXPECT_EQ(t["task_id"], ids[0]);
  ASSERT_OK(Complete(t, "summary"));
  EXPECT_EQ(Get(ids[0])["result"], "summary");
}

TEST_F(TasksParentTest, ChildrenAddedToAnExistingReadyParent) {
  const std::string parent = Submit({{"aggregate", "concatenate"}});
  EXPECT_EQ(StateOf(parent), "ready");
  std::vector<std::string> kids =
      SubmitBatch({{{"queue", "q"}, {"parent_id", parent}, {"payload", 1}},
                   {{"queue", "q"}, {"parent_id", parent}, {"payload", 2}}});
  EXPECT_EQ(StateOf(parent), "waiting");
  CompleteInOrder(kids, {10, 20});
  EXPECT_EQ(Get(parent)["result"], json({10, 20}));
  // A parent that already finished takes no more children.
  EXPECT_TRUE(FailedWith(Call("task.submit", {{"queue", "q"}, {"parent_id", parent}}),
                         StatusCode::kInvalidState));
}

TEST_F(TasksParentTest, FailedChildFailsTheParentAndCancelsTheOthers) {
  auto ids = Family(3, {{"aggregate", "concatenate"}});
  auto claims = ClaimAll();
  ASSERT_EQ(claims.size(), 3u);
  ASSERT_OK(Complete(claims[ids[1]], "ok"));
  ASSERT_EQ(Fail(claims[ids[2]], false)->at("state"), "failed");
  json parent = Get(ids[0]);
  EXPECT_EQ(parent["state"], "failed");
  EXPECT_NE(parent["error"].get<std::string>().find(ids[2]), std::string::npos);
  EXPECT_EQ(StateOf(ids[3]), "cancelled");
  EXPECT_TRUE(FailedWith(Complete(claims[ids[3]]), StatusCode::kNotOwner));
  EXPECT_EQ(StateOf(ids[1]), "completed");
}

TEST_F(TasksParentTest, ParentIgnoringFailuresCompletesWithTheRest) {
  auto ids = Family(3, {{"aggregate", "concatenate"}, {"on_dependency_failure", "ignore"}});
  auto claims = ClaimAll();
  ASSERT_OK(Complete(claims[ids[3]], "c2"));
  ASSERT_EQ(Fail(claims[ids[2]], false)->at("state"), "failed");
  EXPECT_EQ(StateOf(ids[0]), "waiting");
  ASSERT_OK(Complete(claims[ids[1]], "c0"));
  json parent = Get(ids[0]);
  EXPECT_EQ(parent["state"], "completed");
  EXPECT_EQ(parent["result"], json({"c0", "c2"}));
}

TEST_F(TasksParentTest, CancellingTheParentCancelsItsChildren) {
  auto ids = Family(2, {{"aggregate", "last"}});
  auto conn = NewClient();
  json running = ClaimOne("w", "q", conn);
  ASSERT_FALSE(running.is_null());
  Ok("task.cancel", {{"task_id", ids[0]}});
  for (const auto& id : ids) EXPECT_EQ(StateOf(id), "cancelled") << id;
  ASSERT_EQ(conn->Of("task.cancelled").size(), 1u);
  EXPECT_EQ(conn->Of("task.cancelled")[0]["task_id"], running["task_id"]);
}

}  // namespace
}  // namespace shim::engine::taskstest
