#include "net/mcp_tools.h"

#include <string_view>
#include <vector>

#include "engine/params.h"

namespace shim::net {

using nlohmann::json;

namespace {

// Schema helpers: keep the catalogue readable.
json Obj(json properties, std::vector<std::string> required = {}) {
  json s = {{"type", "object"}, {"properties", std::move(properties)}};
  if (!required.empty()) s["required"] = required;
  return s;
}
// An object of arguments that takes no others (CheckToolArguments).
json Closed(json object_schema) {
  object_schema["additionalProperties"] = false;
  return object_schema;
}
json Str(const char* d) { return {{"type", "string"}, {"description", d}}; }
json Int(const char* d) { return {{"type", "integer"}, {"description", d}}; }
json Bool(const char* d) { return {{"type", "boolean"}, {"description", d}}; }
json AnyJson(const char* d) { return {{"description", d}}; }
json Nullable(const char* type) { return {{"type", json::array({type, "null"})}}; }

json RiskOutput() {
  return Obj({{"risk", {{"type", "number"}}},
              {"level", {{"type", "string"}, {"enum", {"low", "medium", "high", "critical"}}}},
              {"factors", {{"type", "array"}, {"items", {{"type", "object"}}}}},
              {"checkpoint_recommended", {{"type", "boolean"}}},
              {"recommendation_reason", Nullable("string")}},
             {"risk", "level", "factors", "checkpoint_recommended"});
}

json SignalsSchema() {
  return {{"type", "object"},
          {"description",
           "What you know about this conversation so far: tokens_used, context_window, messages, "
           "tool_calls, errors, elapsed_ms (all numbers; give what you have)"},
          {"properties",
           {{"tokens_used", {{"type", "number"}}},
            {"context_window", {{"type", "number"}}},
            {"messages", {{"type", "number"}}},
            {"tool_calls", {{"type", "number"}}},
            {"errors", {{"type", "number"}}},
            {"elapsed_ms", {{"type", "number"}}}}}};
}

json TaskFields() {
  return {{"queue", Str("queue name; queues are created on first use")},
          {"payload", AnyJson("the work to do, any JSON")},
          {"priority", Int("1 (most urgent) .. 10, default 5")},
          {"delay_ms", Int("do not run before this many ms from now")},
          {"max_attempts", Int("tries before it fails for good, default 3")},
          {"timeout_ms", Int("how long a worker may hold it without extending, default 60000")},
          {"depends_on",
           {{"type", "array"},
            {"items", {{"type", "string"}}},
            {"description", "task ids (or refs in the same call) that must complete first"}}},
          {"parent_id", Str("task id or ref of a parent that waits for this task")},
          {"aggregate",
           {{"type", "string"},
            {"enum", {"concatenate", "merge", "first", "last"}},
            {"description",
             "on a parent: complete it by itself with its children's results combined"}}},
          {"requires",
           {{"type", "array"},
            {"items", {{"type", "string"}}},
            {"description", "capabilities a worker must have"}}},
          {"ref", Str("a name for this task that other tasks in the same call can use in "
                      "depends_on / parent_id")},
          {"idempotency_key", Str("submitting again with the same key returns the same task")},
          {"deadline_at_ms", Int("epoch ms by which it should be done")}};
}

// The tasks a claim hands out (shim_task_claim, and claim_next below).
json ClaimedTasksSchema() { return {{"type", "array"}, {"items", {{"type", "object"}}}}; }

// claim_next of shim_task_complete / shim_task_fail: shim_task_claim's
// arguments, worker_id defaulting to the worker that held the task.
json ClaimNextSchema() {
  json s = Closed(Obj({{"queues", {{"type", "array"}, {"items", {{"type", "string"}}}}},
                       {"worker_id", Str("default: the worker that held this task")},
                       {"max", Int("how many tasks at most, default 1")},
                       {"wait_ms", Int("wait up to this long for a task")}},
                      {"queues"}));
  s["description"] = "also claim your next task in this call; it comes back in tasks";
  return s;
}

std::vector<McpTool> Build() {
  std::vector<McpTool> t;
  auto fixed = [](const char* m) { return [m](const json&) { return std::string(m); }; };

  // ---- crash prevention
  t.push_back(
      {"shim_auto_checkpoint", "Record progress and checkpoint when needed",
       "Call this regularly (every few turns, and after any important step). Give your current "
       "signals (tokens used, context window, messages, tool calls, errors, elapsed time) and "
       "`data`: the working state you would need to continue after a crash (goal, plan, progress, "
       "key facts, next step). shim scores the crash risk and saves `data` as a durable checkpoint "
       "when the risk is high or the last checkpoint is too old. The first call opens the session.",
       Obj({{"session_id", Str("a stable id for this chat, e.g. a short name")},
            {"signals", SignalsSchema()},
            {"data", AnyJson("your working state to checkpoint if one is due")},
            {"label", Str("short label for the checkpoint")}},
           {"session_id"}),
       [] {
         json o = RiskOutput();
         o["properties"]["saved"] = {{"type", "boolean"}};
         o["properties"]["checkpoint_id"] = Nullable("integer");
         o["properties"]["session_id"] = {{"type", "string"}};
         o["required"].push_back("saved");
         return o;
       }(),
       false, false, false, fixed("checkpoint.auto"), nullptr, nullptr});
  t.push_back({"shim_check_recovery", "Check for a crashed session to resume",
               "Call this at the start of a chat. If an earlier chat with this name (or session "
               "id) ended without closing, recovery_available is true and last_checkpoint.data "
               "holds its last verified working state: read it, continue from there, and pass "
               "acknowledge=true so it is not offered again.",
               Obj({{"session_id", Str("session id to check")},
                    {"name", Str("session name to check (the newest session with it)")},
                    {"acknowledge", Bool("mark the recovery as handled")}}),
               Obj({{"recovery_available", {{"type", "boolean"}}},
                    {"reason", {{"type", "string"}}},
                    {"last_checkpoint", Nullable("object")},
                    {"session", Nullable("object")}},
                   {"recovery_available", "reason"}),
               false, false, false, fixed("recovery.check"),
               [](const json& a) {
                 json p = a;
                 if (p.contains("acknowledge")) {
                   p["ack"] = p["acknowledge"];
                   p.erase("acknowledge");
                 }
                 return p;
               },
               nullptr});
  t.push_back(
      {"shim_monitor_signals", "Score the crash risk of this chat",
       "Report your signals and get the crash risk (0..1), its level, the factors behind it and "
       "whether a checkpoint is recommended. Nothing is saved but the signal sample.",
       Obj({{"session_id", Str("this chat's session id")}, {"signals", SignalsSchema()}},
           {"session_id", "signals"}),
       RiskOutput(), false, false, false, fixed("checkpoint.auto"), nullptr, nullptr});
  t.push_back({"shim_session_status", "Show a session's state",
               "State of a session (open, closed, unclean), its checkpoint count and newest "
               "checkpoint, last risk assessment and whether recovery is available.",
               Obj({{"session_id", Str("session id")}}, {"session_id"}),
               Obj({{"state", {{"type", "string"}}},
                    {"checkpoints", {{"type", "integer"}}},
                    {"last_checkpoint", Nullable("object")},
                    {"risk", Nullable("object")},
                    {"recovery_available", {{"type", "boolean"}}},
                    {"session", {{"type", "object"}}}},
                   {"state", "checkpoints", "recovery_available"}),
               true, false, true, fixed("session.status"), nullptr, nullptr});
  t.push_back({"shim_force_checkpoint", "Save a checkpoint now",
               "Save `data` (your working state) as a durable checkpoint right now, e.g. before a "
               "risky step. Opens the session if needed.",
               Obj({{"session_id", Str("this chat's session id")},
                    {"data", AnyJson("the working state to save")},
                    {"label", Str("short label")}},
                   {"session_id", "data"}),
               Obj({{"saved", {{"type", "boolean"}}},
                    {"checkpoint_id", Nullable("integer")},
                    {"session_id", {{"type", "string"}}}},
                   {"saved"}),
               false, false, false, fixed("checkpoint.auto"),
               [](const json& a) {
                 json p = a;
                 p["force"] = true;
                 return p;
               },
               nullptr});
  t.push_back({"shim_clear_state", "Delete a session's checkpoints and keys",
               "Delete every checkpoint and signal of the session and the state keys under "
               "session/<id>/. Use only when the work is finished and nothing needs recovering.",
               Obj({{"session_id", Str("session id")}}, {"session_id"}),
               Obj({{"ok", {{"type", "boolean"}}}, {"deleted", {{"type", "object"}}}}, {"ok"}),
               false, true, true, fixed("session.clear"), nullptr, nullptr});

  // ---- coordination
  t.push_back({"shim_state_get", "Read a shared key",
               "Read a key of the shared state other chats can see. Returns found=false when "
               "absent. Remember `version` if you plan to update it safely (expected_version).",
               Obj({{"key", Str("the key, e.g. project/plan")}}, {"key"}),
               Obj({{"found", {{"type", "boolean"}}},
                    {"key", {{"type", "string"}}},
                    {"value", AnyJson("the value")},
                    {"version", {{"type", "integer"}}}},
                   {"found", "key"}),
               true, false, true, fixed("state.get"), nullptr, [](const json& a, const json& r) {
                 if (r.is_null()) return json{{"found", false}, {"key", a.value("key", "")}};
                 json o = r;
                 o["found"] = true;
                 return o;
               }});
  t.push_back(
      {"shim_state_set", "Write a shared key",
       "Write a key of the shared state. With expected_version the write succeeds only if the key "
       "is still at that version (0 = must not exist): use it to avoid overwriting another chat's "
       "update.",
       Obj({{"key", Str("the key")},
            {"value", AnyJson("any JSON value")},
            {"expected_version", Int("only write if the key is at this version (0 = absent)")},
            {"ttl_ms", Int("delete the key after this many ms")}},
           {"key", "value"}),
       Obj({{"version", {{"type", "integer"}}}, {"revision", {{"type", "integer"}}}},
           {"version", "revision"}),
       false, false, false, fixed("state.set"), nullptr, nullptr});
  t.push_back(
      {"shim_publish", "Send a message on a channel",
       "Publish a message on a durable channel; other chats read it with shim_read_messages.",
       Obj({{"channel", Str("channel name")}, {"data", AnyJson("the message, any JSON")}},
           {"channel", "data"}),
       Obj({{"seq", {{"type", "integer"}}}, {"delivered", {{"type", "integer"}}}}, {"seq"}), false,
       false, false, fixed("pubsub.publish"), nullptr, nullptr});
  t.push_back({"shim_read_messages", "Read messages from a channel",
               "Read a channel's stored messages from from_seq on (default: the oldest kept). Pass "
               "next_seq from the previous call as from_seq to read only new ones; more: true "
               "means there are more to read now (a page holds at most about 4 MiB).",
               Obj({{"channel", Str("channel name")},
                    {"from_seq", Int("first seq to read")},
                    {"limit", Int("max messages, default 100")}},
                   {"channel"}),
               Obj({{"messages", {{"type", "array"}, {"items", {{"type", "object"}}}}},
                    {"next_seq", {{"type", "integer"}}},
                    {"more", {{"type", "boolean"}}}},
                   {"messages", "next_seq"}),
               true, false, true, fixed("pubsub.history"), nullptr, nullptr});
  t.push_back(
      {"shim_lock_acquire", "Take a lock",
       "Take a named lock so only you work on something. Keep the returned token: pass it to "
       "shim_lock_release, and as fence {lock, token} on writes that must not happen after you "
       "lost the lock. wait_ms waits for the holder; otherwise LOCK_HELD comes back at once.",
       Obj({{"name", Str("lock name")},
            {"owner", Str("who you are, e.g. your session id")},
            {"ttl_ms", Int("the lock frees itself after this many ms")},
            {"wait_ms", Int("wait up to this long if held")}},
           {"name", "owner", "ttl_ms"}),
       Obj({{"token", {{"type", "integer"}}}, {"expires_at_ms", {{"type", "integer"}}}}, {"token"}),
       false, false, false, fixed("lock.acquire"), nullptr, nullptr});
  t.push_back({"shim_lock_release", "Release a lock",
               "Release a lock you hold, with the token you got.",
               Obj({{"name", Str("lock name")}, {"token", Int("the token from shim_lock_acquire")}},
                   {"name", "token"}),
               Obj({{"ok", {{"type", "boolean"}}}}, {"ok"}), false, false, true,
               fixed("lock.release"), nullptr, nullptr});
  t.push_back(
      {"shim_task_submit", "Submit tasks for workers",
       "As a supervisor, split work into tasks. Either give one task's fields, or `tasks`: a list "
       "of task objects submitted atomically, which may refer to each other by `ref` in depends_on "
       "and parent_id (a parent with aggregate completes by itself when its children do).",
       [] {
         json props = TaskFields();
         props["tasks"] = {{"type", "array"},
                           {"items", Closed(Obj(TaskFields(), {"queue"}))},
                           {"description", "several tasks at once"}};
         return Obj(props);
       }(),
       Obj({{"task_id", {{"type", "string"}}},
            {"state", {{"type", "string"}}},
            {"task_ids", {{"type", "array"}, {"items", {{"type", "string"}}}}}}),
       false, false, false,
       [](const json& a) {
         return std::string(a.contains("tasks") ? "task.submit_batch" : "task.submit");
       },
       nullptr, nullptr});
  t.push_back(
      {"shim_task_claim", "Take tasks to work on",
       "As a worker, take the next task(s) from the queues. Keep lease_token: shim_task_complete "
       "and shim_task_fail need it. wait_ms waits for work instead of returning empty.",
       Obj({{"queues", {{"type", "array"}, {"items", {{"type", "string"}}}}},
            {"worker_id", Str("your worker id (from shim_worker_register)")},
            {"max", Int("how many tasks at most, default 1")},
            {"wait_ms", Int("wait up to this long for a task")}},
           {"queues", "worker_id"}),
       Obj({{"tasks", ClaimedTasksSchema()}}, {"tasks"}), false, false, false, fixed("task.claim"),
       nullptr, nullptr});
  t.push_back(
      {"shim_task_complete", "Finish a task with its result",
       "Report a claimed task done, with its result (any JSON). To take your next task in the same "
       "call, pass claim_next: {queues: [...]}; it comes back in tasks (empty if none was ready).",
       Obj({{"task_id", Str("task id")},
            {"lease_token", Int("from shim_task_claim")},
            {"result", AnyJson("the result")},
            {"claim_next", ClaimNextSchema()}},
           {"task_id", "lease_token"}),
       Obj({{"ok", {{"type", "boolean"}}},
            {"tasks", ClaimedTasksSchema()},
            {"claim_error", {{"type", "object"}}}},
           {"ok"}),
       false, false, false, fixed("task.complete"), nullptr, nullptr});
  t.push_back({"shim_task_fail", "Report a task failed",
               "Report a claimed task failed. It is retried with backoff while attempts remain, "
               "unless retry=false (for errors retrying cannot fix).",
               Obj({{"task_id", Str("task id")},
                    {"lease_token", Int("from shim_task_claim")},
                    {"error", Str("what went wrong")},
                    {"retry", Bool("retry later (default true)")},
                    {"claim_next", ClaimNextSchema()}},
                   {"task_id", "lease_token", "error"}),
               Obj({{"state", {{"type", "string"}}},
                    {"next_run_at_ms", Nullable("integer")},
                    {"tasks", ClaimedTasksSchema()},
                    {"claim_error", {{"type", "object"}}}},
                   {"state"}),
               false, false, false, fixed("task.fail"), nullptr, nullptr});
  t.push_back(
      {"shim_task_status", "Look at a task",
       "A task's state, attempts, result or error, and for a parent its children's results.",
       Obj({{"task_id", Str("task id")}}, {"task_id"}),
       Obj({{"task_id", {{"type", "string"}}}, {"state", {{"type", "string"}}}},
           {"task_id", "state"}),
       true, false, true, fixed("task.get"), nullptr, nullptr});
  t.push_back({"shim_queue_stats", "Look at a queue",
               "Counts by state, workers, throughput, waiting times and health (starving, "
               "saturated, reasons).",
               Obj({{"queue", Str("queue name")}}, {"queue"}),
               Obj({{"queue", {{"type", "string"}}},
                    {"counts", {{"type", "object"}}},
                    {"health", {{"type", "object"}}}},
                   {"queue", "counts", "health"}),
               true, false, true, fixed("queue.stats"), nullptr, nullptr});
  t.push_back({"shim_worker_register", "Register as a worker",
               "Register this chat as a worker before claiming tasks; capabilities decide which "
               "tasks you can get. Returns your worker_id.",
               Obj({{"worker_id", Str("a stable id (optional)")},
                    {"name", Str("display name")},
                    {"capabilities", {{"type", "array"}, {"items", {{"type", "string"}}}}},
                    {"max_concurrency", Int("tasks at once, default 1")},
                    {"heartbeat_ttl_ms",
                     Int("declared dead after this long without contact, default 15000")}}),
               Obj({{"worker_id", {{"type", "string"}}}}, {"worker_id"}), false, false, true,
               fixed("worker.register"), nullptr, nullptr});
  // Every tool's arguments are a closed set, as every method's params are
  // (docs/protocol.md): a misspelt optional argument is refused, not
  // silently dropped. Nested objects of a fixed shape are closed above;
  // signals stay open (other keys are stored, not scored).
  for (McpTool& tool : t) tool.input_schema = Closed(std::move(tool.input_schema));
  return t;
}

// `value` against `schema` where the schema closes an object. The schemas
// are this file's, at most three levels deep: the recursion follows them,
// never deeper than they go, however deep the client's value is.
Status CheckClosed(const json& schema, const json& value, const std::string& path) {
  const auto type_it = schema.find("type");
  const std::string type =
      type_it != schema.end() && type_it->is_string() ? type_it->get<std::string>() : "";
  if (type == "array" && value.is_array() && schema.contains("items")) {
    for (size_t i = 0; i < value.size(); ++i) {
      SHIM_RETURN_IF_ERROR(
          CheckClosed(schema["items"], value[i], path + "[" + std::to_string(i) + "]"));
    }
    return Status::Ok();
  }
  if (type != "object" || !value.is_object() || !schema.contains("properties")) {
    return Status::Ok();
  }
  const json& properties = schema["properties"];
  const std::string prefix = path.empty() ? "" : path + ".";
  if (auto closed = schema.find("additionalProperties");
      closed != schema.end() && *closed == false) {
    std::vector<std::string_view> names;
    for (auto it = properties.begin(); it != properties.end(); ++it) names.push_back(it.key());
    SHIM_RETURN_IF_ERROR(engine::CheckKnownFields(value, names, prefix));
  }
  for (auto it = value.begin(); it != value.end(); ++it) {
    if (auto p = properties.find(it.key()); p != properties.end()) {
      SHIM_RETURN_IF_ERROR(CheckClosed(*p, *it, prefix + it.key()));
    }
  }
  return Status::Ok();
}

}  // namespace

json McpTool::Definition() const {
  return json{{"name", name},
              {"title", title},
              {"description", description},
              {"inputSchema", input_schema},
              {"outputSchema", output_schema},
              {"annotations",
               {{"title", title},
                {"readOnlyHint", read_only},
                {"destructiveHint", destructive},
                {"idempotentHint", idempotent},
                {"openWorldHint", false}}}};
}

const std::vector<McpTool>& McpTools() {
  static const std::vector<McpTool> tools = Build();
  return tools;
}

const McpTool* FindMcpTool(const std::string& name) {
  for (const auto& t : McpTools()) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

Status CheckToolArguments(const McpTool& tool, const json& args) {
  return CheckClosed(tool.input_schema, args, "");
}

json McpToolError(const Status& s) {
  const std::string reason(StatusCodeReason(s.code()));
  json details = s.details().is_object() ? s.details() : json::object();
  std::string text = reason + ": " + s.message();
  if (details.contains("field") && details["field"].is_string()) {
    text += " (field: " + details["field"].get<std::string>() + ")";
  }
  text += "\nHint: ";
  text += ErrorRowFor(s.code()).mcp_hint;
  return json{{"content", json::array({json{{"type", "text"}, {"text", text}}})},
              {"isError", true}};
}

}  // namespace shim::net
