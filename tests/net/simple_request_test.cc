// ParseSimpleRequest (the envelope fast path) must agree with the general
// path — ReadRequestLine + ParseRequest — on every line it accepts, and
// EncodeResultLine with the envelope document's EncodeLine byte for byte.
#include "net/simple_request.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/test_seed.h"

namespace shim::net {
namespace {

using nlohmann::json;

// The general path's Request for `line`, or nullopt when it answers with an
// error (or nothing).
std::optional<Request> GeneralPath(std::string_view line) {
  RequestLine read = ReadRequestLine(line);
  if (!read.status.ok() || !read.message.is_object()) return std::nullopt;
  std::string error;
  Result<Request> req = ParseRequest(std::move(read.message), read.id_texts.at(0), &error);
  if (!req.ok()) return std::nullopt;
  return std::move(req).value();
}

// The envelope document of a result, as the reference encoding.
json ResultEnvelope(const json& id, const json& result) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"result", result}};
}

// Fails unless the fast path declines `line` or agrees with the general path.
void ExpectAgrees(std::string_view line) {
  std::optional<Request> fast = ParseSimpleRequest(line);
  if (!fast) return;
  std::optional<Request> general = GeneralPath(line);
  ASSERT_TRUE(general.has_value())
      << "accepted, but the general path answers with an error: " << line;
  EXPECT_EQ(fast->has_id, general->has_id) << line;
  EXPECT_EQ(fast->id.text(), general->id.text()) << line;
  EXPECT_EQ(fast->method, general->method) << line;
  EXPECT_EQ(fast->params.type(), general->params.type()) << line;
  EXPECT_EQ(fast->params, general->params) << line;
}

TEST(SimpleRequestTest, TakesTheCommonShapes) {
  const std::vector<std::string> lines = {
      R"({"jsonrpc":"2.0","id":1,"method":"state.get","params":{"key":"bench/17"}})",
      R"({"jsonrpc":"2.0","id":12,"method":"state.set","params":{"key":"k","value":{"a":[1,"}",{"b":"\"{"}]}}})",
      R"({"id":"req-7","method":"sys.ping","jsonrpc":"2.0"})",
      R"(  { "jsonrpc" : "2.0" , "id" : -3 , "method" : "sys.ping" , "params" : null }  )",
      "{\"jsonrpc\":\"2.0\",\t\"method\":\"pubsub.publish\",\"params\":{\"channel\":\"c\",\"data\":"
      "\"caf\xc3\xa9\"}}",
      R"({"jsonrpc":"2.0","id":null,"method":"sys.ping"})",
      R"({"jsonrpc":"2.0","id":0,"method":"x","params":{}})",
      R"({"jsonrpc":"2.0","id":-0,"method":"x"})",
      R"({"jsonrpc":"2.0","id":999999999999999999,"method":"x"})",
      // params the scanner builds itself, and params it leaves to nlohmann
      // (escapes, non-ASCII, fractions, long integers, duplicate keys, depth)
      R"({"jsonrpc":"2.0","id":1,"method":"x","params":{"a":[1,-2,true,false,null,{},[],{"b":[{"c":"d"}]}]}})",
      R"({"jsonrpc":"2.0","id":1,"method":"x","params":{"k":"a\"b\\c\u00e9"}})",
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{\"k\":\"caf\xc3\xa9\"}}",
      R"({"jsonrpc":"2.0","id":1,"method":"x","params":{"k":1.5,"e":1e3,"z":-0.0}})",
      R"({"jsonrpc":"2.0","id":1,"method":"x","params":{"n":12345678901234567890,"m":-9223372036854775808}})",
      R"({"jsonrpc":"2.0","id":1,"method":"x","params":{"k":"a","k":"b"}})",
      R"({"jsonrpc":"2.0","id":1,"method":"x","params":{"k":{"k":1,"k":2}}})",
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{\"d\":" + std::string(40, '[') +
          std::string(40, ']') + "}}",
  };
  for (const std::string& line : lines) {
    EXPECT_TRUE(ParseSimpleRequest(line).has_value()) << line;
    ExpectAgrees(line);
  }
  auto dup =
      ParseSimpleRequest(R"({"jsonrpc":"2.0","id":1,"method":"x","params":{"k":"a","k":"b"}})");
  ASSERT_TRUE(dup.has_value());
  EXPECT_EQ(dup->params, (json{{"k", "b"}})) << "nlohmann keeps the last of duplicate keys";
  auto req =
      ParseSimpleRequest(R"({"jsonrpc":"2.0","id":7,"method":"state.get","params":{"key":"k"}})");
  ASSERT_TRUE(req.has_value());
  EXPECT_TRUE(req->has_id);
  EXPECT_EQ(req->id.text(), "7");
  EXPECT_EQ(req->method, "state.get");
  EXPECT_EQ(req->params, (json{{"key", "k"}}));
  auto notification = ParseSimpleRequest(R"({"jsonrpc":"2.0","method":"sys.ping"})");
  ASSERT_TRUE(notification.has_value());
  EXPECT_FALSE(notification->has_id);
  EXPECT_TRUE(notification->params.is_null());
}

TEST(SimpleRequestTest, LeavesEverythingElseToTheGeneralPath) {
  const std::vector<std::string> lines = {
      "",
      "not json",
      "[]",
      R"([{"jsonrpc":"2.0","id":1,"method":"sys.ping"}])",
      "{}",
      R"({"jsonrpc":"2.0","id":1,"method":"sys.ping"}x)",
      R"({"jsonrpc":"2.0","id":1,"method":"sys.ping"})"
      "}",
      R"({"jsonrpc":"2.0","id":1,"method":"sys.ping",})",
      R"({"jsonrpc":"2.0","id":1,"method":"sys.ping")",
      R"({"jsonrpc":"1.0","id":1,"method":"sys.ping"})",
      R"({"jsonrpc":2.0,"id":1,"method":"sys.ping"})",
      R"({"id":1,"method":"sys.ping"})",
      R"({"jsonrpc":"2.0","id":1})",
      R"({"jsonrpc":"2.0","id":1,"method":7})",
      R"({"jsonrpc":"2.0","id":1.5,"method":"sys.ping"})",
      R"({"jsonrpc":"2.0","id":1e3,"method":"sys.ping"})",
      R"({"jsonrpc":"2.0","id":01,"method":"sys.ping"})",
      R"({"jsonrpc":"2.0","id":-,"method":"sys.ping"})",
      R"({"jsonrpc":"2.0","id":1234567890123456789,"method":"sys.ping"})",
      R"({"jsonrpc":"2.0","id":true,"method":"sys.ping"})",
      R"({"jsonrpc":"2.0","id":[1],"method":"sys.ping"})",
      R"({"jsonrpc":"2.0","id":{"a":1},"method":"sys.ping"})",
      R"({"jsonrpc":"2.0","id":nul,"method":"sys.ping"})",
      R"({"jsonrpc":"2.0","id":"a\"b","method":"sys.ping"})",
      R"({"jsonrpc":"2.0","id":1,"method":"sys\u002eping"})",
      R"({"jsonrpc":"2.0","id":1,"id":2,"method":"sys.ping"})",
      R"({"jsonrpc":"2.0","id":1,"method":"a","method":"b"})",
      R"({"jsonrpc":"2.0","jsonrpc":"2.0","id":1,"method":"a"})",
      R"({"jsonrpc":"2.0","id":1,"method":"a","params":{},"params":{}})",
      R"({"jsonrpc":"2.0","id":1,"method":"a","extra":1})",
      R"({"jsonrpc":"2.0","id":1,"method":"a","params":[1,2]})",
      R"({"jsonrpc":"2.0","id":1,"method":"a","params":"x"})",
      R"({"jsonrpc":"2.0","id":1,"method":"a","params":{"k":}})",
      R"({"jsonrpc":"2.0","id":1,"method":"a","params":{"k":"v"])",
      R"({"jsonrpc":"2.0","id":1,"method":"a","params":{"k":"v})",
      R"({"jsonrpc":"2.0","id":1,"method":"a","params":{"k":"v\"}})",
      R"({"jsonrpc":"2.0","id":1,"method":"a","params":{"k":tru}})",
      R"({"jsonrpc":"2.0","id":1,"method":"a","params":{"k":[1,]}})",
      R"({"jsonrpc":"2.0","id":1,"method":"a","params":{"k":01}})",
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"params\":{\"k\":\"\xff\"}}",
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"caf\xc3\xa9\"}",
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\x01\"}",
      "\xEF\xBB\xBF{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"}",
      R"({"jsonrpc":"2.0","id":1,"method":"a"} // comment)",
  };
  for (const std::string& line : lines) {
    EXPECT_FALSE(ParseSimpleRequest(line).has_value()) << line;
  }
}

// Lines of the fuzz corpus (tests/fuzz/corpus/jsonrpc_fuzz) and many random
// mutations of them: whatever the fast path accepts, the general path must
// read the same way.
TEST(SimpleRequestTest, AgreesWithTheGeneralPathOnMutatedCorpusLines) {
  const auto dir = std::filesystem::path(__FILE__).parent_path().parent_path() / "fuzz" / "corpus" /
                   "jsonrpc_fuzz";
  std::vector<std::string> lines;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
  }
  ASSERT_GT(lines.size(), 100u) << dir;
  size_t accepted = 0;
  size_t accepted_mutations = 0;
  SHIM_TEST_SEED_TRACE(seed, 7);
  std::mt19937 rng(seed);
  const std::string alphabet =
      "{}[]\":,\\ \t-.0123456789eEnulltrfasjonrpcidmethodparams\x01\xc3\xa9\xff";
  for (const std::string& original : lines) {
    if (ParseSimpleRequest(original)) ++accepted;
    ExpectAgrees(original);
    for (int round = 0; round < 200; ++round) {
      std::string line = original;
      const int edits = 1 + static_cast<int>(rng() % 3);
      for (int e = 0; e < edits && !line.empty(); ++e) {
        const size_t at = rng() % line.size();
        const char c = alphabet[rng() % alphabet.size()];
        switch (rng() % 3) {
          case 0:
            line.erase(at, 1);
            break;
          case 1:
            line.insert(line.begin() + static_cast<std::ptrdiff_t>(at), c);
            break;
          default:
            line[at] = c;
            break;
        }
      }
      if (ParseSimpleRequest(line)) ++accepted_mutations;
      ExpectAgrees(line);
      if (HasFailure()) return;
    }
  }
  // The fast path is the common path: most corpus lines take it; and the
  // mutations reach it too (whitespace, other ids, other values in params).
  EXPECT_GT(accepted, lines.size() / 2);
  EXPECT_GT(accepted_mutations, lines.size() * 10) << accepted_mutations;
}

TEST(SimpleRequestTest, ResultLineIsTheEnvelopeEncodedByteForByte) {
  const std::vector<json> ids = {1,       -5, 18446744073709551615ull, "req-1", "caf\xc3\xa9",
                                 nullptr, 1.5};
  const std::vector<json> results = {
      json{{"version", 1}, {"revision", 2}},
      nullptr,
      json{{"key", "k"}, {"value", "x\n\"y\"\x01"}, {"expires_at_ms", nullptr}},
      json::array({1, "two", json::object()}),
      "bad utf-8 \xff here",
      3.25,
  };
  for (const json& id : ids) {
    for (const json& result : results) {
      EXPECT_EQ(EncodeResultLine(RequestId::FromJson(id), result),
                EncodeLine(ResultEnvelope(id, result)));
    }
  }
}

TEST(SimpleRequestTest, NotificationLineFromEncodedParamsIsTheEnvelopeByteForByte) {
  const std::vector<json> params = {
      json{{"channel", "ch"}, {"data", {{"x", 1}}}, {"seq", 3}, {"subscription", 9}},
      json{{"s", "x\n\"y\"\x01 caf\xc3\xa9"}},
      json::object(),
  };
  for (const json& p : params) {
    EXPECT_EQ(EncodeNotificationLine("pubsub.message", p.dump()),
              EncodeLine(Notification("pubsub.message", p)));
  }
}

TEST(SimpleRequestTest, ResultLineFromEncodedResultIsTheLineOfTheDocumentByteForByte) {
  const std::vector<json> results = {
      json{{"key", "k"}, {"value", {{"x", 1.5}, {"s", "caf\xc3\xa9 \"q\"\n"}}}, {"version", 3}},
      json(nullptr),
      json::array({1, "two", nullptr}),
  };
  for (const json& id : {json(7), json("req-\"1\""), json(-1)}) {
    for (const json& r : results) {
      const RequestId rid = RequestId::FromJson(id);
      EXPECT_EQ(EncodeResultLine(rid, std::string_view(r.dump())), EncodeResultLine(rid, r));
      EXPECT_EQ(EncodeResultLine(rid, std::string_view(r.dump())),
                EncodeLine(ResultEnvelope(id, r)));
    }
  }
}

}  // namespace
}  // namespace shim::net
