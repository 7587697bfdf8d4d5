// The general path's reading of a request line (ReadRequestLine +
// ParseRequest) and the envelope encoders: ids exact, nesting bounded the
// same way as on the fast path, errors encoded as their documents would be.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/json_parse.h"
#include "net/jsonrpc.h"
#include "net/simple_request.h"

namespace shim::net {
namespace {

using nlohmann::json;

Request Read(std::string_view line) {
  RequestLine read = ReadRequestLine(line);
  EXPECT_TRUE(read.status.ok()) << line << ": " << read.status.ToString();
  std::string error;
  Result<Request> req = ParseRequest(std::move(read.message), read.id_texts.at(0), &error);
  EXPECT_TRUE(req.ok()) << line << ": " << error;
  return req.ok() ? std::move(req).value() : Request{};
}

std::string Arrays(size_t levels) { return std::string(levels, '[') + std::string(levels, ']'); }

TEST(RequestLineTest, NumberIdsAreKeptExactly) {
  for (const std::string id : {"123456789012345678901234567890", "-98765432109876543210987654321",
                               "0.1000000000000000000000000001", "1.5", "1e300", "2E-3"}) {
    const Request req = Read(R"({"jsonrpc":"2.0","id":)" + id + R"(,"method":"m"})");
    EXPECT_TRUE(req.has_id);
    EXPECT_EQ(req.id.text(), id);
    EXPECT_EQ(EncodeResultLine(req.id, json(1)), R"({"id":)" + id +
                                                     R"(,"jsonrpc":"2.0","result":1})"
                                                     "\n");
    EXPECT_EQ(IdFromLine(R"({"jsonrpc":"2.0","id":)" + id + R"(,"method":"m")").text(), id)
        << "an unfinished line";
  }
  // Integers within 64 bits and strings: their canonical text.
  EXPECT_EQ(Read(R"({"jsonrpc":"2.0","id":18446744073709551615,"method":"m"})").id.text(),
            "18446744073709551615");
  EXPECT_EQ(Read(R"({"jsonrpc":"2.0","id":"a\u0062","method":"m"})").id.text(), "\"ab\"");
  EXPECT_EQ(Read(R"({"jsonrpc":"2.0","id":null,"method":"m"})").id.text(), "null");
  // Of duplicate ids the last counts, as in the document.
  EXPECT_EQ(Read(R"({"jsonrpc":"2.0","id":1.25,"id":"s","method":"m"})").id.text(), "\"s\"");
  EXPECT_EQ(Read(R"({"jsonrpc":"2.0","id":"s","id":1.25,"method":"m"})").id.text(), "1.25");
  // An "id" inside params is not the request's.
  EXPECT_EQ(Read(R"({"jsonrpc":"2.0","params":{"id":1.5},"method":"m"})").has_id, false);
}

TEST(RequestLineTest, EachBatchMemberKeepsItsOwnId) {
  RequestLine read = ReadRequestLine(
      R"([{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"a"},7,{"jsonrpc":"2.0","id":2,"method":"b"},)"
      R"({"jsonrpc":"2.0","method":"c","id":0.30000000000000000001,"params":{"id":9.5}}])");
  ASSERT_TRUE(read.status.ok()) << read.status.ToString();
  ASSERT_EQ(read.id_texts.size(), 4u);
  EXPECT_EQ(read.id_texts[0], "123456789012345678901234567890");
  EXPECT_EQ(read.id_texts[1], "");
  EXPECT_EQ(read.id_texts[2], "");
  EXPECT_EQ(read.id_texts[3], "0.30000000000000000001");
  std::string error;
  Result<Request> last = ParseRequest(std::move(read.message[3]), read.id_texts[3], &error);
  ASSERT_TRUE(last.ok()) << error;
  EXPECT_EQ(last.value().id.text(), "0.30000000000000000001");
}

TEST(RequestLineTest, NestingIsBoundedAlikeOnBothPaths) {
  // Two levels of envelope: {"params":{"v": ...}}.
  auto line = [](size_t depth) {
    return R"({"jsonrpc":"2.0","id":1,"method":"m","params":{"v":)" + Arrays(depth - 2) + "}}";
  };
  EXPECT_TRUE(ReadRequestLine(line(kMaxJsonDepth)).status.ok());
  EXPECT_TRUE(ParseSimpleRequest(line(kMaxJsonDepth)).has_value());
  for (size_t depth : {kMaxJsonDepth + 1, size_t{100'000}}) {
    RequestLine read = ReadRequestLine(line(depth));
    EXPECT_FALSE(read.syntax_error);
    EXPECT_EQ(read.status.code(), StatusCode::kTooLarge);
    EXPECT_EQ(read.status.details()["limit"], kMaxJsonDepth);
    EXPECT_TRUE(read.message.is_discarded());
    EXPECT_FALSE(ParseSimpleRequest(line(depth)).has_value())
        << "the fast path must decline it too";
    EXPECT_EQ(IdFromLine(line(depth)).text(), "1");
  }
  // The id after the deep part is still found.
  EXPECT_EQ(IdFromLine(R"({"params":)" + Arrays(100'000) + R"(,"id":"late"})").text(), "\"late\"");
  // Not JSON is a syntax error, not a refusal.
  RequestLine bad = ReadRequestLine("{nope");
  EXPECT_TRUE(bad.syntax_error);
  EXPECT_FALSE(bad.status.ok());
}

TEST(RequestLineTest, LongIntegersOutsideTheIdAreRefused) {
  RequestLine read = ReadRequestLine(
      R"({"jsonrpc":"2.0","id":5,"method":"m","params":{"n":123456789012345678901234567890}})");
  EXPECT_FALSE(read.syntax_error);
  EXPECT_EQ(read.status.code(), StatusCode::kInvalidParams);
  EXPECT_NE(read.status.message().find("as a string"), std::string::npos) << read.status.message();
  EXPECT_FALSE(ParseSimpleRequest(
      R"({"jsonrpc":"2.0","id":5,"method":"m","params":{"n":123456789012345678901234567890}})"));
  // ... and a long-integer id is not exempt anywhere else in the line.
  EXPECT_FALSE(
      ReadRequestLine(
          R"({"jsonrpc":"2.0","id":1,"method":"m","params":{"id":123456789012345678901234567890}})")
          .status.ok());
}

// The line encoders write what EncodeLine of the envelope document writes.
TEST(RequestLineTest, ErrorLinesAreTheDocumentsEncoded) {
  for (const json& id : {json(1), json("r\"1"), json(nullptr), json(-3)}) {
    const RequestId rid = RequestId::FromJson(id);
    const Status s(StatusCode::kTooLarge, "too \"big\"", {{"limit", 512}});
    json doc = {{"jsonrpc", "2.0"},
                {"id", id},
                {"error",
                 {{"code", 1008},
                  {"message", "too \"big\""},
                  {"data", {{"limit", 512}, {"reason", "TOO_LARGE"}}}}}};
    EXPECT_EQ(EncodeErrorLine(rid, s), EncodeLine(doc));
    json protocol = {
        {"jsonrpc", "2.0"},
        {"id", id},
        {"error",
         {{"code", -32601}, {"message", "unknown"}, {"data", {{"reason", "METHOD_NOT_FOUND"}}}}}};
    EXPECT_EQ(EncodeErrorLine(rid, Status(StatusCode::kMethodNotFound, "unknown")),
              EncodeLine(protocol));
  }
}

TEST(RequestLineTest, BatchRepliesJoinIntoOneArrayWithoutNotifications) {
  const std::string a = EncodeResultLine(RequestId::FromJson(1), json{{"ok", true}});
  const std::string b =
      EncodeErrorLine(RequestId::FromJson("x"), Status(StatusCode::kInvalidRequest, "no"));
  const std::string joined = JoinBatchReplies({a, std::string(), b});
  ASSERT_FALSE(joined.empty());
  EXPECT_EQ(joined.back(), '\n');
  // The line is exactly the array of the answered members, in order.
  EXPECT_EQ(joined, EncodeLine(json::array({json::parse(a), json::parse(b)})));
  // A batch of notifications only is not answered at all.
  EXPECT_EQ(JoinBatchReplies({std::string(), std::string()}), "");
}

}  // namespace
}  // namespace shim::net
