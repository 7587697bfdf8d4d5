#include "net/mcp_adapter.h"

#include "base/json_text.h"
#include "net/mcp_tools.h"

namespace shim::net {

using nlohmann::json;

namespace {

// Newest first; an unknown requested version gets the newest.
constexpr const char* kProtocolVersions[] = {"2025-11-25", "2025-06-18", "2025-03-26"};

constexpr const char* kInstructions =
    "shim keeps chats safe from crashes and lets several chats work together. At the start call "
    "shim_check_recovery with your session name; if recovery is available, continue from "
    "last_checkpoint.data. While working call shim_auto_checkpoint every few turns with your "
    "signals and working state. To coordinate: a supervisor submits tasks (shim_task_submit, with "
    "depends_on / parent_id refs), workers register (shim_worker_register), claim "
    "(shim_task_claim) and report (shim_task_complete / shim_task_fail); share facts with "
    "shim_state_get/set, messages with shim_publish / shim_read_messages, and exclusive work with "
    "shim_lock_acquire / shim_lock_release.";

std::string InvalidParams(const RequestId& id, const std::string& message) {
  return EncodeErrorLine(id, Status::InvalidParams("params", message));
}

// The requests answered here, then the client notifications of the MCP
// specification (which need no answer).
constexpr std::string_view kKnownMethods[] = {"initialize",
                                              "ping",
                                              "tools/list",
                                              "tools/call",
                                              "logging/setLevel",
                                              "notifications/initialized",
                                              "notifications/cancelled",
                                              "notifications/progress",
                                              "notifications/roots/list_changed"};

}  // namespace

std::span<const std::string_view> McpAdapter::KnownMethods() { return kKnownMethods; }

json McpAdapter::Initialize(const json& params) const {
  std::string version = kProtocolVersions[0];
  if (params.is_object() && params.contains("protocolVersion") &&
      params["protocolVersion"].is_string()) {
    const std::string asked = params["protocolVersion"];
    for (const char* v : kProtocolVersions) {
      if (asked == v) version = v;
    }
  }
  return json{{"protocolVersion", version},
              {"capabilities", {{"tools", json::object()}, {"logging", json::object()}}},
              {"serverInfo",
               {{"name", "shim"}, {"title", "shim coordination engine"}, {"version", version_}}},
              {"instructions", kInstructions}};
}

void McpAdapter::Handle(const Request& req, std::shared_ptr<engine::Client> client, Done done) {
  // Notifications (initialized, cancelled, ...) need no answer.
  if (req.method.rfind("notifications/", 0) == 0 || !req.has_id) return done({}, false);
  if (req.method == "initialize")
    return done(EncodeResultLine(req.id, Initialize(req.params)), false);
  if (req.method == "ping" || req.method == "logging/setLevel") {
    return done(EncodeResultLine(req.id, json::object()), false);
  }
  if (req.method == "tools/list") {
    json tools = json::array();
    for (const auto& t : McpTools()) tools.push_back(t.Definition());
    return done(EncodeResultLine(req.id, json{{"tools", std::move(tools)}}), false);
  }
  CallTool(req, std::move(client), std::move(done));
}

void McpAdapter::CallTool(const Request& req, std::shared_ptr<engine::Client> client, Done done) {
  const json& params = req.params;
  if (!params.is_object() || !params.contains("name") || !params["name"].is_string()) {
    return done(InvalidParams(req.id, "tools/call needs params.name (a string)"), true);
  }
  const std::string name = params["name"];
  const McpTool* tool = FindMcpTool(name);
  if (!tool) return done(InvalidParams(req.id, "unknown tool '" + name + "'"), true);
  json args = params.value("arguments", json::object());
  if (args.is_null()) args = json::object();
  if (!args.is_object())
    return done(InvalidParams(req.id, "tools/call arguments must be an object"), true);

  // An argument error is a tool result with isError, as the MCP
  // specification asks (the model can read it and call again). Unknown
  // arguments first: a misspelt required one is then named as a typo, not
  // as missing. The engine method behind a tool may take as optional what
  // the tool requires (checkpoint.auto's `data` behind
  // shim_force_checkpoint): check the tool's own required arguments too.
  if (Status unknown = CheckToolArguments(*tool, args); !unknown.ok()) {
    return done(EncodeResultLine(req.id, McpToolError(unknown)), true);
  }
  for (const auto& field : tool->input_schema.value("required", json::array())) {
    const std::string f = field.get<std::string>();
    if (!args.contains(f)) {
      return done(
          EncodeResultLine(req.id, McpToolError(Status::InvalidParams(f, f + ": is required"))),
          true);
    }
  }

  const std::string method = tool->method(args);
  json engine_params = tool->to_params ? tool->to_params(args) : args;
  engine_.Execute(
      method, std::move(engine_params), std::move(client),
      [tool, args, id = req.id, done = std::move(done)](Result<json> r) {
        if (!r.ok()) return done(EncodeResultLine(id, McpToolError(r.status())), true);
        json out = tool->to_output ? tool->to_output(args, r.value()) : std::move(r).value();
        if (!out.is_object()) out = json{{"value", std::move(out)}};
        std::string text = DumpCompact(out);
        done(EncodeResultLine(
                 id, json{{"content", json::array({json{{"type", "text"}, {"text", text}}})},
                          {"structuredContent", std::move(out)},
                          {"isError", false}}),
             false);
      });
}

}  // namespace shim::net
