#include "net/line_client.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "base/json_text.h"
#include "engine/json_parse.h"
#include "net/jsonrpc.h"

namespace shim::net {

using nlohmann::json;

namespace {

Status Errno(const std::string& what) {
  return Status::Internal(what + ": " + std::strerror(errno));
}

StatusCode CodeFromReason(std::string_view reason) {
  for (const ErrorRow& row : kErrorTable) {
    if (row.reason == reason) return row.code;
  }
  // A reason this client does not know (a newer server's).
  return StatusCode::kInternal;
}

}  // namespace

Result<std::unique_ptr<LineClient>> LineClient::ConnectUnix(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path))
    return Status::InvalidParams("socket", "socket path too long: " + path);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    ::close(fd);
    if (err == ENOENT || err == ECONNREFUSED) {
      return Status::Internal("no shim server is running at " + path +
                              " (start one with `shim serve`)");
    }
    errno = err;
    return Errno("connect " + path);
  }
  return std::unique_ptr<LineClient>(new LineClient(fd));
}

Result<std::unique_ptr<LineClient>> LineClient::ConnectTcp(const std::string& host_port) {
  auto colon = host_port.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return Status::InvalidParams("address", "want HOST:PORT");
  std::string host = host_port.substr(0, colon);
  const std::string port = host_port.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host == "localhost") host = "127.0.0.1";
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return Status::InvalidParams("address",
                                 "cannot resolve " + host_port + ": " + ::gai_strerror(rc));
  }
  Status last = Status::Internal("connect " + host_port + ": no address");
  for (addrinfo* ai = found; ai; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last = Errno("socket");
      continue;
    }
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      last = Errno("connect " + host_port);
      ::close(fd);
      continue;
    }
    ::freeaddrinfo(found);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return std::unique_ptr<LineClient>(new LineClient(fd));
  }
  ::freeaddrinfo(found);
  return last;
}

LineClient::~LineClient() {
  if (fd_ >= 0) ::close(fd_);
}

Status SendAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("send");
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Status LineClient::SendRaw(std::string_view bytes) { return SendAll(fd_, bytes); }

Result<std::string> LineClient::ReadLine(int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Status(StatusCode::kTimeout, "no reply from the server in time");
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno != EINTR) return Errno("poll");
    if (r <= 0) continue;
    char chunk[65536];
    ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("recv");
    }
    if (n == 0) return Status::Internal("the server closed the connection");
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

Result<json> LineClient::ReadMessage(int timeout_ms) {
  SHIM_ASSIGN_OR_RETURN(std::string line, ReadLine(timeout_ms));
  Result<json> message = ParseJson(line, kMaxShimJsonDepth);
  if (!message.ok())
    return Status::Internal("the server sent a line shim cannot read: " +
                            message.status().message());
  return message;
}

Result<uint64_t> LineClient::SendRequest(std::string_view method, const json& params) {
  const uint64_t id = next_id_++;
  SHIM_RETURN_IF_ERROR(SendRaw(EncodeLine(RequestMessage(id, method, params))));
  return id;
}

Result<json> LineClient::ReadResponse(uint64_t id, int timeout_ms) {
  for (auto it = responses_.begin(); it != responses_.end(); ++it) {
    if ((*it)["id"] == id) {
      json r = std::move(*it);
      responses_.erase(it);
      return r;
    }
  }
  for (;;) {
    SHIM_ASSIGN_OR_RETURN(json message, ReadMessage(timeout_ms));
    if (message.is_object() && !message.contains("id")) {
      notifications_.push_back(std::move(message));
      continue;
    }
    if (message.is_object() && message["id"] == id) return message;
    responses_.push_back(std::move(message));
  }
}

Result<json> LineClient::Unwrap(const json& response) {
  if (!response.is_object()) return Status::Internal("unexpected reply: " + DumpCompact(response));
  if (auto it = response.find("result"); it != response.end()) return *it;
  const json& error = response.value("error", json::object());
  json data = error.value("data", json::object());
  std::string reason = data.value("reason", "INTERNAL");
  return Status(CodeFromReason(reason), error.value("message", "error"), data);
}

Result<json> LineClient::Call(std::string_view method, const json& params, int timeout_ms) {
  SHIM_ASSIGN_OR_RETURN(uint64_t id, SendRequest(method, params));
  SHIM_ASSIGN_OR_RETURN(json response, ReadResponse(id, timeout_ms));
  return Unwrap(response);
}

Result<json> LineClient::NextNotification(int timeout_ms) {
  if (!notifications_.empty()) {
    json n = std::move(notifications_.front());
    notifications_.pop_front();
    return n;
  }
  for (;;) {
    SHIM_ASSIGN_OR_RETURN(json message, ReadMessage(timeout_ms));
    if (message.is_object() && !message.contains("id")) return message;
    responses_.push_back(std::move(message));
  }
}

}  // namespace shim::net
