// Replies that wait in the server, against a real `shim serve`: a batch's
// answers are held until its last member is done, and reads behind a write
// wait for that write's commit. Both are bounded: a batch stops executing
// members once its replies pass --max-outbound-bytes, and while more than
// --max-held-reply-bytes wait for a commit no further request is read (a
// batch's remaining members are refused instead). Nothing is lost: every
// request is answered, refused ones say they were not executed.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/rpc_expect.h"
#include "tests/support/server_process.h"
#include "tests/support/test_util.h"

namespace shim {
namespace {

using nlohmann::json;
using testing::JsonLine;
using testing::kLoadedCallTimeoutMs;
using testing::ServerProcess;

json Request(int id, const std::string& method, const json& params) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}};
}

TEST(HeldRepliesTest, BatchStopsExecutingMembersOnceItsRepliesPassTheOutboundLimit) {
  constexpr size_t kOutbound = 4 << 20;
  ServerProcess server({.extra_args = {"--max-outbound-bytes", std::to_string(kOutbound)}});
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto client, server.Connect());
  const std::string value(1'000'000, 'v');
  ASSERT_OK(
      client->Call("state.set", {{"key", "big"}, {"value", value}}, kLoadedCallTimeoutMs).status());

  // Twenty reads of 1 MB (a 20 MB reply before), then a write.
  json batch = json::array();
  for (int i = 1; i <= 20; ++i) batch.push_back(Request(i, "state.get", {{"key", "big"}}));
  batch.push_back(Request(21, "state.set", {{"key", "after"}, {"value", 1}}));
  ASSERT_OK(client->SendRaw(batch.dump() + "\n"));
  ASSERT_OK_AND_ASSIGN(std::string line, client->ReadLine(kLoadedCallTimeoutMs));
  EXPECT_LT(line.size(), kOutbound + value.size() + 64 * 1024) << "the batch reply is bounded";
  json replies = json::parse(line, nullptr, false);
  ASSERT_TRUE(replies.is_array()) << line.substr(0, 200);
  ASSERT_EQ(replies.size(), 21u) << "every member is answered";
  size_t executed = 0;
  for (size_t i = 0; i < replies.size(); ++i) {
    EXPECT_EQ(replies[i]["id"], i + 1);
    if (replies[i].contains("result")) {
      ASSERT_EQ(executed, i) << "members run in order until the limit, none after";
      ++executed;
      continue;
    }
    testing::ExpectError(replies[i], 1008, "TOO_LARGE", i + 1);
    EXPECT_EQ(replies[i]["error"]["data"]["limit"], kOutbound);
    EXPECT_NE(replies[i]["error"]["message"].get<std::string>().find("not executed"),
              std::string::npos);
  }
  // Over 4 MiB after the fifth value: five executed, the rest refused.
  EXPECT_EQ(executed, 5u);
  ASSERT_OK_AND_ASSIGN(json after,
                       client->Call("state.get", {{"key", "after"}}, kLoadedCallTimeoutMs));
  EXPECT_TRUE(after.is_null()) << "a refused member was executed anyway";
}

TEST(HeldRepliesTest, PipelinedRequestsWaitForTheCommitOverTheHeldLimitAndAreAllAnswered) {
  // A limit of one byte: after each write, no request is read until its
  // commit lands. Everything is still answered, in order, correctly.
  ServerProcess server({.extra_args = {"--max-held-reply-bytes", "1"}});
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto client, server.Connect());
  constexpr int kPairs = 200;
  std::string lines;
  for (int i = 0; i < kPairs; ++i) {
    lines += JsonLine(Request(2 * i + 1, "state.incr", {{"key", "n"}}));
    lines += JsonLine(Request(2 * i + 2, "state.get", {{"key", "n"}}));
  }
  ASSERT_OK(client->SendRaw(lines));
  for (int i = 0; i < kPairs; ++i) {
    ASSERT_OK_AND_ASSIGN(json incr, client->ReadMessage(kLoadedCallTimeoutMs));
    ASSERT_EQ(incr["id"], 2 * i + 1);
    EXPECT_EQ(incr["result"]["value"], i + 1) << incr.dump();
    ASSERT_OK_AND_ASSIGN(json get, client->ReadMessage(kLoadedCallTimeoutMs));
    ASSERT_EQ(get["id"], 2 * i + 2);
    EXPECT_EQ(get["result"]["value"], i + 1) << get.dump();
  }

  // In one batch nothing can wait for a land: members after a held reply
  // are refused, not executed.
  json batch = json::array({Request(1, "state.set", {{"key", "b"}, {"value", 1}}),
                            Request(2, "state.set", {{"key", "c"}, {"value", 1}}),
                            Request(3, "state.get", {{"key", "b"}})});
  ASSERT_OK(client->SendRaw(batch.dump() + "\n"));
  ASSERT_OK_AND_ASSIGN(std::string line, client->ReadLine(kLoadedCallTimeoutMs));
  json replies = json::parse(line, nullptr, false);
  ASSERT_TRUE(replies.is_array() && replies.size() == 3u) << line;
  EXPECT_EQ(replies[0]["result"]["version"], 1) << line;
  testing::ExpectError(replies[1], 1011, "OVERLOADED", 2);
  testing::ExpectError(replies[2], 1011, "OVERLOADED", 3);
  ASSERT_OK_AND_ASSIGN(json c, client->Call("state.get", {{"key", "c"}}, kLoadedCallTimeoutMs));
  EXPECT_TRUE(c.is_null()) << "a refused member was executed anyway";
}

}  // namespace
}  // namespace shim
