// ParseJson (engine/json_parse.h): the one parser, its nesting limit and its
// refusal of numbers a double would round.
#include "engine/json_parse.h"

#include <gtest/gtest.h>

#include <string>

namespace shim {
namespace {

using nlohmann::json;

std::string NestedText(size_t depth, char open = '[', char close = ']',
                       const std::string& inside = "") {
  return std::string(depth, open) + inside + std::string(depth, close);
}

TEST(JsonParseTest, ReadsWhatNlohmannReads) {
  for (const std::string text :
       {"1", "-2", "1.5", "\"s\"", "null", "true", "[]", "{}", " {\"a\":[1,{\"b\":null}]} ",
        "18446744073709551615", "-9223372036854775808", "1e300", "\"caf\xc3\xa9\""}) {
    Result<json> r = ParseJson(text);
    ASSERT_TRUE(r.ok()) << text << ": " << r.status().ToString();
    EXPECT_EQ(r.value(), json::parse(text)) << text;
  }
}

TEST(JsonParseTest, NestingUpToTheLimitIsReadPastItRefused) {
  Result<json> at = ParseJson(NestedText(kMaxJsonDepth));
  ASSERT_TRUE(at.ok()) << at.status().ToString();
  Result<json> over = ParseJson(NestedText(kMaxJsonDepth + 1));
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), StatusCode::kTooLarge);
  EXPECT_EQ(over.status().details()["limit"], kMaxJsonDepth);
  EXPECT_NE(over.status().message().find("512"), std::string::npos) << over.status().message();

  // Objects count as arrays do, and mixed.
  std::string objects;
  for (size_t i = 0; i < kMaxJsonDepth; ++i) objects += "{\"a\":";
  objects += "1" + std::string(kMaxJsonDepth, '}');
  EXPECT_TRUE(ParseJson(objects).ok());
  EXPECT_FALSE(ParseJson("[" + objects + "]").ok());

  // The limit is the caller's.
  EXPECT_TRUE(ParseJson(NestedText(kMaxJsonDepth + 1), kMaxShimJsonDepth).ok());
  EXPECT_FALSE(ParseJson(NestedText(3), 2).ok());
  EXPECT_TRUE(ParseJson(NestedText(2), 2).ok());
}

TEST(JsonParseTest, FarPastTheLimitIsRefusedWithoutTrouble) {
  // The issue's line: 75,000 arrays (a crash when the document was dumped).
  Result<json> r = ParseJson(NestedText(100'000));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kTooLarge);
  // Unclosed, too: refused at the limit, not at the end.
  EXPECT_EQ(ParseJson(std::string(100'000, '[')).status().code(), StatusCode::kTooLarge);
}

TEST(JsonParseTest, BracketsInsideStringsAreNotNesting) {
  const std::string brackets(2 * kMaxJsonDepth, '[');
  Result<json> r = ParseJson("{\"s\":\"" + brackets + "]]]{{{\"}");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r.value()["s"], brackets + "]]]{{{");
  // ... nor escaped quotes ending them early.
  EXPECT_TRUE(ParseJson(NestedText(kMaxJsonDepth - 1, '[', ']', "\"\\\"[[[[\"")).ok());
}

TEST(JsonParseTest, IntegersADoubleWouldRoundAreRefused) {
  Result<json> r = ParseJson(R"({"n":123456789012345678901234567890})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidParams);
  EXPECT_NE(r.status().message().find("123456789012345678901234567890"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("string"), std::string::npos) << r.status().message();
  EXPECT_FALSE(ParseJson("18446744073709551616").ok());  // 2^64
  EXPECT_FALSE(ParseJson("-9223372036854775809").ok());  // -2^63 - 1
  // A number beyond a double's range: nlohmann refuses it as not JSON.
  EXPECT_EQ(ParseJson("1e400").status().message().rfind("not valid JSON", 0), 0u);
  // Fractions and exponents are doubles by nature: read.
  EXPECT_TRUE(ParseJson("123456789012345678901234567890.5").ok());
  EXPECT_TRUE(ParseJson("1.2345678901234568e+29").ok());
}

TEST(JsonParseTest, TextThatIsNotJsonSaysSo) {
  for (const std::string text : {"", "nope", "{", "[1,]", "{} {}", "1 x", "\"\xff\""}) {
    Result<json> r = ParseJson(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidParams) << text;
    EXPECT_EQ(r.status().message().rfind("not valid JSON", 0), 0u) << r.status().message();
  }
}

TEST(JsonParseTest, StoredJsonIsDiscardedWhenUnreadable) {
  EXPECT_EQ(ParseStoredJson(R"({"a":1})"), json({{"a", 1}}));
  EXPECT_TRUE(ParseStoredJson("{").is_discarded());
  EXPECT_TRUE(ParseStoredJson(NestedText(kMaxShimJsonDepth + 1)).is_discarded());
  EXPECT_FALSE(ParseStoredJson(NestedText(kMaxShimJsonDepth)).is_discarded());
}

}  // namespace
}  // namespace shim
