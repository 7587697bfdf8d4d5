// Client subcommands: call, state, pub, tail, info. Each connects to the
// server's socket (--socket, else $SHIM_SOCKET, else $SHIM_HOME/shim.sock),
// prints readable output by default and the raw JSON result with --json.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "base/json_text.h"
#include "cli/client_util.h"
#include "cli/commands.h"
#include "cli/human_units.h"
#include "cli/paths.h"
#include "engine/json_parse.h"
#include "net/line_client.h"

namespace shim::cli {

namespace {
using nlohmann::json;
}  // namespace

int RunCall(const ParsedArgs& args) {
  json params = json::object();
  if (args.positional().size() == 2 || args.Get("file")) {
    auto text = ValueText(args, args.positional().size() == 2 ? &args.positional()[1] : nullptr,
                          "PARAMS_JSON");
    if (!text.ok()) return UsageError(args, text.status().message());
    Result<json> parsed = ParseJson(*text);
    if (!parsed.ok()) {
      std::fprintf(stderr, "shim call: PARAMS_JSON: %s\n", parsed.status().message().c_str());
      return kExitUsage;
    }
    params = std::move(parsed).value();
    if (!params.is_object()) {
      std::fprintf(stderr, "shim call: PARAMS_JSON must be a JSON object\n");
      return kExitUsage;
    }
  }
  auto client = ConnectOrReport(args, "call");
  if (!client) return kExitNoServer;
  auto r = client->Call(args.positional()[0], params, TimeoutMs(args));
  if (!r.ok()) return PrintError("call", r.status());
  std::cout << (args.Flag("json") ? DumpCompact(*r) : r->dump(2)) << "\n";
  return kExitOk;
}

int RunState(const ParsedArgs& args) {
  const auto& pos = args.positional();
  const std::string verb = args.verb();
  json params = json::object();
  if (!pos.empty()) params["key"] = pos[0];
  long long n = 0;
  if (verb == "set") {
    auto value = ValueArg(args, pos.size() > 1 ? &pos[1] : nullptr, "VALUE");
    if (!value.ok()) return UsageError(args, value.status().message());
    params["value"] = std::move(value).value();
    if (args.GetInt("ttl-ms", &n) && args.Get("ttl-ms")) params["ttl_ms"] = n;
  } else if (verb == "list") {
    params.erase("key");
    params["prefix"] = pos.empty() ? "" : pos[0];
    if (args.GetInt("limit", &n) && args.Get("limit")) params["limit"] = n;
    if (auto after = args.Get("after")) params["after"] = *after;
  }
  if (args.GetInt("expected-version", &n) && args.Get("expected-version"))
    params["expected_version"] = n;
  const std::string method = "state." + verb;
  auto client = ConnectOrReport(args, "state");
  if (!client) return kExitNoServer;
  // --all: the server ends a page at its limit or reply budget; read on
  // from each page's `next` until there is none.
  auto r = verb == "list" && args.Flag("all")
               ? CallAllPages(*client, method, params, "items", TimeoutMs(args))
               : client->Call(method, params, TimeoutMs(args));
  if (!r.ok()) return PrintError("state", r.status());
  if (PrintedAsJson(args, *r)) return kExitOk;
  if (verb == "get") {
    if (r->is_null()) {
      std::fprintf(stderr, "(no key '%s')\n", pos[0].c_str());
      return kExitServerError;
    }
    const json& value = (*r)["value"];
    std::cout << (args.Flag("raw") && value.is_string() ? value.get<std::string>() : value.dump(2))
              << "\n";
  } else if (verb == "set") {
    std::cout << "ok: version " << (*r)["version"] << ", revision " << (*r)["revision"] << "\n";
  } else if (verb == "del") {
    std::cout << ((*r)["deleted"].get<bool>() ? "deleted" : "not found") << "\n";
  } else {
    for (const auto& item : (*r)["items"]) {
      std::cout << item["key"].get<std::string>() << "\tv" << item["version"] << "\t"
                << DumpCompact(item["value"]) << "\n";
    }
    if (!(*r)["next"].is_null())
      std::cout << "(more: --after " << DumpCompact((*r)["next"]) << ")\n";
  }
  return kExitOk;
}

int RunPub(const ParsedArgs& args) {
  const auto& pos = args.positional();
  auto data = ValueArg(args, pos.size() > 1 ? &pos[1] : nullptr, "DATA");
  if (!data.ok()) return UsageError(args, data.status().message());
  auto client = ConnectOrReport(args, "pub");
  if (!client) return kExitNoServer;
  auto r = client->Call("pubsub.publish", {{"channel", pos[0]}, {"data", std::move(data).value()}},
                        TimeoutMs(args));
  if (!r.ok()) return PrintError("pub", r.status());
  if (args.Flag("json")) {
    std::cout << DumpCompact(*r) << "\n";
  } else {
    std::cout << "seq " << (*r)["seq"] << " (delivered to " << (*r)["delivered"] << ")\n";
  }
  return kExitOk;
}

int RunTail(const ParsedArgs& args) {
  long long from_seq = 0, count = -1;
  args.GetInt("from", &from_seq);
  args.GetInt("count", &count);
  const std::string& target = args.positional()[0];
  const bool pattern = target.find_first_of("*?[") != std::string::npos;
  auto client = ConnectOrReport(args, "tail");
  if (!client) return kExitNoServer;

  auto subscribe = [&](long long from) -> Status {
    json params = {{pattern ? "pattern" : "channel", target}};
    if (from > 0) params["from_seq"] = from;
    auto r = client->Call("pubsub.subscribe", params, TimeoutMs(args));
    return r.ok() ? Status::Ok() : r.status();
  };
  if (Status s = subscribe(from_seq); !s.ok()) return PrintError("tail", s);
  long long seen = 0;
  while (count < 0 || seen < count) {
    auto n = client->NextNotification(24 * 3600 * 1000);
    if (!n.ok()) {
      if (n.status().code() == StatusCode::kTimeout) continue;
      return PrintError("tail", n.status());
    }
    const json& params = (*n)["params"];
    if ((*n)["method"] == "pubsub.dropped") {
      // Too slow: pick up right after the last message we were given.
      if (Status s = subscribe(params["last_seq"].get<long long>() + 1); !s.ok())
        return PrintError("tail", s);
      continue;
    }
    if ((*n)["method"] != "pubsub.message") continue;
    ++seen;
    if (args.Flag("json")) {
      std::cout << DumpCompact(params) << std::endl;
    } else {
      std::cout << "[" << params["channel"].get<std::string>() << " #" << params["seq"] << "] "
                << DumpCompact(params["data"]) << std::endl;
    }
  }
  return kExitOk;
}

int RunInfo(const ParsedArgs& args) {
  auto client = ConnectOrReport(args, "info");
  if (!client) return kExitNoServer;
  auto info = client->Call("sys.info", json::object(), TimeoutMs(args));
  if (!info.ok()) return PrintError("info", info.status());
  auto stats = client->Call("sys.stats", json::object(), TimeoutMs(args));
  if (!stats.ok()) return PrintError("info", stats.status());
  if (PrintedAsJson(args, json{{"info", *info}, {"stats", *stats}})) return kExitOk;
  const json& i = *info;
  const json& e = (*stats)["engine"];
  const json& listen = i.value("listen", json());
  const json& log_file = i.value("log_file", json());
  std::cout << "shim " << i["version"].get<std::string>() << " (protocol " << i["protocol"] << ")\n"
            << "  pid          " << i.value("pid", json("?")) << "\n"
            << "  log          "
            << (log_file.is_string() ? log_file.get<std::string>() : "stderr (no --log-file)")
            << "\n"
            << "  socket       " << i["socket"].get<std::string>() << "\n"
            << "  tcp          "
            << (listen.is_string() ? listen.get<std::string>() +
                                         (i.value("tcp_auth", false) ? " (token required)" : "")
                                   : "off")
            << "\n"
            << "  data         " << i["data_dir"].get<std::string>() << "\n"
            << "  durability   " << i["durability"].get<std::string>() << "\n"
            << "  uptime       " << FormatDuration(i["uptime_ms"].get<int64_t>()) << "\n"
            << "  revision     " << i["revision"] << "\n"
            << "  connections  " << i["connections"] << "\n"
            << "  keys         " << e["keys"] << "\n"
            << "  channels     " << e["channels"] << " (" << e["subscriptions"]
            << " subscriptions)\n"
            << "  tasks        " << e["tasks"] << "\n"
            << "  workers      " << e["workers"] << " (" << e["workers_alive"] << " alive)\n"
            << "  sessions     " << e["sessions"] << "\n"
            << "  commits      " << e["commit_groups"] << " groups, mean "
            << e["commit_mean_group_size"].get<double>() << " writes each, " << e["fsyncs"]
            << " fsyncs\n"
            << "  store size   " << FormatBytes(e["store_size_bytes"].get<uint64_t>()) << "\n";
  if (const json& ro = i.value("read_only", json()); ro.is_object()) {
    std::cout << "  READ-ONLY    since " << ro.value("since_ms", int64_t{0})
              << " ms (wall clock): " << ro.value("cause", std::string()) << "\n"
              << "               writes are refused until the server is restarted\n";
  }
  return kExitOk;
}

int RunLock(const ParsedArgs& args) {
  const auto& pos = args.positional();
  const bool status = args.verb() == "status";
  auto client = ConnectOrReport(args, "lock");
  if (!client) return kExitNoServer;
  auto r = status ? client->Call("lock.status", {{"name", pos[0]}}, TimeoutMs(args))
                  : CallAllPages(*client, "lock.list", json::object(), "locks", TimeoutMs(args));
  if (!r.ok()) return PrintError("lock", r.status());
  if (PrintedAsJson(args, *r)) return kExitOk;
  json locks = status ? json::array({*r}) : (*r)["locks"];
  if (locks.empty()) std::cout << "(no locks held)\n";
  for (const auto& l : locks) {
    if (!l["held"].get<bool>()) {
      std::cout << l["name"].get<std::string>() << ": free";
    } else {
      std::cout << l["name"].get<std::string>() << ": held by " << l["owner"].get<std::string>()
                << ", token " << l["token"] << ", expires in "
                << (l["expires_at_ms"].get<int64_t>() - WallNowMs()) << " ms";
    }
    std::cout << ", " << l["waiters"] << " waiting\n";
  }
  return kExitOk;
}

int RunWorkers(const ParsedArgs& args) {
  auto client = ConnectOrReport(args, "workers");
  if (!client) return kExitNoServer;
  json params = json::object();
  if (auto cap = args.Get("capability")) params["capability"] = *cap;
  auto r = CallAllPages(*client, "worker.list", params, "workers", TimeoutMs(args));
  if (!r.ok()) return PrintError("workers", r.status());
  if (PrintedAsJson(args, *r)) return kExitOk;
  if ((*r)["workers"].empty()) std::cout << "(no workers registered)\n";
  for (const auto& w : (*r)["workers"]) {
    std::string caps;
    for (const auto& cap : w["capabilities"])
      caps += (caps.empty() ? "" : ",") + cap.get<std::string>();
    std::cout << w["worker_id"].get<std::string>() << "\t" << w["name"].get<std::string>() << "\t"
              << w["status"].get<std::string>() << "\t" << w["active_tasks"] << "/"
              << w["max_concurrency"] << "\t[" << caps << "]\tlast heartbeat "
              << (WallNowMs() - w["last_heartbeat_at_ms"].get<int64_t>()) / 1000 << " s ago\n";
  }
  return kExitOk;
}

int RunLeases(const ParsedArgs& args) {
  auto client = ConnectOrReport(args, "leases");
  if (!client) return kExitNoServer;
  auto r = CallAllPages(*client, "lease.list", json::object(), "leases", TimeoutMs(args));
  if (!r.ok()) return PrintError("leases", r.status());
  if (PrintedAsJson(args, *r)) return kExitOk;
  if ((*r)["leases"].empty()) std::cout << "(no live leases)\n";
  for (const auto& l : (*r)["leases"]) {
    std::cout << l["lease_id"] << "\t" << l["owner"].get<std::string>() << "\tttl " << l["ttl_ms"]
              << " ms\texpires in " << (l["expires_at_ms"].get<int64_t>() - WallNowMs()) << " ms\n";
  }
  return kExitOk;
}

}  // namespace shim::cli
