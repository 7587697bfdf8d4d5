// Session: one client connection (Unix socket or TCP), JSON-RPC over lines.
//
// A reader coroutine splits the byte stream into lines (bounded by
// max_message_bytes: a longer line is answered TOO_LARGE and skipped to its
// newline), parses and dispatches each request to the engine; replies may
// complete out of order (waits do not block later requests). A writer
// coroutine drains a queue of encoded lines with one async_write in flight,
// gathering everything queued into that write.
//
// Slow clients: replies are never dropped; instead, while queued output
// exceeds max_outbound_bytes the reader stops handling lines (even within a
// chunk already read) and reading, so a client that does not read cannot
// make the server buffer without bound. Notifications are
// refused past that limit (Notify returns false), which the engine turns
// into a dropped subscription. io thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/client.h"
#include "net/asio.h"
#include "net/jsonrpc.h"

namespace shim::net {

class Server;

class Session final : public engine::Client, public std::enable_shared_from_this<Session> {
 public:
  using Socket = asio::generic::stream_protocol::socket;

  Session(Socket socket, Server& server, uint64_t id);
  void Start();
  // Closes the socket; pending replies are discarded. Idempotent.
  void Close();
  // Stops reading; closes once queued output is written (or after a grace).
  void CloseWhenFlushed();

  // engine::Client
  uint64_t id() const override { return id_; }
  bool Notify(std::string_view method, const nlohmann::json& params, bool force) override;
  bool closed() const override { return closed_; }

  size_t outbound_bytes() const { return outbox_bytes_; }

 private:
  asio::awaitable<void> ReadLoop();
  asio::awaitable<void> WriteLoop();
  // Returns once queued output is at most max_outbound_bytes (or the
  // session stops reading).
  asio::awaitable<void> WaitForDrain();
  void HandleLine(std::string_view line);
  // Dispatches one request; `done` receives the response (null for a
  // notification) exactly once.
  void HandleMessage(nlohmann::json message, std::function<void(nlohmann::json)> done);
  void Dispatch(Request req, std::function<void(nlohmann::json)> done);
  void Send(std::string line);
  // Closes once the client has half-closed, every request is answered and
  // all output is written.
  void MaybeFinish();

  Socket socket_;
  Server& server_;
  const uint64_t id_;
  bool closed_ = false;
  bool draining_ = false;      // CloseWhenFlushed was called
  bool reading_done_ = false;  // EOF from the client, or draining
  size_t pending_ = 0;         // requests not yet answered
  std::deque<std::string> outbox_;
  size_t outbox_bytes_ = 0;
  asio::steady_timer write_signal_;  // wakes the writer when output is queued
  asio::steady_timer drain_signal_;  // wakes the reader when output drains
};

}  // namespace shim::net
