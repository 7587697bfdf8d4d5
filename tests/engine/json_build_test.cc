// engine/json_build.h: JSON Patch, merge patch and the aggregate merge and
// concatenation follow their rules, and stay within their limits while
// they build (not after).
#include "engine/json_build.h"

#include <gtest/gtest.h>

#include <string>

#include "base/json_text.h"

namespace shim {
namespace {

using nlohmann::json;

json NestedValue(size_t depth) {
  json v = json::array();
  for (size_t i = 1; i < depth; ++i) v = json::array({std::move(v)});
  return v;
}

TEST(JsonBuildTest, WeightIsTheCompactTextForWhatItCounts) {
  for (const json& v : {json(nullptr), json(true), json(false), json(0), json(-7),
                        json(1234567890123ull), json(INT64_MIN), json("text"), json::array(),
                        json::object(), json::array({1, "a", nullptr}),
                        json({{"a", {{"b", json::array({1, 2, json::object()})}}}, {"c", "d"}})}) {
    EXPECT_EQ(WeighJson(v).bytes, DumpCompact(v).size()) << v.dump();
  }
  EXPECT_LE(WeighJson(json(1.5)).bytes, DumpCompact(json(1.5)).size());
  EXPECT_LE(WeighJson(json("q\"\n")).bytes, DumpCompact(json("q\"\n")).size());
  EXPECT_EQ(WeighJson(json(1)).depth, 0u);
  EXPECT_EQ(WeighJson(json::array()).depth, 1u);
  EXPECT_EQ(WeighJson(NestedValue(600)).depth, 600u);
  // It stops once over a bound.
  EXPECT_GT(WeighJson(NestedValue(600), SIZE_MAX, 10).depth, 10u);
  EXPECT_LT(WeighJson(NestedValue(600), SIZE_MAX, 10).bytes, 100u);
}

TEST(JsonBuildTest, JsonPatchFollowsRfc6902) {
  json doc = {{"a", 1}, {"list", {1, 2}}, {"o", {{"x", "y"}}}};
  json ops = json::array({{{"op", "test"}, {"path", "/a"}, {"value", 1}},
                          {{"op", "replace"}, {"path", "/a"}, {"value", 2}},
                          {{"op", "add"}, {"path", "/list/-"}, {"value", 3}},
                          {{"op", "add"}, {"path", "/list/0"}, {"value", 0}},
                          {{"op", "remove"}, {"path", "/list/1"}},
                          {{"op", "copy"}, {"from", "/o"}, {"path", "/p"}},
                          {{"op", "move"}, {"from", "/o/x"}, {"path", "/o/z"}},
                          {{"op", "add"}, {"path", "/a~1b~0c"}, {"value", true}}});
  ASSERT_TRUE(ApplyJsonPatch(doc, ops, {}).ok());
  EXPECT_EQ(doc, json({{"a", 2},
                       {"list", {0, 2, 3}},
                       {"o", {{"z", "y"}}},
                       {"p", {{"x", "y"}}},
                       {"a/b~c", true}}));

  json whole = {{"a", 1}};
  ASSERT_TRUE(
      ApplyJsonPatch(whole, json::array({{{"op", "replace"}, {"path", ""}, {"value", {1, 2}}}}), {})
          .ok());
  EXPECT_EQ(whole, json({1, 2}));
  // A null value is made an object by an add under it (as before).
  json null_doc = nullptr;
  ASSERT_TRUE(
      ApplyJsonPatch(null_doc, json::array({{{"op", "add"}, {"path", "/k"}, {"value", 1}}}), {})
          .ok());
  EXPECT_EQ(null_doc, json({{"k", 1}}));
}

TEST(JsonBuildTest, JsonPatchErrorsNameTheOp) {
  const json doc = {{"a", 1}, {"list", {1}}};
  for (const json& op :
       {json{{"op", "remove"}, {"path", "/nope"}},
        json{{"op", "test"}, {"path", "/a"}, {"value", 2}},
        json{{"op", "add"}, {"path", "/x/y"}, {"value", 1}},
        json{{"op", "add"}, {"path", "/list/5"}, {"value", 1}},
        json{{"op", "add"}, {"path", "/list/01"}, {"value", 1}},
        json{{"op", "add"}, {"path", "a"}, {"value", 1}},
        json{{"op", "add"}, {"path", "/~2"}, {"value", 1}}, json{{"op", "nope"}, {"path", "/a"}},
        json{{"op", "add"}, {"path", "/a"}}, json{{"op", "copy"}, {"path", "/b"}},
        json{{"op", "move"}, {"from", "/list"}, {"path", "/list/0"}}, json{{"path", "/a"}},
        json{{"op", "remove"}, {"path", ""}}, json(7)}) {
    json d = doc;
    Status s =
        ApplyJsonPatch(d, json::array({{{"op", "test"}, {"path", "/a"}, {"value", 1}}, op}), {});
    ASSERT_FALSE(s.ok()) << op.dump();
    EXPECT_EQ(s.code(), StatusCode::kInvalidParams) << op.dump();
    EXPECT_EQ(s.details()["field"], "ops");
    EXPECT_EQ(s.message().rfind("ops[1]: ", 0), 0u) << s.message();
  }
  json d = doc;
  EXPECT_EQ(ApplyJsonPatch(d, json::object(), {}).code(), StatusCode::kInvalidParams);
}

// The request: 21 copies of a value into itself double it 21 times
// (1 KB to 2 GB). Refused at the limit, having built at most about it.
TEST(JsonBuildTest, SelfCopiesAreRefusedBeforeTheyGrowPastTheLimit) {
  json doc = {{"a", json::array({std::string(1000, 'x')})}};
  json ops = json::array();
  for (int i = 0; i < 21; ++i) ops.push_back({{"op", "copy"}, {"from", "/a"}, {"path", "/a/-"}});
  const size_t limit = 1 << 20;
  Status s = ApplyJsonPatch(doc, ops, {.max_bytes = limit});
  ASSERT_EQ(s.code(), StatusCode::kTooLarge) << s.ToString();
  EXPECT_EQ(s.details()["limit"], limit);
  EXPECT_LE(DumpCompact(doc).size(), limit);
}

TEST(JsonBuildTest, PatchWorkIsBounded) {
  // Copy and remove a large part over and over: the value stays small, the
  // work does not.
  json doc = {{"big", std::string(100'000, 'x')}};
  json ops = json::array();
  for (int i = 0; i < 1000; ++i) {
    ops.push_back({{"op", "copy"}, {"from", "/big"}, {"path", "/tmp"}});
    ops.push_back({{"op", "remove"}, {"path", "/tmp"}});
  }
  json d = doc;
  Status s = ApplyJsonPatch(d, ops, {.max_bytes = 1 << 20, .max_work = 16 << 20});
  ASSERT_EQ(s.code(), StatusCode::kTooLarge) << s.ToString();
  EXPECT_EQ(s.details()["limit"], 16 << 20);
  // Shifting a long array element by element counts too.
  json list = {{"l", json::array()}};
  for (int i = 0; i < 100'000; ++i) list["l"].push_back(0);
  json shifts = json::array();
  for (int i = 0; i < 1000; ++i) shifts.push_back({{"op", "add"}, {"path", "/l/0"}, {"value", 1}});
  EXPECT_EQ(ApplyJsonPatch(list, shifts, {.max_work = 1 << 20}).code(), StatusCode::kTooLarge);
  // A few ordinary ops are nowhere near it.
  d = doc;
  EXPECT_TRUE(ApplyJsonPatch(d, json::array({ops[0], ops[1], ops[0]}),
                             {.max_bytes = 1 << 20, .max_work = 16 << 20})
                  .ok());
}

TEST(JsonBuildTest, PatchesStayWithinTheDepth) {
  // Each value is within the limit; placed under another it would not be.
  json doc = {{"deep", NestedValue(kMaxJsonDepth - 1)}};
  json copy = json::array({{{"op", "copy"}, {"from", "/deep"}, {"path", "/deep/0/x"}}});
  json d = doc;
  Status s = ApplyJsonPatch(
      d, json::array({{{"op", "add"}, {"path", "/deep/0"}, {"value", json::object()}}}), {});
  ASSERT_TRUE(s.ok()) << s.ToString();
  s = ApplyJsonPatch(d, json::array({{{"op", "copy"}, {"from", "/deep"}, {"path", "/deep/0/x"}}}),
                     {});
  EXPECT_EQ(s.code(), StatusCode::kTooLarge);
  EXPECT_EQ(s.details()["limit"], kMaxJsonDepth);
  d = doc;
  EXPECT_EQ(
      ApplyJsonPatch(
          d, json::array({{{"op", "add"}, {"path", "/x"}, {"value", NestedValue(kMaxJsonDepth)}}}),
          {})
          .code(),
      StatusCode::kTooLarge);
  d = doc;
  EXPECT_TRUE(
      ApplyJsonPatch(
          d,
          json::array({{{"op", "add"}, {"path", "/x"}, {"value", NestedValue(kMaxJsonDepth - 1)}}}),
          {})
          .ok());
  d = doc;
  EXPECT_EQ(ApplyMergePatch(d, {{"x", {{"y", NestedValue(kMaxJsonDepth - 1)}}}}, {}).code(),
            StatusCode::kTooLarge);
  d = doc;
  EXPECT_TRUE(ApplyMergePatch(d, {{"x", NestedValue(kMaxJsonDepth - 1)}}, {}).ok());
}

TEST(JsonBuildTest, MergePatchFollowsRfc7396) {
  json doc = {{"a", 1}, {"b", {{"c", 2}, {"d", 3}}}, {"list", {1, 2}}, {"s", "x"}};
  json patch = {{"a", nullptr},
                {"b", {{"c", 20}}},
                {"list", {9, nullptr}},
                {"s", {{"t", nullptr}, {"u", 1}}},
                {"e", {{"f", nullptr}}}};
  ASSERT_TRUE(ApplyMergePatch(doc, patch, {}).ok());
  json want = {{"b", {{"c", 20}, {"d", 3}}},
               {"list", {9, nullptr}},
               {"s", {{"u", 1}}},
               {"e", json::object()}};
  EXPECT_EQ(doc, want);
  json copy_of_nlohmann = {{"a", 1}, {"b", {{"c", 2}, {"d", 3}}}, {"list", {1, 2}}, {"s", "x"}};
  copy_of_nlohmann.merge_patch(patch);
  EXPECT_EQ(doc, copy_of_nlohmann);
  json scalar = {{"a", 1}};
  ASSERT_TRUE(ApplyMergePatch(scalar, 5, {}).ok());
  EXPECT_EQ(scalar, 5);
  // Over the limit: refused.
  json small = json::object();
  EXPECT_EQ(ApplyMergePatch(small, {{"k", std::string(2000, 'x')}}, {.max_bytes = 1000}).code(),
            StatusCode::kTooLarge);
}

TEST(JsonBuildTest, DeepMergeKeepsNullsAndReplacesNonObjects) {
  const json a = {{"x", 1}, {"o", {{"p", 1}, {"q", 1}}}, {"n", 1}};
  const json b = {{"o", {{"q", 2}, {"r", nullptr}}}, {"n", nullptr}, {"l", {1}}};
  const json c = {{"l", {2}}};
  Result<json> merged = DeepMergeJson({&a, &b, &c}, {});
  ASSERT_TRUE(merged.ok());
  EXPECT_EQ(
      merged.value(),
      json({{"x", 1}, {"o", {{"p", 1}, {"q", 2}, {"r", nullptr}}}, {"n", nullptr}, {"l", {2}}}));
  const json scalar = 7;
  EXPECT_EQ(DeepMergeJson({&a, &scalar}, {}).value(), 7);
  EXPECT_EQ(DeepMergeJson({}, {}).value(), json::object());
}

TEST(JsonBuildTest, AggregatesStayWithinTheirLimits) {
  const json big = {{"k", std::string(600, 'x')}};
  const json other = {{"j", std::string(600, 'x')}};
  EXPECT_TRUE(DeepMergeJson({&big, &big, &big}, {.max_bytes = 1000}).ok())
      << "the same key, merged, stays small";
  EXPECT_EQ(DeepMergeJson({&big, &other}, {.max_bytes = 1000}).status().code(),
            StatusCode::kTooLarge);
  EXPECT_EQ(ConcatenateJson({&big, &big}, {.max_bytes = 1000}).status().code(),
            StatusCode::kTooLarge);
  Result<json> both = ConcatenateJson({&big, &other}, {.max_bytes = 2000});
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both.value(), json::array({big, other}));
  // Depth: the array adds a level.
  const json deep = NestedValue(kMaxJsonDepth);
  EXPECT_EQ(ConcatenateJson({&deep}, {}).status().code(), StatusCode::kTooLarge);
  EXPECT_TRUE(DeepMergeJson({&deep}, {}).ok());
}

// The aggregate: children returning 50,000-deep objects overflowed
// the stack of the recursive merge. The walk is iterative now (seen here
// with the limit lifted: two 50,000-deep objects merge down to their
// leaves, copying nothing deep, which would recurse), and such values are
// refused at the limit before anything is copied.
TEST(JsonBuildTest, MergingDoesNotRecurse) {
  json a = json::object(), b = json::object();
  json* pa = &a;
  json* pb = &b;
  for (int i = 0; i < 50'000; ++i) {
    pa = &((*pa)["k"] = json::object());
    pb = &((*pb)["k"] = json::object());
  }
  (*pb)["end"] = 1;
  Status s = ApplyMergePatch(a, b, {.max_depth = 100'000});
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(DeepMergeJson({&a, &b}, {}).status().code(), StatusCode::kTooLarge);
  EXPECT_EQ(ConcatenateJson({&a}, {}).status().code(), StatusCode::kTooLarge);
}

}  // namespace
}  // namespace shim
