// PayloadCache: what it holds before and after a commit, against its budget.
#include "engine/tasks/payload_cache.h"

#include <gtest/gtest.h>

#include <string>

namespace shim::engine {
namespace {

// An entry costs its text's capacity plus 64; texts of 1000 bytes make
// each entry cost a little over 1 KB.
const std::string kText(1000, 'p');

TEST(PayloadCacheTest, UncommittedPayloadsAreHeldWhateverTheBudget) {
  PayloadCache cache(/*budget_bytes=*/0);
  cache.HoldUncommitted(1, kText);
  cache.HoldUncommitted(2, kText);
  ASSERT_NE(cache.Find(1), nullptr);
  EXPECT_EQ(*cache.Find(1), kText);
  EXPECT_NE(cache.Find(2), nullptr);
  EXPECT_EQ(cache.entries(), 2u);
  // Committed, they do not fit a zero budget: the store serves them now.
  cache.Committed(1);
  cache.Committed(2);
  EXPECT_EQ(cache.Find(1), nullptr);
  EXPECT_EQ(cache.Find(2), nullptr);
  EXPECT_EQ(cache.bytes(), 0u);
}

TEST(PayloadCacheTest, PastTheBudgetTheOlderCommittedPayloadsStay) {
  PayloadCache cache(/*budget_bytes=*/3 * 1100);  // room for three entries
  for (uint64_t seq = 1; seq <= 5; ++seq) cache.HoldUncommitted(seq, kText);
  for (uint64_t seq = 1; seq <= 5; ++seq) cache.Committed(seq);
  for (uint64_t seq = 1; seq <= 3; ++seq) EXPECT_NE(cache.Find(seq), nullptr) << seq;
  EXPECT_EQ(cache.Find(4), nullptr);
  EXPECT_EQ(cache.Find(5), nullptr);
  EXPECT_EQ(cache.entries(), 3u);
}

TEST(PayloadCacheTest, DroppingACommittedPayloadMakesRoomForTheNext) {
  PayloadCache cache(/*budget_bytes=*/1100);  // room for one
  cache.HoldUncommitted(1, kText);
  cache.Committed(1);
  cache.HoldUncommitted(2, kText);
  cache.Committed(2);
  EXPECT_NE(cache.Find(1), nullptr);
  EXPECT_EQ(cache.Find(2), nullptr);  // no room
  cache.Drop(1);                      // task 1 was claimed
  EXPECT_EQ(cache.Find(1), nullptr);
  EXPECT_EQ(cache.bytes(), 0u);
  cache.HoldUncommitted(3, kText);
  cache.Committed(3);
  EXPECT_NE(cache.Find(3), nullptr);
}

TEST(PayloadCacheTest, DroppingAnUncommittedPayloadKeepsItUntilItsCommit) {
  PayloadCache cache(/*budget_bytes=*/1 << 20);
  cache.HoldUncommitted(7, kText);
  cache.Drop(7);  // claimed in the group that submitted it
  ASSERT_NE(cache.Find(7), nullptr) << "the store cannot serve it before the commit";
  cache.Committed(7);
  EXPECT_EQ(cache.Find(7), nullptr);
  EXPECT_EQ(cache.bytes(), 0u);
}

TEST(PayloadCacheTest, HoldingASeqAgainReplacesItAndClearEmptiesAll) {
  PayloadCache cache(/*budget_bytes=*/1 << 20);
  cache.HoldUncommitted(1, "old");
  const size_t one_entry = cache.bytes();
  EXPECT_GT(one_entry, 0u);
  cache.HoldUncommitted(1, "new");
  ASSERT_NE(cache.Find(1), nullptr);
  EXPECT_EQ(*cache.Find(1), "new");
  EXPECT_EQ(cache.entries(), 1u);
  EXPECT_EQ(cache.bytes(), one_entry);
  cache.Committed(1);
  cache.Clear();
  EXPECT_EQ(cache.Find(1), nullptr);
  EXPECT_EQ(cache.bytes(), 0u);
  EXPECT_EQ(cache.entries(), 0u);
}

// A committed entry held again (its seq rewritten) gives its budget back:
// with room for one, the replacement is kept after its own commit.
TEST(PayloadCacheTest, ACommittedEntryHeldAgainGivesItsBudgetBack) {
  PayloadCache cache(/*budget_bytes=*/1100);
  cache.HoldUncommitted(1, kText);
  cache.Committed(1);
  ASSERT_NE(cache.Find(1), nullptr);
  cache.HoldUncommitted(1, kText + "x");
  cache.Committed(1);
  ASSERT_NE(cache.Find(1), nullptr);
  EXPECT_EQ(cache.Find(1)->size(), kText.size() + 1);
  EXPECT_EQ(cache.entries(), 1u);
}

// Slack capacity is not paid for: a 1000-byte text in a 4000-byte buffer
// costs what a 1000-byte text costs.
TEST(PayloadCacheTest, ATextsSlackCapacityDoesNotCount) {
  PayloadCache tight(1 << 20), slack(1 << 20);
  tight.HoldUncommitted(1, kText);
  std::string padded = kText;
  padded.reserve(4000);
  slack.HoldUncommitted(1, std::move(padded));
  EXPECT_LT(slack.bytes(), tight.bytes() + 100);
}

}  // namespace
}  // namespace shim::engine
