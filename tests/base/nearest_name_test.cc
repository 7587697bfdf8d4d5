#include "base/nearest_name.h"

#include <gtest/gtest.h>

namespace shim {
namespace {

TEST(NearestNameTest, EditDistanceCountsEachEditOnce) {
  EXPECT_EQ(EditDistance("state", "state"), 0u);
  EXPECT_EQ(EditDistance("stat", "state"), 1u);    // insertion
  EXPECT_EQ(EditDistance("statex", "state"), 1u);  // deletion
  EXPECT_EQ(EditDistance("stabe", "state"), 1u);   // substitution
  EXPECT_EQ(EditDistance("sttae", "state"), 1u);   // neighbours swapped
  EXPECT_EQ(EditDistance("", "abc"), 3u);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
}

TEST(NearestNameTest, SuggestsTheClosestNearEnoughName) {
  const std::vector<std::string> commands = {"serve", "state", "pub", "tail", "task", "queues"};
  EXPECT_EQ(NearestName("stat", commands), "state");
  EXPECT_EQ(NearestName("tial", commands), "tail");
  EXPECT_EQ(NearestName("queue", commands), "queues");
  EXPECT_EQ(NearestName("ttl", std::vector<std::string>{"ttl_ms", "key"}), "ttl_ms");  // prefix
  EXPECT_EQ(NearestName("ttl_m", std::vector<std::string>{"ttl_ms", "key"}), "ttl_ms");
}

TEST(NearestNameTest, FarOffNamesSuggestNothing) {
  const std::vector<std::string> commands = {"serve", "state", "pub"};
  EXPECT_EQ(NearestName("xyzzy", commands), std::nullopt);
  EXPECT_EQ(NearestName("ab", std::vector<std::string>{"xy"}), std::nullopt);
}

TEST(NearestNameTest, AUniquePrefixNamesItsCommand) {
  const std::vector<std::string> commands = {"serve", "state", "stop", "queues"};
  EXPECT_EQ(NearestName("que", commands), "queues");
  EXPECT_EQ(NearestName("st", commands), std::nullopt);  // state or stop
}

}  // namespace
}  // namespace shim
