#include "storage/key_codec.h"

#include <gtest/gtest.h>

#include <random>
#include <tuple>

#include "tests/support/test_seed.h"

namespace shim::storage {
namespace {

std::string RandomString(std::mt19937_64& rng) {
  // Small alphabet with the bytes that matter to the escaping: 0x00, 0x01,
  // 0xFF, and ordinary ones, so prefixes and collisions are common.
  static const char kAlphabet[] = {'\0', '\x01', '\xFF', 'a', 'b'};
  std::uniform_int_distribution<int> len(0, 6), pick(0, 4);
  std::string s(len(rng), ' ');
  for (char& c : s) c = kAlphabet[pick(rng)];
  return s;
}

int64_t RandomI64(std::mt19937_64& rng) {
  static const int64_t kEdges[] = {INT64_MIN, INT64_MIN + 1, -256,          -1,       0, 1,
                                   255,       256,           INT64_MAX - 1, INT64_MAX};
  if (rng() % 3 == 0) return kEdges[rng() % std::size(kEdges)];
  return static_cast<int64_t>(rng());
}

std::string Encode(const std::tuple<std::string, int64_t, uint64_t, std::string>& t) {
  return KeyEncoder(KeyTag::kKv)
      .Str(std::get<0>(t))
      .I64(std::get<1>(t))
      .U64(std::get<2>(t))
      .Str(std::get<3>(t))
      .key();
}

TEST(KeyCodecTest, EncodedOrderMatchesTupleOrderForRandomValues) {
  SHIM_TEST_SEED_TRACE(seed, 12345);
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 200'000; ++i) {
    auto a = std::make_tuple(RandomString(rng), RandomI64(rng), rng() % 4 == 0 ? rng() : rng() % 3,
                             RandomString(rng));
    auto b = std::make_tuple(RandomString(rng), RandomI64(rng), rng() % 4 == 0 ? rng() : rng() % 3,
                             RandomString(rng));
    if (rng() % 4 == 0) std::get<0>(b) = std::get<0>(a);  // force deeper comparisons
    ASSERT_EQ(a < b, Encode(a) < Encode(b)) << "iteration " << i;
    ASSERT_EQ(a == b, Encode(a) == Encode(b)) << "iteration " << i;
  }
}

TEST(KeyCodecTest, IntegersSortNumerically) {
  SHIM_TEST_SEED_TRACE(seed, 7);
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 100'000; ++i) {
    int64_t a = RandomI64(rng), b = RandomI64(rng);
    std::string ea = KeyEncoder(KeyTag::kMeta).I64(a).key(),
                eb = KeyEncoder(KeyTag::kMeta).I64(b).key();
    ASSERT_EQ(a < b, ea < eb) << a << " vs " << b;
    uint64_t ua = rng(), ub = rng() >> (rng() % 64);
    ASSERT_EQ(ua < ub,
              KeyEncoder(KeyTag::kMeta).U64(ua).key() < KeyEncoder(KeyTag::kMeta).U64(ub).key());
  }
}

TEST(KeyCodecTest, RoundTripsEveryField) {
  SHIM_TEST_SEED_TRACE(seed, 99);
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 10'000; ++i) {
    std::string s1 = RandomString(rng), s2 = RandomString(rng);
    int64_t n = RandomI64(rng);
    uint64_t u = rng();
    std::string key = KeyEncoder(KeyTag::kChannelMessage).Str(s1).I64(n).U64(u).Str(s2).key();
    KeyDecoder d(key);
    KeyTag tag;
    std::string r1, r2;
    int64_t rn;
    uint64_t ru;
    ASSERT_TRUE(d.Tag(&tag) && d.Str(&r1) && d.I64(&rn) && d.U64(&ru) && d.Str(&r2));
    EXPECT_TRUE(d.done());
    EXPECT_EQ(tag, KeyTag::kChannelMessage);
    EXPECT_EQ(r1, s1);
    EXPECT_EQ(rn, n);
    EXPECT_EQ(ru, u);
    EXPECT_EQ(r2, s2);
  }
}

TEST(KeyCodecTest, RejectsTruncatedAndMalformedInput) {
  std::string key = KeyEncoder(KeyTag::kKv).Str("abc").U64(5).key();
  for (size_t cut = 1; cut < key.size(); ++cut) {
    KeyDecoder d(std::string_view(key).substr(0, cut));
    KeyTag tag;
    std::string s;
    uint64_t u;
    EXPECT_FALSE(d.Tag(&tag) && d.Str(&s) && d.U64(&u)) << "cut at " << cut;
  }
  std::string bad = "x";
  bad += '\0';
  bad += 'q';  // 0x00 followed by neither 0x01 nor 0xFF
  KeyDecoder d(bad);
  std::string s;
  EXPECT_FALSE(d.Str(&s));
}

TEST(KeyCodecTest, PrefixSuccessorBoundsEveryExtension) {
  std::string prefix = KeyEncoder(KeyTag::kChannelMessage).Str("chan").key();
  std::string succ = PrefixSuccessor(prefix);
  EXPECT_LT(prefix, succ);
  EXPECT_LT(KeyEncoder(KeyTag::kChannelMessage).Str("chan").U64(UINT64_MAX).key(), succ);
  EXPECT_GT(KeyEncoder(KeyTag::kChannelMessage).Str("chan\x01").key(), prefix);
  EXPECT_EQ(PrefixSuccessor(std::string("\xFF\xFF", 2)), "");
}

}  // namespace
}  // namespace shim::storage
