// Read-only after a failed reload, against a real `shim serve`: the third
// group write fails (SHIM_FAILPOINTS store.before_write:error@3) and the
// reload after it fails too (engine.reload:error). What a client sees then
// (docs/protocol.md, "Read-only"): a write is answered READ_ONLY (1014)
// with data.cause, reads and subscriptions are served, sys.info and
// `shim info` show read_only, the log says so once; a restart clears it.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/rpc_expect.h"
#include "tests/support/server_process.h"
#include "tests/support/test_util.h"

namespace shim {
namespace {

using nlohmann::json;
using testing::JsonLine;
using testing::kLoadedCallTimeoutMs;
using testing::ReadFile;
using testing::RunShim;
using testing::ServerProcess;

size_t Occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(ReadOnlyServerTest, AfterAFailedReloadWritesAreRefusedAndReadsServedUntilARestart) {
  ServerProcess server;
  server.options().env = {"SHIM_FAILPOINTS=store.before_write:error@3,engine.reload:error"};
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto client, server.Connect());
  ASSERT_OK_AND_ASSIGN(json stats, client->Call("sys.stats", json::object(), kLoadedCallTimeoutMs));
  ASSERT_EQ(stats["engine"]["store_commits"], 0)
      << "the failpoint counts on the writes below being the first";
  ASSERT_OK_AND_ASSIGN(json info, client->Call("sys.info", json::object(), kLoadedCallTimeoutMs));
  EXPECT_TRUE(info.contains("read_only") && info["read_only"].is_null()) << info.dump();

  // Commits 1 and 2.
  ASSERT_OK(
      client->Call("state.set", {{"key", "kept"}, {"value", 1}}, kLoadedCallTimeoutMs).status());
  ASSERT_OK(
      client->Call("pubsub.publish", {{"channel", "ch"}, {"data", "before"}}, kLoadedCallTimeoutMs)
          .status());
  // Commit 3 fails, and so does the reload after it.
  Result<json> lost =
      client->Call("state.set", {{"key", "lost"}, {"value", 1}}, kLoadedCallTimeoutMs);
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.status().code(), StatusCode::kInternal) << lost.status().ToString();

  // Writes: READ_ONLY, on the wire as protocol.md documents it.
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK(client->SendRaw(JsonLine({{"jsonrpc", "2.0"},
                                        {"id", i},
                                        {"method", "state.set"},
                                        {"params", {{"key", "k"}, {"value", i}}}})));
    ASSERT_OK_AND_ASSIGN(json reply, client->ReadMessage(kLoadedCallTimeoutMs));
    testing::ExpectError(reply, 1014, "READ_ONLY", i);
    const json& data = reply["error"]["data"];
    ASSERT_TRUE(data.contains("cause")) << reply.dump();
    EXPECT_NE(data["cause"].get<std::string>().find("failpoint engine.reload fired"),
              std::string::npos)
        << reply.dump();
  }
  Result<json> publish =
      client->Call("pubsub.publish", {{"channel", "ch"}, {"data", "no"}}, kLoadedCallTimeoutMs);
  EXPECT_EQ(publish.status().code(), StatusCode::kReadOnly) << publish.status().ToString();

  // Reads and subscriptions.
  ASSERT_OK_AND_ASSIGN(json kept,
                       client->Call("state.get", {{"key", "kept"}}, kLoadedCallTimeoutMs));
  EXPECT_EQ(kept["value"], 1);
  ASSERT_OK_AND_ASSIGN(auto subscriber, server.Connect());
  ASSERT_OK(
      subscriber
          ->Call("pubsub.subscribe", {{"channel", "ch"}, {"from_seq", 1}}, kLoadedCallTimeoutMs)
          .status());
  ASSERT_OK_AND_ASSIGN(json message, subscriber->NextNotification(kLoadedCallTimeoutMs));
  EXPECT_EQ(message["method"], "pubsub.message");
  EXPECT_EQ(message["params"]["data"], "before");

  // sys.info and `shim info`.
  ASSERT_OK_AND_ASSIGN(info, client->Call("sys.info", json::object(), kLoadedCallTimeoutMs));
  ASSERT_TRUE(info["read_only"].is_object()) << info.dump();
  EXPECT_GT(info["read_only"]["since_ms"].get<int64_t>(), 0);
  EXPECT_NE(info["read_only"]["cause"].get<std::string>().find("failpoint engine.reload fired"),
            std::string::npos);
  std::string out;
  EXPECT_EQ(RunShim("info --socket " + server.socket_path(), &out), 0) << out;
  EXPECT_NE(out.find("READ-ONLY"), std::string::npos) << out;
  EXPECT_NE(out.find("failpoint engine.reload fired"), std::string::npos) << out;

  // The log says it once, at error level, however many writes were refused.
  const std::string log = ReadFile(server.log_path());
  EXPECT_EQ(Occurrences(log, "the engine is read-only"), 1u) << log;
  EXPECT_NE(log.find("[error]"), std::string::npos) << log;

  // A restart (whose reload succeeds) clears it.
  server.options().env.clear();
  EXPECT_EQ(server.Stop(), 0);
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(client, server.Connect());
  ASSERT_OK_AND_ASSIGN(info, client->Call("sys.info", json::object(), kLoadedCallTimeoutMs));
  EXPECT_TRUE(info["read_only"].is_null()) << info.dump();
  ASSERT_OK(client->Call("state.set", {{"key", "k"}, {"value", 9}}, kLoadedCallTimeoutMs).status());
  ASSERT_OK_AND_ASSIGN(kept, client->Call("state.get", {{"key", "kept"}}, kLoadedCallTimeoutMs));
  EXPECT_EQ(kept["value"], 1);
  ASSERT_OK_AND_ASSIGN(json gone,
                       client->Call("state.get", {{"key", "lost"}}, kLoadedCallTimeoutMs));
  EXPECT_TRUE(gone.is_null()) << "the failed write reached the store: " << gone.dump();
  out.clear();
  EXPECT_EQ(RunShim("info --socket " + server.socket_path(), &out), 0) << out;
  EXPECT_EQ(out.find("READ-ONLY"), std::string::npos) << out;
}

}  // namespace
}  // namespace shim
