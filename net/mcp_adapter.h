// McpAdapter: the Model Context Protocol on shim's JSON-RPC connections.
//
// Handles the MCP lifecycle (initialize with version negotiation,
// notifications/initialized, ping, logging/setLevel), tools/list and
// tools/call. Each tool maps onto one engine method (net/mcp_tools.h), so MCP
// and JSON-RPC clients share every rule and durability guarantee. Engine
// errors come back as tool results with isError: true, the reason and a hint;
// an unknown tool or a malformed call is JSON-RPC -32602.
// io thread only.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>

#include "engine/client.h"
#include "engine/engine.h"
#include "net/jsonrpc.h"

namespace shim::net {

class McpAdapter {
 public:
  McpAdapter(engine::Engine& engine, std::string version)
      : engine_(engine), version_(std::move(version)) {}

  // The MCP methods and notifications this server knows by name (it also
  // accepts, and ignores, any other `notifications/...`): their rows of
  // net/method_table.h.
  static std::span<const std::string_view> KnownMethods();
  // The name sys.stats counts an MCP method under: "mcp:<method>".
  static std::string StatsName(std::string_view method) { return "mcp:" + std::string(method); }
  // Receives the response line (empty for a notification, which gets
  // none) and whether it reports an error (a JSON-RPC error or a tool
  // result with isError).
  using Done = std::function<void(std::string line, bool error)>;
  void Handle(const Request& req, std::shared_ptr<engine::Client> client, Done done);

 private:
  nlohmann::json Initialize(const nlohmann::json& params) const;
  void CallTool(const Request& req, std::shared_ptr<engine::Client> client, Done done);

  engine::Engine& engine_;
  std::string version_;
};

}  // namespace shim::net
