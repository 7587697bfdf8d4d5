// `shim queue pause|resume|stats|drain|delete QUEUE`: one queue's controls
// (`shim queues` lists them all).
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "base/json_text.h"
#include "cli/client_util.h"
#include "cli/commands.h"

namespace shim::cli {

using nlohmann::json;

int RunQueue(const ParsedArgs& args) {
  const std::string verb = args.verb();
  const std::string& queue = args.positional()[0];
  json params = {{"queue", queue}};
  if (args.Flag("force")) params["force"] = true;
  auto client = ConnectOrReport(args, "queue");
  if (!client) return kExitNoServer;
  auto r = client->Call("queue." + verb, params, TimeoutMs(args));
  if (!r.ok()) return PrintError("queue", r.status());
  if (PrintedAsJson(args, *r)) return kExitOk;
  if (verb == "pause" || verb == "resume") {
    std::cout << queue << ((*r)["paused"].get<bool>() ? " paused" : " resumed") << "\n";
  } else if (verb == "drain" || verb == "delete") {
    std::cout << queue << (verb == "drain" ? " drained: " : " deleted: ") << (*r)["removed"]
              << " task(s) removed\n";
  } else {
    const json& s = *r;
    std::cout << queue << (s["paused"].get<bool>() ? " (paused)" : "") << "\n";
    for (const char* state :
         {"waiting", "delayed", "ready", "running", "completed", "failed", "cancelled"}) {
      std::cout << "  " << state << " " << s["counts"][state] << "\n";
    }
    std::cout << "  workers " << s["workers"] << ", completed/min " << s["completed_per_min"]
              << ", p50 wait " << s["p50_wait_ms"] << " ms, p50 run " << s["p50_run_ms"]
              << " ms, oldest ready " << s["oldest_ready_age_ms"] << " ms\n";
    const json& h = s["health"];
    std::cout << "  health "
              << (h["starving"].get<bool>() || h["saturated"].get<bool>() ? "NOT OK" : "ok");
    for (const auto& reason : h["reasons"]) std::cout << "; " << reason.get<std::string>();
    std::cout << "\n";
  }
  return kExitOk;
}

}  // namespace shim::cli
