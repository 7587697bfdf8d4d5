// TimerQueue: due order, cancellation, that cancelled timers do not pile
// up, and the bound on how many run per call (the engine's timer turn).
#include "engine/timer_queue.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace shim::engine {
namespace {

TEST(TimerQueueTest, RunsDueCallbacksInDueThenScheduleOrder) {
  TimerQueue q;
  std::string ran;
  q.Schedule(20, [&] { ran += "c"; });
  q.Schedule(10, [&] { ran += "a"; });
  q.Schedule(10, [&] { ran += "b"; });
  EXPECT_EQ(q.NextDueMs(), 10);
  EXPECT_EQ(q.RunDue(15), 2u);
  EXPECT_EQ(ran, "ab");
  EXPECT_EQ(q.RunDue(20), 1u);
  EXPECT_EQ(ran, "abc");
  EXPECT_FALSE(q.NextDueMs().has_value());
}

TEST(TimerQueueTest, CancelledCallbackNeverRunsAndNextDueSkipsIt) {
  TimerQueue q;
  std::string ran;
  const auto a = q.Schedule(10, [&] { ran += "a"; });
  q.Schedule(30, [&] { ran += "b"; });
  q.Cancel(a);
  EXPECT_EQ(q.NextDueMs(), 30) << "no wake-up for a cancelled timer";
  EXPECT_EQ(q.RunDue(100), 1u);
  EXPECT_EQ(ran, "b");
  q.Cancel(a);  // again, after it would have run: harmless
  EXPECT_EQ(q.size(), 0u);
}

TEST(TimerQueueTest, CallbackMayCancelALaterTimer) {
  TimerQueue q;
  std::string ran;
  TimerQueue::TimerId later = 0;
  q.Schedule(10, [&] {
    ran += "a";
    q.Cancel(later);
  });
  later = q.Schedule(10, [&] { ran += "b"; });
  EXPECT_EQ(q.RunDue(10), 1u);
  EXPECT_EQ(ran, "a");
}

TEST(TimerQueueTest, CancelledTimersDoNotOutnumberLiveOnes) {
  TimerQueue q;
  std::vector<TimerQueue::TimerId> ids;
  q.Schedule(1, [] {});  // due first: cancellations below are not at the top
  for (int i = 0; i < 10'000; ++i) ids.push_back(q.Schedule(1'000'000 + i, [] {}));
  for (auto id : ids) q.Cancel(id);
  EXPECT_LE(q.size(), 1u + 64u) << "cancelled entries must be dropped, not kept until due";
  int ran = 0;
  q.Schedule(5, [&] { ++ran; });
  EXPECT_EQ(q.RunDue(2'000'000), 2u);
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(q.size(), 0u);
}

TEST(TimerQueueTest, CallbacksScheduledWhileRunningRunIfDue) {
  TimerQueue q;
  int ran = 0;
  q.Schedule(5, [&] {
    ++ran;
    q.Schedule(5, [&] { ++ran; });
  });
  EXPECT_EQ(q.RunDue(5), 2u);
  EXPECT_EQ(ran, 2);
}

TEST(TimerQueueTest, AtMostMaxRunPerCallAndTheRestStaysDue) {
  TimerQueue q;
  int ran = 0;
  for (int i = 0; i < 10'000; ++i) q.Schedule(7, [&] { ++ran; });
  EXPECT_EQ(q.RunDue(7, 4096), 4096u);
  EXPECT_EQ(ran, 4096);
  EXPECT_EQ(q.NextDueMs(), std::optional<int64_t>(7));
  EXPECT_EQ(q.RunDue(7, 4096), 4096u);
  EXPECT_EQ(q.RunDue(7, 4096), 10'000u - 2 * 4096);
  EXPECT_EQ(ran, 10'000);
  EXPECT_EQ(q.size(), 0u);
}

}  // namespace
}  // namespace shim::engine
