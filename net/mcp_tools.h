// The MCP tool catalogue: every tool shim offers to models, with its
// schemas and annotations, and how it maps onto one engine method.
// Pure data plus small argument/result transforms; any thread.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/status.h"

namespace shim::net {

struct McpTool {
  std::string name;
  std::string title;
  std::string description;  // written for a model: when and how to use it
  nlohmann::json input_schema;
  nlohmann::json output_schema;
  bool read_only = false;
  bool destructive = false;
  bool idempotent = false;
  // The engine method it calls, from its arguments.
  std::function<std::string(const nlohmann::json& args)> method;
  // Tool arguments -> engine params (identity when null).
  std::function<nlohmann::json(const nlohmann::json& args)> to_params;
  // Engine result -> structuredContent (an object) (identity when null).
  std::function<nlohmann::json(const nlohmann::json& args, const nlohmann::json& result)> to_output;

  nlohmann::json Definition() const;  // the tools/list entry
};

const std::vector<McpTool>& McpTools();
const McpTool* FindMcpTool(const std::string& name);
// INVALID_PARAMS for the first argument the tool's input schema does not
// name (its objects say additionalProperties: false), with the nearest
// name it does (engine::CheckKnownFields); `field` is its path, e.g.
// "claim_next.maxx" or "tasks[1].qeue".
Status CheckToolArguments(const McpTool& tool, const nlohmann::json& args);
// A tool result with isError for a failed call: the wire reason, the
// message, the field if any, and a `Hint:` line the model can act on (the
// code's MCP hint in kErrorTable).
nlohmann::json McpToolError(const Status& s);

}  // namespace shim::net
