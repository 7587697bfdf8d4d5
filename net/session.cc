#include "net/session.h"

#include "net/mcp_adapter.h"
#include "net/server.h"

namespace shim::net {

using nlohmann::json;
using boost::system::error_code;

namespace {
constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kMaxBuffersPerWrite = 256;
}  // namespace

Session::Session(Socket socket, Server& server, uint64_t id)
    : socket_(std::move(socket)),
      server_(server),
      id_(id),
      write_signal_(socket_.get_executor()),
      drain_signal_(socket_.get_executor()) {}

void Session::Start() {
  auto self = shared_from_this();
  asio::co_spawn(socket_.get_executor(), [self] { return self->ReadLoop(); }, asio::detached);
  asio::co_spawn(socket_.get_executor(), [self] { return self->WriteLoop(); }, asio::detached);
}

void Session::Close() {
  if (closed_) return;
  closed_ = true;
  error_code ec;
  socket_.shutdown(Socket::shutdown_both, ec);
  socket_.close(ec);
  write_signal_.cancel();
  drain_signal_.cancel();
  outbox_.clear();
  outbox_bytes_ = 0;
  server_.OnSessionClosed(id_);
}

void Session::CloseWhenFlushed() {
  if (closed_ || draining_) return;
  draining_ = true;
  reading_done_ = true;
  error_code ec;
  // Wakes the reader with EOF; queued output still goes out.
  socket_.shutdown(Socket::shutdown_receive, ec);
  drain_signal_.cancel();
  MaybeFinish();
}

void Session::MaybeFinish() {
  if (!closed_ && reading_done_ && pending_ == 0 && outbox_.empty()) Close();
}

asio::awaitable<void> Session::ReadLoop() {
  auto self = shared_from_this();
  const ServerOptions& opt = server_.options();
  std::vector<char> chunk(kReadChunk);
  std::string partial;      // start of a line whose newline has not arrived
  bool discarding = false;  // inside an over-long line, skipping to '\n'

  auto too_large = [&] {
    Send(EncodeLine(ErrorResponse(
        nullptr, Status::TooLarge("request line longer than " + std::to_string(opt.max_message_bytes) +
                                      " bytes; discarded",
                                  opt.max_message_bytes))));
  };

  while (!closed_ && !reading_done_) {
    // Backpressure: a client that does not read its replies is not read.
    co_await WaitForDrain();
    if (closed_ || reading_done_) break;

    error_code ec;
    size_t n = co_await socket_.async_read_some(asio::buffer(chunk),
                                                asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::eof) {
        reading_done_ = true;  // half-close: answer what was asked, then close
        MaybeFinish();
      } else {
        Close();
      }
      break;
    }
    server_.stats().AddBytesIn(n);

    std::string_view data(chunk.data(), n);
    while (!data.empty()) {
      // Checked per line, not per chunk: one chunk can hold a thousand small
      // requests for large replies, far more output than the limit.
      if (outbox_bytes_ > opt.max_outbound_bytes) {
        server_.host().Pump();
        co_await WaitForDrain();
        if (closed_ || reading_done_) break;
      }
      size_t nl = data.find('\n');
      if (discarding) {
        if (nl == std::string_view::npos) break;
        discarding = false;
        data.remove_prefix(nl + 1);
        continue;
      }
      if (nl == std::string_view::npos) {
        if (partial.size() + data.size() > opt.max_message_bytes) {
          too_large();
          partial.clear();
          discarding = true;
        } else {
          partial.append(data);
        }
        break;
      }
      std::string_view piece = data.substr(0, nl);
      data.remove_prefix(nl + 1);
      if (partial.size() + piece.size() > opt.max_message_bytes) {
        too_large();
        partial.clear();
        continue;
      }
      if (partial.empty()) {
        HandleLine(piece);
      } else {
        partial.append(piece);
        HandleLine(partial);
        partial.clear();
      }
      if (closed_) break;
    }
    server_.host().Pump();
  }
}

asio::awaitable<void> Session::WaitForDrain() {
  const size_t limit = server_.options().max_outbound_bytes;
  while (!closed_ && !reading_done_ && outbox_bytes_ > limit) {
    drain_signal_.expires_at(std::chrono::steady_clock::time_point::max());
    error_code ec;
    co_await drain_signal_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

asio::awaitable<void> Session::WriteLoop() {
  auto self = shared_from_this();
  std::vector<asio::const_buffer> buffers;
  while (!closed_) {
    if (outbox_.empty()) {
      write_signal_.expires_at(std::chrono::steady_clock::time_point::max());
      error_code ec;
      co_await write_signal_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    buffers.clear();
    size_t count = std::min(outbox_.size(), kMaxBuffersPerWrite);
    size_t bytes = 0;
    // std::deque keeps element addresses stable on push_back, so lines queued
    // while this write is in flight do not disturb these buffers.
    for (size_t i = 0; i < count; ++i) {
      buffers.emplace_back(asio::buffer(outbox_[i]));
      bytes += outbox_[i].size();
    }
    error_code ec;
    co_await asio::async_write(socket_, buffers, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || closed_) {
      Close();
      co_return;
    }
    for (size_t i = 0; i < count; ++i) outbox_.pop_front();
    outbox_bytes_ -= bytes;
    server_.stats().AddBytesOut(bytes);
    drain_signal_.cancel();
    MaybeFinish();
  }
}

void Session::Send(std::string line) {
  if (closed_) return;
  outbox_bytes_ += line.size();
  outbox_.push_back(std::move(line));
  write_signal_.cancel();
}

bool Session::Notify(std::string_view method, const json& params, bool force) {
  if (closed_) return true;  // nobody to refuse on behalf of; the engine forgets us soon
  if (!force && outbox_bytes_ >= server_.options().max_outbound_bytes) return false;
  Send(EncodeLine(Notification(method, params)));
  return true;
}

void Session::HandleLine(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.find_first_not_of(" \t") == std::string_view::npos) return;  // blank line

  json message = json::parse(line, nullptr, false);
  if (message.is_discarded()) {
    Send(EncodeLine(ProtocolErrorResponse(nullptr, ProtocolError::kParseError, "the line is not valid JSON")));
    return;
  }
  auto self = shared_from_this();
  if (!message.is_array()) {
    HandleMessage(std::move(message), [self](json response) {
      if (!response.is_null()) self->Send(EncodeLine(response));
    });
    return;
  }
  if (message.empty()) {
    Send(EncodeLine(ProtocolErrorResponse(nullptr, ProtocolError::kInvalidRequest, "empty batch")));
    return;
  }
  // A batch is answered with one array, in request order, once every member
  // is done; notifications contribute nothing.
  struct BatchState {
    std::vector<json> responses;
    size_t remaining;
  };
  auto batch = std::make_shared<BatchState>();
  batch->responses.resize(message.size());
  batch->remaining = message.size();
  for (size_t i = 0; i < message.size(); ++i) {
    HandleMessage(std::move(message[i]), [self, batch, i](json response) {
      batch->responses[i] = std::move(response);
      if (--batch->remaining > 0) return;
      json out = json::array();
      for (auto& r : batch->responses) {
        if (!r.is_null()) out.push_back(std::move(r));
      }
      if (!out.empty()) self->Send(EncodeLine(out));
    });
  }
}

void Session::HandleMessage(json message, std::function<void(json)> done) {
  ++pending_;
  auto self = shared_from_this();
  auto finish = [self, done = std::move(done)](json response) {
    --self->pending_;
    done(std::move(response));
    self->MaybeFinish();
  };
  json error;
  Result<Request> req = ParseRequest(std::move(message), &error);
  if (!req.ok()) {
    finish(std::move(error));
    return;
  }
  Dispatch(std::move(req).value(), std::move(finish));
}

void Session::Dispatch(Request req, std::function<void(json)> done) {
  auto self = shared_from_this();
  const auto started = std::chrono::steady_clock::now();
  engine::Engine& engine = server_.engine();
  if (McpAdapter::Handles(req.method)) {
    if (server_.shutting_down()) {
      return done(req.has_id ? ErrorResponse(req.id, Status(StatusCode::kShuttingDown, "the server is shutting down"))
                             : json(nullptr));
    }
    const std::string method = req.method;
    return server_.mcp().Handle(req, self, [self, started, method, done = std::move(done)](json response) {
      auto micros =
          std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
      const bool error = response.is_object() && (response.contains("error") ||
                                                  response["result"].value("isError", false));
      self->server_.stats().RecordCall("mcp:" + method, micros.count(), error);
      done(std::move(response));
    });
  }
  const bool known = engine.HasMethod(req.method) || server_.IsLocalMethod(req.method);
  if (!known) {
    done(req.has_id ? ProtocolErrorResponse(req.id, ProtocolError::kMethodNotFound,
                                            "unknown method '" + req.method + "'")
                    : json(nullptr));
    return;
  }
  auto reply = [self, started, id = req.id, has_id = req.has_id, method = req.method,
                done = std::move(done)](Result<json> result) {
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
    self->server_.stats().RecordCall(method, micros.count(), !result.ok());
    if (!has_id) return done(nullptr);
    done(result.ok() ? ResultResponse(id, std::move(result).value()) : ErrorResponse(id, result.status()));
  };
  if (server_.shutting_down()) {
    return reply(Status(StatusCode::kShuttingDown, "the server is shutting down"));
  }
  if (server_.IsLocalMethod(req.method)) return reply(server_.HandleLocal(req.method, req.params));
  engine.Execute(req.method, std::move(req.params), self, std::move(reply));
}

}  // namespace shim::net
