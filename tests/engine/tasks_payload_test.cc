// Task payloads: every claim, retry and task.get returns the payload that
// was submitted, whether the payload cache still holds it or the store has
// to be read (past the cache's budget, after a claim dropped it, after a
// restart).
#include <string>
#include <vector>

#include "tests/engine/tasks_fixture.h"

namespace shim::engine::taskstest {
namespace {

class TasksPayloadTest : public TasksTest {
 protected:
  int64_t Cached() { return engine_->Describe()["task_payloads_cached"].get<int64_t>(); }
};

json BigPayload(int n) {
  return {{"n", n}, {"blob", std::string(900'000, static_cast<char>('a' + n % 26))}};
}

// 12 payloads of 900 KB are past the 8 MiB cache budget: the older ones are
// served from memory, the rest from the store. Each claim gets its own.
TEST_F(TasksPayloadTest, ClaimsGetTheirPayloadsFromMemoryAndFromTheStore) {
  json tasks = json::array();
  for (int n = 0; n < 12; ++n) tasks.push_back({{"queue", "q"}, {"payload", BigPayload(n)}});
  const std::vector<std::string> ids = SubmitBatch(tasks);
  ASSERT_EQ(ids.size(), 12u);
  // About nine fit the budget; the rest are in the store only.
  EXPECT_GT(Cached(), 0);
  EXPECT_LT(Cached(), 12);
  EXPECT_GT(engine_->Describe()["task_payload_cache_bytes"].get<int64_t>(), 7'000'000);
  EXPECT_LE(engine_->Describe()["task_payload_cache_bytes"].get<int64_t>(), 8 << 20);
  EXPECT_EQ(Get(ids[0])["payload"], BigPayload(0)) << "task.get of a cached payload";
  EXPECT_EQ(Get(ids[11])["payload"], BigPayload(11)) << "task.get of a payload past the budget";
  for (int n = 0; n < 12; ++n) {
    json t = ClaimOne("w");
    ASSERT_FALSE(t.is_null()) << n;
    EXPECT_EQ(t["task_id"], ids[n]);
    EXPECT_EQ(t["payload"], BigPayload(n)) << "task " << n;
    EXPECT_EQ(Get(ids[n])["payload"], BigPayload(n)) << "task.get of task " << n;
  }
  EXPECT_EQ(Cached(), 0) << "claimed tasks' payloads are not held";
}

// A task that finishes without a claim (here: cancelled) lets its payload
// go, or such tasks would fill the budget that ready tasks need.
TEST_F(TasksPayloadTest, ATaskFinishedWithoutAClaimLetsItsPayloadGo) {
  const std::string id = Submit({{"payload", {{"k", "v"}}}});
  EXPECT_EQ(Cached(), 1);
  Ok("task.cancel", {{"task_id", id}});
  EXPECT_EQ(Cached(), 0);
  EXPECT_EQ(Get(id)["payload"], json({{"k", "v"}}));
}

// A claim drops the payload from memory; the retry reads it from the store.
TEST_F(TasksPayloadTest, ARetryGetsThePayloadAgain) {
  const std::string id =
      Submit({{"payload", {{"k", "v"}}}, {"backoff", {{"type", "fixed"}, {"delay_ms", 0}}}});
  json first = ClaimOne("w");
  ASSERT_EQ(first["payload"], json({{"k", "v"}}));
  Ok("task.fail", {{"task_id", id}, {"lease_token", first["lease_token"]}, {"error", "e"}});
  json again = ClaimOne("w");
  ASSERT_FALSE(again.is_null());
  EXPECT_EQ(again["attempt"], 2);
  EXPECT_EQ(again["payload"], json({{"k", "v"}}));
}

// Claimed in the same group that submitted it (before its commit), the
// payload comes from memory; it is still right afterwards and after a
// restart, when only the store has it.
TEST_F(TasksPayloadTest, APayloadClaimedBeforeItsCommitAndReadAfterARestart) {
  // Both requests go into one open group: no Pump between them.
  auto submitted = Execute("task.submit", {{"queue", "q"}, {"payload", {{"x", 1}}}});
  auto claimed = Execute("task.claim", {{"queues", {"q"}}, {"worker_id", "w"}});
  Pump();
  ASSERT_TRUE(submitted->ok());
  ASSERT_TRUE(claimed->ok());
  ASSERT_EQ(claimed->value()["tasks"].size(), 1u);
  EXPECT_EQ(claimed->value()["tasks"][0]["payload"], json({{"x", 1}}));
  const std::string id = submitted->value()["task_id"];
  EXPECT_EQ(Get(id)["payload"], json({{"x", 1}}));
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(Get(id)["payload"], json({{"x", 1}}));
}

}  // namespace
}  // namespace shim::engine::taskstest
