#include "net/method_table.h"

#include <algorithm>
#include <cassert>

#include "net/mcp_adapter.h"
#include "net/server_stats.h"

namespace shim::net {

MethodTable::MethodTable(const engine::Engine& engine) {
  for (const auto& [name, method] : engine.Methods()) {
    Add({.name = std::string(name),
         .home = MethodHome::kEngine,
         .writes = method->writes(),
         .answers_encoded = method->answers_encoded(),
         .stats_name = std::string(name),
         .engine_method = method});
  }
  Add({.name = "sys.auth",
       .home = MethodHome::kServer,
       .before_auth = true,
       .stats_name = "sys.auth"});
  Add({.name = "sys.info", .home = MethodHome::kServer, .stats_name = "sys.info"});
  Add({.name = "sys.stats", .home = MethodHome::kServer, .stats_name = "sys.stats"});
  Add({.name = "sys.shutdown",
       .home = MethodHome::kServer,
       .unix_socket_only = true,
       .stats_name = "sys.shutdown"});
  for (std::string_view m : McpAdapter::KnownMethods()) {
    const bool notification = m.starts_with("notifications/");
    Add({.name = std::string(m),
         .home = MethodHome::kMcp,
         .notification = notification,
         .stats_name = McpAdapter::StatsName(m)});
  }
  // Unknown notifications get no stats entry of their own: one name per
  // distinct method would let a client grow the stats table.
  Add({.name = std::string(kAnyMcpNotification),
       .home = MethodHome::kMcp,
       .notification = true,
       .stats_name = std::string(ServerStats::kOtherMethods)});
}

void MethodTable::Add(MethodEntry entry) {
  const bool added = entries_.emplace(entry.name, entry).second;
  assert(added && "a method registered twice");
  (void)added;
}

const MethodEntry* MethodTable::Find(std::string_view method) const {
  if (auto it = entries_.find(method); it != entries_.end()) return &it->second;
  if (method.starts_with("notifications/")) return &entries_.find(kAnyMcpNotification)->second;
  return nullptr;
}

std::vector<const MethodEntry*> MethodTable::All() const {
  std::vector<const MethodEntry*> out;
  out.reserve(entries_.size());
  for (const auto& [name, entry] : entries_) out.push_back(&entry);
  std::sort(out.begin(), out.end(),
            [](const MethodEntry* a, const MethodEntry* b) { return a->name < b->name; });
  return out;
}

}  // namespace shim::net
