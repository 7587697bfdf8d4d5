// MethodTable: every method of the wire, registered once, with what each
// layer needs to route it.
//
// A request's method is looked up here once (Session::Dispatch); the entry
// says who serves it and how: the engine (its methods and their traits come
// from Engine::Methods, registered in engine/engine.cc), the server itself
// (sys.auth, sys.info, sys.stats, sys.shutdown) or the MCP adapter (its lifecycle methods
// and notifications, net/mcp_adapter.h). docs/protocol.md documents exactly
// the methods of this table (tests/net/method_table_test.cc checks it).
// Built once at server start; read-only afterwards.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/engine.h"

namespace shim::net {

enum class MethodHome {
  kEngine,  // engine::Engine::Execute
  kServer,  // net/server.cc, on the io thread
  kMcp,     // net/mcp_adapter.cc
};

struct MethodEntry {
  std::string name;
  MethodHome home = MethodHome::kEngine;
  // May change what is stored (engine::Engine::MethodTraits::writes).
  bool writes = false;
  // May answer with the result as text (engine::Engine::MethodTraits).
  bool answers_encoded = false;
  // May come before sys.auth on a connection that must authenticate
  // (only sys.auth itself); also served while shutting down.
  bool before_auth = false;
  // An MCP notification: never answered.
  bool notification = false;
  // Refused (FORBIDDEN) on a TCP connection, authenticated or not: only a
  // client with access to the server's Unix socket, i.e. its own user on
  // its own machine, may call it (sys.shutdown).
  bool unix_socket_only = false;
  // The name sys.stats counts it under ("mcp:<method>" for MCP methods).
  std::string stats_name;
  // kEngine: what Engine::Execute runs.
  const engine::Engine::Method* engine_method = nullptr;
};

class MethodTable {
 public:
  explicit MethodTable(const engine::Engine& engine);

  // The entry for `method`, or null (METHOD_NOT_FOUND). Any
  // `notifications/...` the MCP adapter does not know by name is an MCP
  // notification too (ignored, as the MCP specification allows): it gets
  // the `notifications/*` entry, which sys.stats counts under `(other)`.
  const MethodEntry* Find(std::string_view method) const;
  // Every entry, sorted by name.
  std::vector<const MethodEntry*> All() const;

  // The catch-all entry's name.
  static constexpr std::string_view kAnyMcpNotification = "notifications/*";

 private:
  void Add(MethodEntry entry);

  struct NameHash : std::hash<std::string_view> {
    using is_transparent = void;
  };
  std::unordered_map<std::string, MethodEntry, NameHash, std::equal_to<>> entries_;
};

}  // namespace shim::net
