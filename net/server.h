// Server: the listeners (Unix socket, optional loopback TCP), the set of
// live sessions, the sys.info / sys.stats methods that describe the server
// itself, and orderly shutdown (on a signal or sys.shutdown). io thread
// only.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/status.h"
#include "engine/engine.h"
#include "net/asio.h"
#include "net/engine_host.h"
#include "net/mcp_adapter.h"
#include "net/method_table.h"
#include "net/server_options.h"
#include "net/server_stats.h"

namespace shim::net {

class Session;

class Server {
 public:
  Server(asio::io_context& io, EngineHost& host, ServerOptions options);
  ~Server();

  // Checks options that can be judged before binding anything: the
  // socket's directory is private (creating it if missing), the --listen
  // address parses, and a non-loopback one comes with an auth token.
  // Errors: INVALID_PARAMS or INTERNAL with a message for the operator.
  static Status ValidateOptions(const ServerOptions& options);

  // Binds the Unix socket (mode 0600, in a private directory: see
  // PrepareSocketDirectory in net/access.h; a stale socket file is replaced
  // only when no server answers on it) and the TCP listener if configured,
  // and starts accepting. Errors: INVALID_PARAMS for a bad or forbidden
  // address, INTERNAL for a bind failure, a directory that is not private,
  // or a live server already on the socket.
  Status Start();
  // Stops accepting, answers new requests with SHUTTING_DOWN, waits until
  // the engine has committed everything in flight, flushes and closes every
  // session, then calls `done`.
  void Shutdown(std::function<void()> done);
  // What sys.shutdown runs, with "sys.shutdown" as `why`: the owner's own
  // stop path (shim serve's, which SIGTERM takes too), so that a stop asked
  // over the wire ends the process exactly as a signal does. Without one,
  // sys.shutdown calls Shutdown with nothing to do when it is done.
  void OnStopRequested(std::function<void(const std::string& why)> stop) {
    stop_requested_ = std::move(stop);
  }

  engine::Engine& engine() { return host_.engine(); }
  EngineHost& host() { return host_; }
  const ServerOptions& options() const { return options_; }
  ServerStats& stats() { return stats_; }
  McpAdapter& mcp() { return mcp_; }
  bool shutting_down() const { return shutting_down_; }
  size_t connection_count() const { return sessions_.size(); }
  // The TCP address actually bound ("127.0.0.1:40123" for --listen
  // 127.0.0.1:0); empty without TCP.
  const std::string& tcp_bound() const { return tcp_bound_; }

  // Every method of the wire, and who serves it.
  const MethodTable& methods() const { return methods_; }
  // True when `token` is the configured auth token (constant time); false
  // when none is configured.
  bool TokenMatches(std::string_view token) const;
  // sys.info, sys.stats and sys.shutdown (MethodHome::kServer, but for
  // sys.auth, which the session answers; the session also refuses
  // sys.shutdown over TCP, MethodEntry::unix_socket_only).
  Result<nlohmann::json> HandleLocal(std::string_view method, const nlohmann::json& params);

  void OnSessionClosed(uint64_t id);

 private:
  template <typename Acceptor>
  asio::awaitable<void> AcceptLoop(Acceptor& acceptor);
  Status BindUnix();
  Status BindTcp();
  void Admit(asio::generic::stream_protocol::socket socket, bool tcp);
  void PollShutdown();

  asio::io_context& io_;
  EngineHost& host_;
  ServerOptions options_;
  ServerStats stats_;
  McpAdapter mcp_;
  MethodTable methods_;
  std::unique_ptr<asio::local::stream_protocol::acceptor> unix_acceptor_;
  std::unique_ptr<asio::ip::tcp::acceptor> tcp_acceptor_;
  std::string tcp_bound_;  // the address actually bound ("127.0.0.1:40123" for port 0)
  std::map<uint64_t, std::shared_ptr<Session>> sessions_;
  uint64_t next_session_id_ = 1;
  bool shutting_down_ = false;
  std::function<void()> shutdown_done_;
  std::function<void(const std::string& why)> stop_requested_;
  std::chrono::steady_clock::time_point shutdown_deadline_;
  asio::steady_timer shutdown_timer_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace shim::net
