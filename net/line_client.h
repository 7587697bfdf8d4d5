// LineClient: a small blocking JSON-RPC client over a Unix socket or
// loopback TCP, for the CLI, the end-to-end tests and `shim bench`.
//
// Requests get increasing integer ids; Call() waits for the response with
// that id, queuing any notifications that arrive first (NextNotification
// returns them in order). Pipelining: SendRequest() many, then
// ReadResponse() each. One thread per client.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/status.h"

namespace shim::net {

// Writes all of `bytes` to the blocking socket `fd`, retrying where a
// signal interrupted the send. Errors: INTERNAL with the OS reason.
Status SendAll(int fd, std::string_view bytes);

class LineClient {
 public:
  // Errors: INTERNAL with the OS reason (e.g. "no shim server is running
  // at PATH" when nothing listens).
  static Result<std::unique_ptr<LineClient>> ConnectUnix(const std::string& path);
  static Result<std::unique_ptr<LineClient>> ConnectTcp(const std::string& host_port);
  ~LineClient();
  LineClient(const LineClient&) = delete;
  LineClient& operator=(const LineClient&) = delete;

  // Sends one request and waits for its result. A JSON-RPC error becomes a
  // Status with the wire reason's code, message and `data` as details.
  Result<nlohmann::json> Call(std::string_view method,
                              const nlohmann::json& params = nlohmann::json::object(),
                              int timeout_ms = 30'000);

  // Pipelining: sends a request, returns its id.
  Result<uint64_t> SendRequest(std::string_view method, const nlohmann::json& params);
  // Reads messages until the response with `id` arrives (queuing notifications).
  Result<nlohmann::json> ReadResponse(uint64_t id, int timeout_ms = 30'000);

  // Next server notification, in arrival order.
  Result<nlohmann::json> NextNotification(int timeout_ms);

  // Raw access for tests: write bytes as they are; read the next line.
  Status SendRaw(std::string_view bytes);
  Result<nlohmann::json> ReadMessage(int timeout_ms);
  // Next line as raw text (without the newline).
  Result<std::string> ReadLine(int timeout_ms);

  int fd() const { return fd_; }
  // True when messages already read off the socket wait here: polling fd()
  // would not show them.
  bool HasBufferedMessages() const {
    return !notifications_.empty() || buffer_.find('\n') != std::string::npos;
  }
  // Converts a response envelope into a Result.
  static Result<nlohmann::json> Unwrap(const nlohmann::json& response);

 private:
  explicit LineClient(int fd) : fd_(fd) {}
  int fd_;
  std::string buffer_;
  std::deque<nlohmann::json> notifications_;
  std::deque<nlohmann::json> responses_;  // responses read while waiting for another id
  uint64_t next_id_ = 1;
};

}  // namespace shim::net
