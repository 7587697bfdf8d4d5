// `shim task submit|get|list|cancel|retry` and `shim queues`.
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "base/json_text.h"
#include "cli/client_util.h"
#include "cli/commands.h"

namespace shim::cli {
namespace {

using nlohmann::json;

void PrintTask(const json& t) {
  std::cout << t["task_id"].get<std::string>() << "  " << t["state"].get<std::string>()
            << "  queue " << t["queue"].get<std::string>() << "  priority " << t["priority"]
            << "  attempt " << t["attempt"] << "/" << t["max_attempts"] << "\n";
  if (t.contains("payload")) std::cout << "  payload: " << DumpCompact(t["payload"]) << "\n";
  if (t.contains("result")) std::cout << "  result:  " << DumpCompact(t["result"]) << "\n";
  if (t.contains("error")) std::cout << "  error:   " << t["error"].get<std::string>() << "\n";
  if (t.contains("progress")) std::cout << "  progress: " << DumpCompact(t["progress"]) << "\n";
  if (!t["depends_on"].empty())
    std::cout << "  depends on: " << DumpCompact(t["depends_on"]) << "\n";
  if (t.contains("children_results")) {
    for (const auto& c : t["children_results"]) {
      std::cout << "  child " << c["task_id"].get<std::string>() << " "
                << (c["state"].is_null() ? "(removed)" : c["state"].get<std::string>()) << " "
                << DumpCompact(c["result"]) << "\n";
    }
  }
  for (const auto& a : t["attempts"]) {
    std::cout << "  attempt by " << a["worker_id"].get<std::string>();
    if (a.contains("error")) std::cout << ": " << a["error"].get<std::string>();
    std::cout << "\n";
  }
}

}  // namespace

int RunTask(const ParsedArgs& args) {
  const auto& pos = args.positional();
  const std::string verb = args.verb();
  json params = json::object();
  const std::string method = "task." + verb;
  long long n;
  if (verb == "submit") {
    auto payload = ValueArg(args, pos.size() > 1 ? &pos[1] : nullptr, "PAYLOAD");
    if (!payload.ok()) return UsageError(args, payload.status().message());
    params = {{"queue", pos[0]}, {"payload", std::move(payload).value()}};
    for (auto [opt, field] :
         {std::pair{"priority", "priority"}, std::pair{"delay-ms", "delay_ms"},
          std::pair{"max-attempts", "max_attempts"}, std::pair{"timeout-ms", "timeout_ms"}}) {
      if (args.Get(opt) && args.GetInt(opt, &n)) params[field] = n;
    }
    if (args.Get("depends-on")) params["depends_on"] = args.GetList("depends-on");
    if (args.Get("requires")) params["requires"] = args.GetList("requires");
    if (auto v = args.Get("idempotency-key")) params["idempotency_key"] = *v;
  } else if (verb == "list") {
    params["queue"] = pos[0];
    if (auto v = args.Get("state")) params["state"] = *v;
    if (auto v = args.Get("after")) params["after"] = *v;
    if (args.Get("limit") && args.GetInt("limit", &n)) params["limit"] = n;
  } else {
    params["task_id"] = pos[0];
  }
  auto client = ConnectOrReport(args, "task");
  if (!client) return kExitNoServer;

  const bool wait = verb == "submit" && args.Flag("wait");
  if (wait) {
    // Subscribe before submitting so the finishing event cannot be missed.
    auto sub = client->Call("pubsub.subscribe", {{"channel", "events." + pos[0]}}, TimeoutMs(args));
    if (!sub.ok()) return PrintError("task", sub.status());
  }
  auto r = client->Call(method, params, TimeoutMs(args));
  if (!r.ok()) return PrintError("task", r.status());
  if (wait) {
    const std::string id = (*r)["task_id"];
    for (;;) {
      auto n = client->NextNotification(24 * 3600 * 1000);
      if (!n.ok()) return PrintError("task", n.status());
      const json& ev = (*n)["params"]["data"];
      if ((*n)["method"] != "pubsub.message" || ev.value("task_id", "") != id) continue;
      const std::string type = ev.value("type", "");
      if (type != "completed" && type != "failed" && type != "cancelled") continue;
      if (args.Flag("json")) {
        std::cout << DumpCompact(ev) << "\n";
      } else if (type == "completed") {
        std::cout << ev["result"].dump(2) << "\n";
      } else {
        std::cerr << "shim task: " << id << " " << type << ": "
                  << ev.value("error", ev.value("reason", "")) << "\n";
      }
      return type == "completed" ? kExitOk : kExitServerError;
    }
  }
  if (PrintedAsJson(args, *r)) return kExitOk;
  if (verb == "submit") {
    std::cout << (*r)["task_id"].get<std::string>() << " " << (*r)["state"].get<std::string>()
              << ((*r).value("existing", false) ? " (existing task, same idempotency key)" : "")
              << "\n";
  } else if (verb == "get") {
    PrintTask(*r);
  } else if (verb == "list") {
    for (const auto& t : (*r)["tasks"]) {
      std::cout << t["task_id"].get<std::string>() << "\t" << t["state"].get<std::string>() << "\tp"
                << t["priority"] << "\tattempt " << t["attempt"] << "/" << t["max_attempts"]
                << "\n";
    }
    if (!(*r)["next"].is_null())
      std::cout << "(more: --after " << (*r)["next"].get<std::string>() << ")\n";
  } else {
    std::cout << pos[0] << " " << (*r)["state"].get<std::string>() << "\n";
  }
  return kExitOk;
}

int RunQueues(const ParsedArgs& args) {
  auto client = ConnectOrReport(args, "queues");
  if (!client) return kExitNoServer;
  auto list = CallAllPages(*client, "queue.list", json::object(), "queues", TimeoutMs(args));
  if (!list.ok()) return PrintError("queues", list.status());
  json all = json::array();
  for (const auto& q : (*list)["queues"]) {
    auto stats = client->Call("queue.stats", {{"queue", q["queue"]}}, TimeoutMs(args));
    if (!stats.ok()) return PrintError("queues", stats.status());
    all.push_back(*stats);
  }
  if (PrintedAsJson(args, json{{"queues", all}})) return kExitOk;
  if (all.empty()) {
    std::cout << "(no queues yet: they are created when a task is submitted)\n";
    return kExitOk;
  }
  const char* columns[] = {"waiting",   "delayed", "ready",    "running",
                           "completed", "failed",  "cancelled"};
  std::cout << std::left << std::setw(20) << "QUEUE";
  for (const char* c : columns) std::cout << std::right << std::setw(10) << c;
  std::cout << "  HEALTH\n";
  for (const auto& s : all) {
    std::cout << std::left << std::setw(20) << s["queue"].get<std::string>();
    for (const char* c : columns)
      std::cout << std::right << std::setw(10) << s["counts"][c].get<int64_t>();
    const json& h = s["health"];
    std::string health = h["starving"].get<bool>() ? "STARVING" : "";
    if (h["saturated"].get<bool>()) health += health.empty() ? "SATURATED" : ",SATURATED";
    if (s["paused"].get<bool>()) health += health.empty() ? "paused" : ",paused";
    std::cout << "  " << (health.empty() ? "ok" : health);
    for (const auto& r : h["reasons"]) std::cout << "; " << r.get<std::string>();
    std::cout << "\n";
  }
  return kExitOk;
}

}  // namespace shim::cli
