// End-to-end: pipelining, batches and notifications against a real
// `shim serve` over its Unix socket.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "tests/support/rpc_expect.h"
#include "tests/support/server_process.h"
#include "tests/support/test_util.h"

namespace shim {
namespace {

using nlohmann::json;
using testing::JsonLine;
using testing::ServerProcess;

using testing::kCallTimeoutMs;

// The connection has nothing more to say within `ms` (no duplicate or stray reply).
void ExpectSilence(net::LineClient& client, int ms) {
  auto extra = client.ReadLine(ms);
  EXPECT_FALSE(extra.ok()) << "unexpected extra line: " << extra.value();
  if (!extra.ok()) {
    EXPECT_EQ(extra.status().code(), StatusCode::kTimeout) << extra.status().ToString();
  }
}

TEST(PipelineTest, ThousandPipelinedRequestsAreEachAnsweredOnceWithTheRightResult) {
  ServerProcess server;
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto client, server.Connect());

  constexpr int kRequests = 1000;
  enum Kind { kSet, kGet, kIncr };
  struct Expected {
    Kind kind;
    int n;  // set/get: key index; incr: expected counter value
  };
  std::map<uint64_t, Expected> expected;
  std::vector<uint64_t> order;  // ids in send order
  int sets = 0, incrs = 0;
  for (int i = 0; i < kRequests; ++i) {
    uint64_t id = 0;
    switch (i % 3) {
      case 0: {
        ASSERT_OK_AND_ASSIGN(
            id, client->SendRequest("state.set", {{"key", "p/" + std::to_string(sets)},
                                                  {"value", {{"i", sets}, {"tag", "pipe"}}}}));
        expected[id] = {kSet, sets++};
        break;
      }
      case 1: {
        // Reads the key set by the previous request on this connection: the
        // server applies one connection's requests in order.
        ASSERT_OK_AND_ASSIGN(
            id, client->SendRequest("state.get", {{"key", "p/" + std::to_string(sets - 1)}}));
        expected[id] = {kGet, sets - 1};
        break;
      }
      default: {
        ASSERT_OK_AND_ASSIGN(id,
                             client->SendRequest("state.incr", {{"key", "counter"}, {"by", 1}}));
        expected[id] = {kIncr, ++incrs};
        break;
      }
    }
    order.push_back(id);
  }

  std::set<uint64_t> answered;
  std::map<uint64_t, uint64_t> write_revision;  // id -> revision, for set and incr
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_OK_AND_ASSIGN(json response, client->ReadMessage(kCallTimeoutMs));
    ASSERT_TRUE(response.is_object()) << response.dump();
    ASSERT_EQ(response.value("jsonrpc", ""), "2.0") << response.dump();
    ASSERT_TRUE(response.contains("id") && response["id"].is_number_unsigned()) << response.dump();
    const uint64_t id = response["id"].get<uint64_t>();
    ASSERT_TRUE(expected.count(id)) << "reply for an id never sent: " << response.dump();
    ASSERT_TRUE(answered.insert(id).second) << "id answered twice: " << response.dump();
    ASSERT_TRUE(response.contains("result")) << response.dump();
    const json& r = response["result"];
    const Expected& e = expected[id];
    switch (e.kind) {
      case kSet:
        EXPECT_EQ(r["version"], 1) << response.dump();
        write_revision[id] = r["revision"].get<uint64_t>();
        break;
      case kGet:
        ASSERT_TRUE(r.is_object())
            << "get after set on the same connection saw nothing: " << response.dump();
        EXPECT_EQ(r["key"], "p/" + std::to_string(e.n));
        EXPECT_EQ(r["value"], json({{"i", e.n}, {"tag", "pipe"}}));
        EXPECT_EQ(r["version"], 1);
        break;
      case kIncr:
        EXPECT_EQ(r["value"], e.n) << response.dump();
        EXPECT_EQ(r["version"], e.n) << response.dump();
        write_revision[id] = r["revision"].get<uint64_t>();
        break;
    }
  }
  EXPECT_EQ(answered.size(), static_cast<size_t>(kRequests));
  ExpectSilence(*client, 300);

  // Writes were applied in send order: revisions strictly increase with the id.
  uint64_t last = 0;
  for (uint64_t id : order) {
    auto it = write_revision.find(id);
    if (it == write_revision.end()) continue;
    EXPECT_GT(it->second, last) << "id " << id;
    last = it->second;
  }
  ASSERT_OK_AND_ASSIGN(json ping, client->Call("sys.ping", json::object(), kCallTimeoutMs));
  EXPECT_GE(ping["revision"].get<uint64_t>(), last);
  ASSERT_OK_AND_ASSIGN(json counter,
                       client->Call("state.get", {{"key", "counter"}}, kCallTimeoutMs));
  EXPECT_EQ(counter["value"], incrs);
}

TEST(PipelineTest, BatchGetsOneArrayReplyInRequestOrder) {
  ServerProcess server;
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto client, server.Connect());

  json batch = json::array({
      {{"jsonrpc", "2.0"},
       {"id", "a"},
       {"method", "state.set"},
       {"params", {{"key", "b/1"}, {"value", "one"}}}},
      {{"jsonrpc", "2.0"}, {"id", 2}, {"method", "state.get"}, {"params", {{"key", "b/1"}}}},
      // A notification inside a batch: applied, contributes no reply.
      {{"jsonrpc", "2.0"}, {"method", "state.incr"}, {"params", {{"key", "b/n"}}}},
      {{"jsonrpc", "2.0"},
       {"id", 3},
       {"method", "state.incr"},
       {"params", {{"key", "b/n"}, {"by", 10}}}},
      {{"jsonrpc", "2.0"}, {"id", 4}, {"method", "no.such.method"}},
      json(17),  // not a request: INVALID_REQUEST in its place
      {{"jsonrpc", "2.0"}, {"id", 5}, {"method", "sys.ping"}},
  });
  ASSERT_OK(client->SendRaw(JsonLine(batch)));
  ASSERT_OK_AND_ASSIGN(json reply, client->ReadMessage(kCallTimeoutMs));
  ASSERT_TRUE(reply.is_array()) << reply.dump();
  ASSERT_EQ(reply.size(), 6u) << reply.dump();
  EXPECT_EQ(reply[0]["id"], "a");
  EXPECT_EQ(reply[0]["result"]["version"], 1);
  EXPECT_EQ(reply[1]["id"], 2);
  EXPECT_EQ(reply[1]["result"]["value"], "one");
  EXPECT_EQ(reply[2]["id"], 3);
  EXPECT_EQ(reply[2]["result"]["value"], 11) << "the notification's incr was not applied first";
  EXPECT_EQ(reply[3]["id"], 4);
  EXPECT_EQ(reply[3]["error"]["code"], -32601);
  EXPECT_TRUE(reply[4]["id"].is_null());
  EXPECT_EQ(reply[4]["error"]["code"], -32600);
  EXPECT_EQ(reply[5]["id"], 5);
  EXPECT_EQ(reply[5]["result"]["pong"], true);
  ExpectSilence(*client, 200);

  // An empty batch is itself an invalid request.
  ASSERT_OK(client->SendRaw("[]\n"));
  ASSERT_OK_AND_ASSIGN(json empty, client->ReadMessage(kCallTimeoutMs));
  ASSERT_TRUE(empty.is_object()) << empty.dump();
  EXPECT_EQ(empty["error"]["code"], -32600);

  // A batch of notifications only gets no reply at all.
  json quiet = json::array(
      {{{"jsonrpc", "2.0"}, {"method", "state.set"}, {"params", {{"key", "b/q"}, {"value", 1}}}},
       {{"jsonrpc", "2.0"}, {"method", "sys.ping"}}});
  ASSERT_OK(client->SendRaw(JsonLine(quiet)));
  ASSERT_OK(client->SendRaw(JsonLine({{"jsonrpc", "2.0"},
                                      {"id", "after"},
                                      {"method", "state.get"},
                                      {"params", {{"key", "b/q"}}}})));
  ASSERT_OK_AND_ASSIGN(json next, client->ReadMessage(kCallTimeoutMs));
  EXPECT_EQ(next["id"], "after") << next.dump();
  EXPECT_EQ(next["result"]["value"], 1) << next.dump();
}

// Lines written in one go, some taking the envelope fast path
// (net/simple_request.h) and some not (other key order and spacing, extra
// members, escapes, batches, malformed lines): with no write pending every
// answer goes out at once, so the replies come back in line order, each
// error with its request's id (null for a line that is not JSON) and the
// exact bytes of a result envelope.
TEST(PipelineTest, MixedLinesInOneWriteAreAnsweredInOrder) {
  ServerProcess server;
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto client, server.Connect());
  ASSERT_OK(client->Call("state.set", {{"key", "m"}, {"value", "v"}}, kCallTimeoutMs).status());

  const std::string lines =
      R"({"jsonrpc":"2.0","id":1,"method":"state.get","params":{"key":"m"}})"
      "\n"
      "this is not json\n"
      R"({ "id" : "three" , "method" : "state.get" , "jsonrpc" : "2.0" , "params" : { "key" : "m" } })"
      "\n"
      R"({"jsonrpc":"2.0","id":4,"method":"state.get","params":{"key":"m"},"extra":true})"
      "\n"
      R"({"jsonrpc":"2.0","id":5,"method":"state.get","params":[1]})"
      "\n"
      R"({"jsonrpc":"2.0","id":6,"method":"no.such.method"})"
      "\n"
      R"({"jsonrpc":"2.0","id":7,"method":"state.get","params":{"key":"m"})"
      "\n"  // no closing brace
      R"({"jsonrpc":"1.0","id":8,"method":"sys.ping"})"
      "\n"
      R"({"jsonrpc":"2.0","id":9,"method":"state\u002eget","params":{"key":"m"}})"
      "\n"
      R"([{"jsonrpc":"2.0","id":10,"method":"state.get","params":{"key":"m"}}])"
      "\n"
      R"({"jsonrpc":"2.0","id":11,"method":"state.get","params":{"key":"m","key2":}})"
      "\n"
      R"({"jsonrpc":"2.0","id":-12,"method":"sys.ping","params":null})"
      "\r\n";
  ASSERT_OK(client->SendRaw(lines));

  struct Want {
    json id;
    int error_code;  // 0: a result
  };
  const std::vector<Want> want = {{1, 0},      {nullptr, -32700}, {"three", 0},      {4, 0},
                                  {5, -32602}, {6, -32601},       {nullptr, -32700}, {8, -32600},
                                  {9, 0},      {10, 0},           {nullptr, -32700}, {-12, 0}};
  for (const Want& w : want) {
    ASSERT_OK_AND_ASSIGN(std::string line, client->ReadLine(kCallTimeoutMs));
    json reply = json::parse(line, nullptr, false);
    const bool batch = reply.is_array();
    if (batch) {
      ASSERT_EQ(reply.size(), 1u) << line;
      reply = reply[0];
    }
    ASSERT_TRUE(reply.is_object()) << line;
    EXPECT_EQ(reply["id"], w.id) << line;
    if (w.error_code != 0) {
      EXPECT_EQ(reply["error"]["code"], w.error_code) << line;
      continue;
    }
    ASSERT_TRUE(reply.contains("result")) << line;
    // The result envelope is encoded straight from the result: the same
    // bytes the document would give.
    const std::string encoded = reply.dump();
    EXPECT_EQ(line, batch ? "[" + encoded + "]" : encoded);
    if (reply["result"].contains("value")) {
      EXPECT_EQ(reply["result"]["value"], "v") << line;
    }
  }
  ExpectSilence(*client, 200);
}

TEST(PipelineTest, NotificationsGetNoReply) {
  ServerProcess server;
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto client, server.Connect());

  // Valid, unknown-method, failing and ill-formed-params notifications: none
  // is answered; the valid ones are applied.
  ASSERT_OK(client->SendRaw(JsonLine({{"jsonrpc", "2.0"},
                                      {"method", "state.set"},
                                      {"params", {{"key", "n/1"}, {"value", "x"}}}})));
  ASSERT_OK(client->SendRaw(
      JsonLine({{"jsonrpc", "2.0"}, {"method", "state.incr"}, {"params", {{"key", "n/c"}}}})));
  ASSERT_OK(client->SendRaw(JsonLine({{"jsonrpc", "2.0"}, {"method", "no.such.method"}})));
  ASSERT_OK(client->SendRaw(
      JsonLine({{"jsonrpc", "2.0"}, {"method", "state.set"}, {"params", {{"key", 5}}}})));
  ASSERT_OK(client->SendRaw(
      JsonLine({{"jsonrpc", "2.0"}, {"method", "state.get"}, {"params", json::array({1})}})));
  ASSERT_OK(client->SendRaw(JsonLine({{"jsonrpc", "2.0"},
                                      {"id", "probe"},
                                      {"method", "state.get"},
                                      {"params", {{"key", "n/1"}}}})));
  ASSERT_OK_AND_ASSIGN(json first, client->ReadMessage(kCallTimeoutMs));
  EXPECT_EQ(first["id"], "probe") << "a notification was answered: " << first.dump();
  EXPECT_EQ(first["result"]["value"], "x") << first.dump();
  ASSERT_OK_AND_ASSIGN(json counter, client->Call("state.get", {{"key", "n/c"}}, kCallTimeoutMs));
  EXPECT_EQ(counter["value"], 1);
  ExpectSilence(*client, 200);
}

}  // namespace
}  // namespace shim
