// base/json_text.h: DumpCompact / AppendCompact write what the library's
// compact dump (invalid UTF-8 replaced) writes, byte for byte, including on
// the fast path for plain strings. Stored values are spliced into replies on
// the strength of that equality.
#include "base/json_text.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "tests/support/test_seed.h"

namespace shim {
namespace {

using nlohmann::json;

std::string LibraryDump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

TEST(JsonTextTest, PlainTextIsPrintableAsciiWithoutQuoteOrBackslash) {
  EXPECT_TRUE(IsPlainJsonText(""));
  EXPECT_TRUE(IsPlainJsonText("bench/123 ~ !#$%&'()*+,-./:;<=>?@[]^_`{|}"));
  for (int c = 0; c < 256; ++c) {
    const bool plain = c >= 0x20 && c <= 0x7E && c != '"' && c != '\\';
    EXPECT_EQ(IsPlainJsonText(std::string(1, static_cast<char>(c))), plain) << "byte " << c;
    EXPECT_EQ(IsPlainJsonText("ab" + std::string(1, static_cast<char>(c)) + "cd"), plain)
        << "byte " << c;
  }
}

TEST(JsonTextTest, EveryOneByteStringDumpsAsTheLibraryDoes) {
  for (int c = 0; c < 256; ++c) {
    const json j = std::string(1, static_cast<char>(c));
    EXPECT_EQ(DumpCompact(j), LibraryDump(j)) << "byte " << c;
  }
}

// Random strings drawn from bytes that sit on both sides of the fast path's
// edges (controls, quote, backslash, DEL, UTF-8 lead and continuation bytes,
// invalid bytes), and from plain ASCII only.
TEST(JsonTextTest, RandomStringsDumpAsTheLibraryDoes) {
  const std::string edges = std::string("\x00\x01\x1f\x20\x21\x22\x5c\x7e\x7f", 9) +
                            "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xff\xfe\x80" + "az09/_";
  SHIM_TEST_SEED_TRACE(seed, 7);
  std::mt19937 rng(seed);
  for (int i = 0; i < 5000; ++i) {
    const bool plain_only = i % 2 == 0;
    std::string s(rng() % 40, ' ');
    for (char& c : s)
      c = plain_only ? static_cast<char>(0x20 + rng() % 0x5F) : edges[rng() % edges.size()];
    const json j = s;
    ASSERT_EQ(DumpCompact(j), LibraryDump(j))
        << json(json::binary_t(std::vector<uint8_t>(s.begin(), s.end())));
    std::string appended = "prefix:";
    AppendCompact(appended, j);
    ASSERT_EQ(appended, "prefix:" + LibraryDump(j));
  }
}

TEST(JsonTextTest, OtherValuesDumpAsTheLibraryDoes) {
  for (const json& j :
       {json(nullptr), json(true), json(-12), json(18446744073709551615ull), json(0.1),
        json::array({"a", 1, json::object()}), json{{"k\"ey", "v\\al"}, {"n", {1, 2}}},
        json("caf\xc3\xa9"), json("bad \xff byte")}) {
    EXPECT_EQ(DumpCompact(j), LibraryDump(j));
  }
}

// DumpWithMember splices a member whose value is already text into an
// object's dump: the result is the library's dump of the object with that
// member set, wherever the key sorts, and replacing a member of that name.
TEST(JsonTextTest, DumpWithMemberIsTheDumpOfTheObjectWithTheMemberSet) {
  const std::vector<json> objects = {
      json::object(),
      {{"ok", true}},
      {{"a", 1}},
      {{"z", 1}},
      {{"next_run_at_ms", nullptr}, {"state", "delayed"}},
      {{"task_id", 3}, {"tasks_x", 2}, {"ta", 1}, {"u", "caf\xc3\xa9"}},
      {{"tasks", "replaced"}, {"z", {1, 2}}},
      {{"caf\xc3\xa9 \"key\"", {{"nested", json::array()}}}, {"b", "\xff"}}};
  const std::string value = R"([{"attempt":1,"payload":{"x":"y"}},2])";
  for (const json& object : objects) {
    json expected = object;
    expected["tasks"] = json::parse(value);
    EXPECT_EQ(DumpWithMember(object, "tasks", value), LibraryDump(expected)) << object.dump();
  }
}

// AppendJsonString and AppendKey, which the text builders (claim records,
// state.get results) use: the library's spelling, appended.
TEST(JsonTextTest, AppendJsonStringAndAppendKeyWriteWhatTheLibraryWould) {
  for (const std::string& s :
       {std::string(""), std::string("plain"), std::string("q\"uote"), std::string("back\\slash"),
        std::string("caf\xc3\xa9"), std::string("\x01\n"), std::string("\xff bad"),
        std::string("nul\0in", 6)}) {
    std::string out = "[";
    AppendJsonString(out, s);
    EXPECT_EQ(out, "[" + LibraryDump(json(s)))
        << json(json::binary_t(std::vector<uint8_t>(s.begin(), s.end())));
  }
  std::string out = "{";
  AppendKey(out, "task_id");
  AppendJsonString(out, "t1");
  out += '}';
  EXPECT_EQ(out, LibraryDump(json{{"task_id", "t1"}}));
}

}  // namespace
}  // namespace shim
