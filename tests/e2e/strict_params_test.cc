// Strict parameters over the wire of a real `shim serve` (issue 20, point
// 6): every method of the wire's method table refuses a field it does not
// take with INVALID_PARAMS naming it, and every MCP tool refuses an unknown
// argument with an isError tool result naming it and the nearest argument
// it does take. Both loops walk the registries, so a new method or tool is
// covered without touching this file.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "engine/clock.h"
#include "net/mcp_tools.h"
#include "net/method_table.h"
#include "tests/support/server_health.h"
#include "tests/support/sync_host.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_util.h"

namespace shim {
namespace {

using nlohmann::json;
using testing::kCallTimeoutMs;

class StrictParamsWireTest : public testing::OneServerSuite {
 protected:
  void SetUp() override {
    OneServerSuite::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_OK_AND_ASSIGN(client_, server_->Connect());
  }

  // The text of a tools/call result that must be an error.
  std::string ToolError(const std::string& tool, json arguments) {
    Result<json> r =
        client_->Call("tools/call", {{"name", tool}, {"arguments", arguments}}, kCallTimeoutMs);
    EXPECT_TRUE(r.ok()) << tool << ": " << r.status().ToString();
    if (!r.ok()) return "";
    EXPECT_EQ(r.value()["isError"], true) << tool << " " << arguments.dump();
    return r.value()["content"][0].value("text", "");
  }

  std::unique_ptr<net::LineClient> client_;
};

TEST_F(StrictParamsWireTest, EveryMethodOfTheTableRefusesAnUnknownFieldNamingIt) {
  // The server's own table, built the way the server builds it.
  testing::TempDir dir;
  engine::FakeClock clock;
  ASSERT_OK_AND_ASSIGN(auto host,
                       testing::SyncHost::OpenAt(dir.Sub("data"), &clock,
                                                 [](const std::string& w) { ADD_FAILURE() << w; }));
  const net::MethodTable table(host->engine());
  int checked = 0;
  for (const net::MethodEntry* e : table.All()) {
    // The MCP methods' params are the MCP specification's (which lets a
    // client add `_meta` and extensions anywhere); tool arguments are
    // checked below.
    if (e->home == net::MethodHome::kMcp) continue;
    Result<json> r = client_->Call(e->name, {{"no_such_field", 1}}, kCallTimeoutMs);
    ASSERT_FALSE(r.ok()) << e->name << " took an unknown field: " << r.value().dump();
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidParams)
        << e->name << ": " << r.status().ToString();
    EXPECT_EQ(r.status().details().value("field", ""), "no_such_field") << e->name;
    EXPECT_EQ(r.status().message().rfind("unknown field 'no_such_field'", 0), 0u)
        << e->name << ": " << r.status().message();
    ++checked;
  }
  EXPECT_GT(checked, 50);
  // The suggestion reaches the client as the error's message.
  Result<json> r =
      client_->Call("state.set", {{"key", "k"}, {"value", 1}, {"ttl", 5}}, kCallTimeoutMs);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "unknown field 'ttl'; did you mean 'ttl_ms'?");
  EXPECT_EQ(r.status().details()["field"], "ttl");
  ASSERT_OK_AND_ASSIGN(json got, client_->Call("state.get", {{"key", "k"}}, kCallTimeoutMs));
  EXPECT_TRUE(got.is_null()) << "the refused set wrote nothing";
}

TEST_F(StrictParamsWireTest, EveryMcpToolRefusesAnUnknownArgumentAsAToolError) {
  ASSERT_OK_AND_ASSIGN(json list, client_->Call("tools/list", json::object(), kCallTimeoutMs));
  ASSERT_EQ(list["tools"].size(), net::McpTools().size());
  for (const json& tool : list["tools"]) {
    EXPECT_EQ(tool["inputSchema"]["additionalProperties"], false) << tool["name"];
  }
  for (const net::McpTool& tool : net::McpTools()) {
    const std::string text = ToolError(tool.name, {{"no_such_argument", 1}});
    EXPECT_EQ(text.rfind("INVALID_PARAMS: unknown field 'no_such_argument'", 0), 0u)
        << tool.name << ": " << text;
    EXPECT_NE(text.find("(field: no_such_argument)"), std::string::npos) << text;
    EXPECT_NE(text.find("\nHint: "), std::string::npos) << text;
  }
  EXPECT_EQ(ToolError("shim_state_set", {{"key", "k"}, {"value", 1}, {"ttl", 5}})
                .rfind("INVALID_PARAMS: unknown field 'ttl'; did you mean 'ttl_ms'?", 0),
            0u);
  // A typo of a required argument reads as a typo, not as a missing one.
  EXPECT_EQ(ToolError("shim_session_status", {{"sesion_id", "s"}})
                .rfind("INVALID_PARAMS: unknown field 'sesion_id'; did you mean 'session_id'?", 0),
            0u);
  // The engine's names behind a tool are not the tool's (acknowledge, not ack).
  EXPECT_EQ(ToolError("shim_check_recovery", {{"name", "n"}, {"ack", true}})
                .rfind("INVALID_PARAMS: unknown field 'ack'", 0),
            0u);
  // Nested objects of a fixed shape, with their path.
  std::string text = ToolError("shim_task_submit", {{"tasks", {{{"queue", "q"}, {"priorty", 1}}}}});
  EXPECT_NE(text.find("unknown field 'tasks[0].priorty'; did you mean 'tasks[0].priority'?"),
            std::string::npos)
      << text;
  text = ToolError(
      "shim_task_complete",
      {{"task_id", "t1"}, {"lease_token", 1}, {"claim_next", {{"queues", {"q"}}, {"maxx", 1}}}});
  EXPECT_NE(text.find("(field: claim_next.maxx)"), std::string::npos) << text;
  // Signals stay open: other keys than the scored ones are stored.
  ASSERT_OK_AND_ASSIGN(
      json ok, client_->Call(
                   "tools/call",
                   {{"name", "shim_monitor_signals"},
                    {"arguments",
                     {{"session_id", "strict-s"}, {"signals", {{"tokens_used", 1}, {"mood", 2}}}}}},
                   kCallTimeoutMs));
  EXPECT_EQ(ok["isError"], false) << ok.dump();
}

}  // namespace
}  // namespace shim
