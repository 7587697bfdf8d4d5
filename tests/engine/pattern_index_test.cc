// PatternIndex against the linear scan it replaces: for random patterns
// and channels (brackets, escapes, ranges, unterminated sets, high bytes),
// with subscriptions added and removed in between, Match must return exactly
// the ids whose pattern GlobMatch accepts, in id order (what every publish
// did before the index: try GlobMatch against every pattern).
// Randomised: the seed is printed; SHIM_TEST_SEED=<n> replays one.
#include "engine/pattern_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "engine/glob.h"

namespace shim::engine {
namespace {

uint64_t TestSeed() {
  const char* env = std::getenv("SHIM_TEST_SEED");
  const uint64_t seed = env ? std::strtoull(env, nullptr, 10) : std::random_device{}();
  std::cout << "[ seed ] SHIM_TEST_SEED=" << seed << std::endl;
  return seed;
}

// Random text over a small alphabet, so that patterns and channels share
// bytes often, with every metacharacter and a few bytes above 0x7f (char is
// signed here: ranges compare them as negative).
class Gen {
 public:
  explicit Gen(uint64_t seed) : rng_(seed) {}

  std::string Channel() { return Text(Uniform(0, 10), kChannelBytes); }
  std::string Pattern() {
    // Half the time raw bytes (any bracket or escape accident), else tokens
    // that make the anchors interesting: literal words, wildcards, sets.
    if (Uniform(0, 1) == 0) return Text(Uniform(0, 10), kPatternBytes);
    std::string p;
    for (int n = Uniform(1, 5); n > 0; --n) {
      switch (Uniform(0, 6)) {
        case 0:
          p += '*';
          break;
        case 1:
          p += '?';
          break;
        case 2:
          p += "[" + Text(Uniform(0, 3), kChannelBytes) + "]";
          break;
        case 3:
          p += "[^a-" + Text(1, kChannelBytes) + "]";
          break;
        case 4:
          p += "\\" + Text(1, kPatternBytes);
          break;
        default:
          p += Text(Uniform(1, 4), kChannelBytes);
          break;
      }
    }
    return p;
  }
  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

 private:
  static constexpr std::string_view kChannelBytes{"aab.b[c]\\\xe9-a."};
  static constexpr std::string_view kPatternBytes{"ab.*?[]^!-\\\xe9\xff"};
  std::string Text(int length, std::string_view alphabet) {
    std::string s;
    for (int i = 0; i < length; ++i)
      s += alphabet[Uniform(0, static_cast<int>(alphabet.size()) - 1)];
    return s;
  }
  std::mt19937_64 rng_;
};

TEST(PatternIndexTest, MatchEqualsTheLinearScanForRandomPatternsAndChannels) {
  Gen gen(TestSeed());
  PatternIndex index;
  std::map<uint64_t, std::string> live;  // what the index should hold
  uint64_t next_id = 1;
  size_t matched = 0, checks = 0;
  for (int round = 0; round < 400; ++round) {
    for (int i = gen.Uniform(0, 30); i > 0; --i) {
      std::string p = gen.Pattern();
      index.Add(next_id, p);
      live.emplace(next_id++, std::move(p));
    }
    for (int i = gen.Uniform(0, 15); i > 0 && !live.empty(); --i) {
      auto it = live.begin();
      std::advance(it, gen.Uniform(0, static_cast<int>(live.size()) - 1));
      index.Remove(it->first);
      live.erase(it);
    }
    index.Remove(next_id + 1000);  // unknown: no-op
    ASSERT_EQ(index.size(), live.size());
    for (int c = 0; c < 20; ++c) {
      const std::string channel = gen.Channel();
      std::vector<uint64_t> want;
      for (const auto& [id, pattern] : live) {
        if (GlobMatch(pattern, channel)) want.push_back(id);
      }
      std::vector<uint64_t> got = {0};  // Match appends
      index.Match(channel, &got);
      got.erase(got.begin());
      ASSERT_EQ(got, want) << "channel '" << channel << "'";
      matched += want.size();
      ++checks;
    }
  }
  // The generator must actually produce matches, or the test proves little.
  EXPECT_GT(matched, checks) << "too few matches to compare";
}

// GlobMatch and ReadGlobLiterals share one bracket scanner; the index is
// only right if they agree: every channel a pattern matches starts with its
// prefix, ends with its suffix and contains its longest run.
TEST(PatternIndexTest, EveryChannelAGlobMatchesHoldsItsLiterals) {
  Gen gen(TestSeed());
  size_t matched = 0;
  for (int i = 0; i < 200'000; ++i) {
    const std::string pattern = gen.Pattern(), channel = gen.Channel();
    if (!GlobMatch(pattern, channel)) continue;
    ++matched;
    const GlobLiterals lit = ReadGlobLiterals(pattern);
    ASSERT_TRUE(std::string_view(channel).starts_with(lit.prefix) &&
                std::string_view(channel).ends_with(lit.suffix) &&
                channel.find(lit.longest_run) != std::string::npos)
        << "pattern '" << pattern << "' channel '" << channel << "'";
  }
  EXPECT_GT(matched, 1000u) << "too few matches to compare";
}

TEST(PatternIndexTest, LiteralsReadPrefixSuffixAndLongestRun) {
  auto lit = [](std::string_view p) {
    GlobLiterals l = ReadGlobLiterals(p);
    return std::vector<std::string>{l.prefix, l.suffix, l.longest_run};
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(lit("events.q1"), (V{"events.q1", "events.q1", "events.q1"}));
  EXPECT_EQ(lit("events.*"), (V{"events.", "", "events."}));
  EXPECT_EQ(lit("*.errors"), (V{"", ".errors", ".errors"}));
  EXPECT_EQ(lit("a*middle?z"), (V{"a", "z", "middle"}));
  EXPECT_EQ(lit("*"), (V{"", "", ""}));
  EXPECT_EQ(lit("[ab]x[c"), (V{"", "x[c", "x[c"})) << "an unterminated [ is a literal";
  EXPECT_EQ(lit("a\\*b*"), (V{"a*b", "", "a*b"})) << "an escaped * is a literal";
  EXPECT_EQ(lit("x\\"), (V{"x\\", "x\\", "x\\"})) << "a trailing backslash is a literal";
  EXPECT_EQ(lit("[]a]b"), (V{"", "b", "b"})) << "] first in a set is a member";
}

TEST(PatternIndexTest, MatchIsExactForEachKindOfAnchor) {
  PatternIndex index;
  index.Add(1, "agents/a1/*");      // prefix
  index.Add(2, "*.a2");             // suffix
  index.Add(3, "*a3x*");            // infix
  index.Add(4, "team4?");           // prefix
  index.Add(5, "t*longer-suffix");  // suffix, longer than the prefix
  index.Add(6, "*");                // no literal: tried everywhere
  auto match = [&](std::string_view channel) {
    std::vector<uint64_t> got;
    index.Match(channel, &got);
    return got;
  };
  using Ids = std::vector<uint64_t>;
  EXPECT_EQ(match("agents/a1/x"), (Ids{1, 6}));
  EXPECT_EQ(match("x.a2"), (Ids{2, 6}));
  EXPECT_EQ(match("qa3xqa3x"), (Ids{3, 6})) << "an infix found twice yields its patterns once";
  EXPECT_EQ(match("team4x"), (Ids{4, 6}));
  EXPECT_EQ(match("t-longer-suffix"), (Ids{5, 6}));
  index.Remove(6);
  index.Remove(5);
  EXPECT_TRUE(match("t-longer-suffix").empty());
  EXPECT_EQ(index.size(), 4u);
}

// The point of the index: a publish tries only the patterns whose anchor the
// channel holds. 40,000 patterns of the four kinds, none of which can match:
// a match tries none of them, and one that shares an anchor tries only its
// bucket.
TEST(PatternIndexTest, MatchTriesOnlyPatternsWhoseAnchorTheChannelHolds) {
  PatternIndex index;
  for (int i = 0; i < 40'000; ++i) {
    const std::string n = std::to_string(i);
    switch (i % 4) {
      case 0:
        index.Add(i + 1, "agents/a" + n + "/*");
        break;
      case 1:
        index.Add(i + 1, "*.a" + n);
        break;
      case 2:
        index.Add(i + 1, "*a" + n + "x*");
        break;
      default:
        index.Add(i + 1, "team" + n + "?");
        break;
    }
  }
  std::vector<uint64_t> got;
  uint64_t before = index.patterns_tried();
  index.Match("team/events", &got);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(index.patterns_tried() - before, 0u);

  before = index.patterns_tried();
  index.Match("agents/a8/status", &got);  // prefix agents/a8/ (i = 8)
  EXPECT_EQ(got, (std::vector<uint64_t>{9}));
  EXPECT_EQ(index.patterns_tried() - before, 1u);

  // Many patterns under one anchor are all tried, and only they.
  for (int i = 0; i < 100; ++i) index.Add(100'000 + i, "shared*" + std::to_string(i));
  before = index.patterns_tried();
  got.clear();
  index.Match("shared/7", &got);
  EXPECT_EQ(got, (std::vector<uint64_t>{100'007}));
  EXPECT_EQ(index.patterns_tried() - before, 100u);
}

}  // namespace
}  // namespace shim::engine
