// Task queues: retries. Every backoff formula with exact times (the
// next_run_at_ms of task.fail, and the task becoming ready exactly then),
// jitter bounds, attempts exhausted (dead letter), retry:false, task.retry.
#include <set>
#include <string>
#include <vector>

#include "engine/tasks/backoff.h"
#include "tests/engine/tasks_fixture.h"

namespace shim::engine::taskstest {
namespace {

class TasksRetryTest : public TasksTest {
 protected:
  // Claims the task (it must be the only ready one), fails it, and checks
  // that it is delayed by exactly `delay` and becomes ready exactly then.
  void FailAndExpectDelay(const std::string& id, int64_t attempt, int64_t delay) {
    SCOPED_TRACE("attempt " + std::to_string(attempt) + ", expected delay " +
                 std::to_string(delay));
    json t = ClaimOne("w");
    ASSERT_FALSE(t.is_null());
    ASSERT_EQ(t["task_id"], id);
    ASSERT_EQ(t["attempt"], attempt);
    const int64_t failed_at = Now();
    json r = Ok("task.fail", {{"task_id", id}, {"lease_token", t["lease_token"]}, {"error", "e"}});
    ASSERT_EQ(r["next_run_at_ms"], failed_at + delay);
    if (delay == 0) {
      ASSERT_EQ(r["state"], "ready");
      return;
    }
    ASSERT_EQ(r["state"], "delayed");
    Advance(delay - 1);
    ASSERT_EQ(StateOf(id), "delayed");
    ASSERT_TRUE(ClaimOne("other").is_null());
    Advance(1);
    ASSERT_EQ(StateOf(id), "ready");
  }
};

TEST_F(TasksRetryTest, FixedBackoff) {
  const std::string id =
      Submit({{"max_attempts", 4}, {"backoff", {{"type", "fixed"}, {"delay_ms", 750}}}});
  for (int attempt = 1; attempt <= 3; ++attempt)
    ASSERT_NO_FATAL_FAILURE(FailAndExpectDelay(id, attempt, 750));
}

TEST_F(TasksRetryTest, DefaultBackoffIsFixedOneSecond) {
  const std::string id = Submit({});
  EXPECT_EQ(Get(id)["backoff"], json({{"type", "fixed"}, {"delay_ms", 1000}, {"jitter", false}}));
  EXPECT_EQ(Get(id)["max_attempts"], 3);
  ASSERT_NO_FATAL_FAILURE(FailAndExpectDelay(id, 1, 1000));
}

TEST_F(TasksRetryTest, ExponentialBackoffDoublesUpToTheCap) {
  const std::string id =
      Submit({{"max_attempts", 8},
              {"backoff", {{"type", "exponential"}, {"delay_ms", 100}, {"max_delay_ms", 1000}}}});
  // delay_ms * 2^(attempt-1): 100, 200, 400, 800, then capped at 1000.
  const int64_t expected[] = {100, 200, 400, 800, 1000, 1000, 1000};
  for (int attempt = 1; attempt <= 7; ++attempt) {
    ASSERT_NO_FATAL_FAILURE(FailAndExpectDelay(id, attempt, expected[attempt - 1]));
  }
}

TEST_F(TasksRetryTest, ExponentialBackoffWithoutCap) {
  const std::string id =
      Submit({{"max_attempts", 6}, {"backoff", {{"type", "exponential"}, {"delay_ms", 300}}}});
  const int64_t expected[] = {300, 600, 1200, 2400, 4800};
  for (int attempt = 1; attempt <= 5; ++attempt) {
    ASSERT_NO_FATAL_FAILURE(FailAndExpectDelay(id, attempt, expected[attempt - 1]));
  }
}

TEST_F(TasksRetryTest, ZeroDelayRetriesAtOnce) {
  const std::string id = Submit({{"backoff", {{"delay_ms", 0}}}});
  ASSERT_NO_FATAL_FAILURE(FailAndExpectDelay(id, 1, 0));
}

TEST_F(TasksRetryTest, BackoffFormulaDirectly) {
  Backoff exp{Backoff::Type::kExponential, 100, 0, false};
  EXPECT_EQ(exp.DelayMs(1, 0), 100);
  EXPECT_EQ(exp.DelayMs(2, 0), 200);
  EXPECT_EQ(exp.DelayMs(11, 0), 102'400);
  // Huge attempt numbers saturate instead of overflowing.
  EXPECT_GT(exp.DelayMs(1000, 0), 0);
  EXPECT_EQ(exp.DelayMs(1000, 0), exp.DelayMs(60, 0));
  Backoff capped{Backoff::Type::kExponential, 100, 250, false};
  EXPECT_EQ(capped.DelayMs(3, 0), 250);
  // Jitter: [50 %, 150 %] of the base, never over the cap, spread out.
  Backoff jit{Backoff::Type::kFixed, 1000, 0, true};
  Backoff jit_capped{Backoff::Type::kExponential, 1000, 3000, true};
  std::set<int64_t> seen;
  for (uint64_t seed = 0; seed < 2000; ++seed) {
    const int64_t d = jit.DelayMs(1, SplitMix64(seed));
    ASSERT_GE(d, 500);
    ASSERT_LE(d, 1500);
    seen.insert(d);
    const int64_t c = jit_capped.DelayMs(3, SplitMix64(seed));  // base min(4000, 3000)
    ASSERT_GE(c, 1500);
    ASSERT_LE(c, 3000);
    EXPECT_EQ(jit.DelayMs(1, SplitMix64(seed)), d) << "jitter must be deterministic";
  }
  EXPECT_GT(seen.size(), 500u);
  EXPECT_LT(*seen.begin(), 600);
  EXPECT_GT(*seen.rbegin(), 1400);
}

TEST_F(TasksRetryTest, JitterStaysWithinBoundsThroughTheEngine) {
  // Many tasks, each failed twice: first delay base 1000 (exponential, attempt 1),
  // second base min(2000, cap 1800).
  json batch = json::array();
  for (int i = 0; i < 60; ++i) {
    batch.push_back({{"queue", "q"},
                     {"max_attempts", 5},
                     {"backoff",
                      {{"type", "exponential"},
                       {"delay_ms", 1000},
                       {"max_delay_ms", 1800},
                       {"jitter", true}}}});
  }
  const std::vector<std::string> ids = SubmitBatch(batch);
  ASSERT_EQ(ids.size(), 60u);
  std::set<int64_t> delays1, delays2;
  std::vector<json> claimed = Claim("w", "q", 60).get<std::vector<json>>();
  ASSERT_EQ(claimed.size(), 60u);
  for (const json& t : claimed) {
    json r = Ok("task.fail",
                {{"task_id", t["task_id"]}, {"lease_token", t["lease_token"]}, {"error", "e"}});
    const int64_t d = r["next_run_at_ms"].get<int64_t>() - Now();
    EXPECT_GE(d, 500);
    EXPECT_LE(d, 1500);
    delays1.insert(d);
    // The stored run time matches what was returned.
    EXPECT_EQ(Get(t["task_id"])["run_at_ms"], r["next_run_at_ms"]);
  }
  EXPECT_GT(delays1.size(), 30u) << "jitter should spread the retries";
  Advance(1500);
  EXPECT_EQ(Stats()["counts"]["ready"], 60);
  claimed = Claim("w", "q", 60).get<std::vector<json>>();
  ASSERT_EQ(claimed.size(), 60u);
  for (const json& t : claimed) {
    json r = Ok("task.fail",
                {{"task_id", t["task_id"]}, {"lease_token", t["lease_token"]}, {"error", "e"}});
    const int64_t d = r["next_run_at_ms"].get<int64_t>() - Now();
    EXPECT_GE(d, 900);   // 50 % of 1800
    EXPECT_LE(d, 1800);  // never over the cap
    delays2.insert(d);
  }
  EXPECT_GT(delays2.size(), 20u);
  // Each task becomes ready exactly at its own time.
  Advance(899);
  EXPECT_EQ(Stats()["counts"]["ready"], 0);
  Advance(901);
  EXPECT_EQ(Stats()["counts"]["ready"], 60);
}

TEST_F(TasksRetryTest, AttemptsExhaustedGoesToDeadLetter) {
  const std::string id = Submit({{"max_attempts", 2}, {"backoff", {{"delay_ms", 10}}}});
  json t = ClaimOne("w");
  ASSERT_FALSE(t.is_null());
  EXPECT_EQ(Fail(t, true, "first")->at("state"), "delayed");
  Advance(10);
  t = ClaimOne("w");
  ASSERT_FALSE(t.is_null());
  EXPECT_EQ(t["attempt"], 2);
  json r = Fail(t, true, "second").value();
  EXPECT_EQ(r["state"], "failed");
  EXPECT_TRUE(r["next_run_at_ms"].is_null());
  json got = Get(id);
  EXPECT_EQ(got["state"], "failed");
  EXPECT_EQ(got["error"], "second");
  ASSERT_EQ(got["attempts"].size(), 2u);
  EXPECT_EQ(got["attempts"][0]["error"], "first");
  EXPECT_EQ(got["attempts"][1]["error"], "second");
  json stats = Stats();
  EXPECT_EQ(stats["counts"]["failed"], 1);
  EXPECT_EQ(stats["dead_letter"], 1);
  EXPECT_EQ(Ok("task.list", {{"queue", "q"}, {"state", "failed"}})["tasks"].size(), 1u);
  EXPECT_EQ(EventTypes("q", id),
            (std::vector<std::string>{"submitted", "claimed", "retrying", "claimed", "failed"}));
  // A stale token after the end is refused.
  EXPECT_TRUE(FailedWith(Complete(t), StatusCode::kNotOwner));
}

TEST_F(TasksRetryTest, RetryFalseFailsAtOnce) {
  const std::string id = Submit({{"max_attempts", 5}});
  json t = ClaimOne("w");
  json r = Fail(t, /*retry=*/false, "fatal").value();
  EXPECT_EQ(r["state"], "failed");
  EXPECT_TRUE(r["next_run_at_ms"].is_null());
  EXPECT_EQ(Get(id)["attempt"], 1);
  std::vector<json> ev = Events("q", id);
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev.back()["type"], "failed");
  EXPECT_EQ(ev.back()["retryable"], false);
}

TEST_F(TasksRetryTest, ManualRetryRequeuesAFailedTask) {
  const std::string id = Submit({{"max_attempts", 1}});
  json t = ClaimOne("w");
  ASSERT_EQ(Fail(t)->at("state"), "failed");
  // Only failed or cancelled tasks can be retried.
  const std::string other = Submit({});
  EXPECT_TRUE(FailedWith(Call("task.retry", {{"task_id", other}}), StatusCode::kInvalidState));
  json r = Ok("task.retry", {{"task_id", id}});
  EXPECT_EQ(r["state"], "ready");
  EXPECT_EQ(Stats()["counts"]["failed"], 0);
  // `other` was submitted later but the retried task became ready after it.
  std::vector<std::string> order = DrainIds("w");
  EXPECT_EQ(order, (std::vector<std::string>{other, id}));
  json got = Get(id);
  EXPECT_EQ(got["state"], "completed");
  EXPECT_EQ(got["attempt"], 1);           // a fresh set of attempts
  EXPECT_EQ(got["attempts"].size(), 2u);  // history kept
  EXPECT_FALSE(got.contains("error"));
}

}  // namespace
}  // namespace shim::engine::taskstest
