// TimerQueue: due order, callbacks scheduled by callbacks, and the bound on
// how many run per call (the engine's timer turn).
#include "engine/timer_queue.h"

#include <gtest/gtest.h>

#include <vector>

namespace shim::engine {
namespace {

TEST(TimerQueueTest, RunsDueCallbacksInDueThenScheduleOrder) {
  TimerQueue q;
  std::vector<int> ran;
  q.Schedule(20, [&] { ran.push_back(3); });
  q.Schedule(10, [&] { ran.push_back(1); });
  q.Schedule(10, [&] { ran.push_back(2); });
  q.Schedule(30, [&] { ran.push_back(4); });
  EXPECT_EQ(q.RunDue(25), 3u);
  EXPECT_EQ(ran, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(q.NextDueMs(), std::optional<int64_t>(30));
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
