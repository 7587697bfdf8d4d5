// Per-method statistics against a real `shim serve`: method names are chosen
// by the client, so sys.stats keeps figures only for the methods that exist
// and counts every other name under one bucket (docs/design.md, style rule 12).
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
using testing::RssKiB;
using testing::ServerProcess;

constexpr std::string_view kOther = "(other)";

TEST(MethodStatsTest, DistinctUnknownNamesShareOneBucketAndKeepMemoryBounded) {
  ServerProcess server;
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto client, server.Connect());
  ASSERT_OK(client->Call("sys.ping", json::object(), kLoadedCallTimeoutMs).status());
  const long rss_before = RssKiB(server.pid());
  ASSERT_GT(rss_before, 0);

  // Notifications get no reply, so nothing slows the sender down: before
  // the fix each name cost a ~20 KiB entry, here 30,000 x 20 KiB = 600 MiB.
  constexpr int kNames = 30'000;
  constexpr int kPerWrite = 1000;
  for (int sent = 0; sent < kNames; sent += kPerWrite) {
    std::string lines;
    for (int i = sent; i < sent + kPerWrite; ++i) {
      const std::string method =
          i % 3 == 0
              ? "notifications/made-up/" + std::to_string(i)    // an MCP notification nobody knows
          : i % 3 == 1 ? "no.such.method." + std::to_string(i)  // a notification to no method
                       : "tools/call" + std::to_string(i);      // no such MCP method either
      lines += JsonLine({{"jsonrpc", "2.0"}, {"method", method}});
    }
    ASSERT_OK(client->SendRaw(lines));
  }
  // Unknown methods with an id are answered METHOD_NOT_FOUND and counted too.
  ASSERT_OK(
      client->SendRaw(JsonLine({{"jsonrpc", "2.0"}, {"id", "x"}, {"method", "also.unknown"}})));
  ASSERT_OK_AND_ASSIGN(json unknown, client->ReadMessage(kLoadedCallTimeoutMs));
  testing::ExpectError(unknown, -32601, "METHOD_NOT_FOUND", "x");
  // A known MCP notification keeps its own entry.
  ASSERT_OK(
      client->SendRaw(JsonLine({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}})));

  // Requests on one connection are handled in order: this answer comes after all of them.
  ASSERT_OK_AND_ASSIGN(json stats, client->Call("sys.stats", json::object(), kLoadedCallTimeoutMs));
  const long rss_after = RssKiB(server.pid());
  const json& methods = stats["methods"];
  ASSERT_TRUE(methods.contains(kOther)) << methods.dump();
  EXPECT_EQ(methods[std::string(kOther)]["calls"], kNames + 1);
  // Unknown methods are errors; unknown MCP notifications are ignored, as MCP asks.
  EXPECT_EQ(methods[std::string(kOther)]["errors"], kNames / 3 * 2 + 1);
  EXPECT_EQ(methods["mcp:notifications/initialized"]["calls"], 1) << methods.dump();
  EXPECT_GE(methods["sys.ping"]["calls"], 1) << methods.dump();
  // Only names that exist, each at most once: the engine's ~60 methods at most.
  EXPECT_LT(methods.size(), 100u) << methods.dump();
  for (const auto& [name, figures] : methods.items()) {
    EXPECT_EQ(name.find("made-up"), std::string::npos) << name;
    EXPECT_EQ(name.find("no.such"), std::string::npos) << name;
  }
  std::printf("[ info ] server RSS %ld KiB before, %ld KiB after %d distinct unknown names\n",
              rss_before, rss_after, kNames);
  EXPECT_LT(rss_after - rss_before, testing::MemoryBoundKiB(32 * 1024))
      << "server RSS grew by " << (rss_after - rss_before) << " KiB for " << kNames
      << " unknown method names";
}

}  // namespace
}  // namespace shim
