#include "net/session.h"

#include <optional>

#include <spdlog/spdlog.h>

#include "base/json_text.h"
#include "net/access.h"
#include "net/line_framer.h"
#include "net/mcp_adapter.h"
#include "net/server.h"
#include "net/simple_request.h"

namespace shim::net {

using nlohmann::json;
using boost::system::error_code;

namespace {
constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kMaxBuffersPerWrite = 256;
// After an abort, how long the client gets to read the error and close
// before the connection is cut regardless.
constexpr auto kAbortGrace = std::chrono::milliseconds(1000);
// The longest line accepted before sys.auth (a sys.auth request with a
// token of a few hundred bytes fits easily).
constexpr size_t kMaxLineBeforeAuth = 4096;
}  // namespace

Session::Session(Socket socket, Server& server, uint64_t id, bool needs_auth)
    : socket_(std::move(socket)),
      server_(server),
      id_(id),
      write_signal_(socket_.get_executor()),
      drain_signal_(socket_.get_executor()),
      needs_auth_(needs_auth),
      authenticated_(!needs_auth),
      watchdog_(socket_.get_executor()) {}

void Session::Start() {
  auto self = shared_from_this();
  asio::co_spawn(socket_.get_executor(), [self] { return self->ReadLoop(); }, asio::detached);
  asio::co_spawn(socket_.get_executor(), [self] { return self->WriteLoop(); }, asio::detached);
  asio::co_spawn(socket_.get_executor(), [self] { return self->WatchLoop(); }, asio::detached);
}

void Session::Close() {
  if (closed_) return;
  closed_ = true;
  error_code ec;
  socket_.shutdown(Socket::shutdown_both, ec);
  socket_.close(ec);
  write_signal_.cancel();
  drain_signal_.cancel();
  watchdog_.cancel();
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
  // An aborting session owes no replies: requests still in the engine are
  // answered into the void.
  if (!closed_ && reading_done_ && (pending_ == 0 || aborting_) && outbox_.empty()) Close();
}

void Session::Abort(std::string line, std::string_view why) {
  if (closed_ || aborting_) return;
  spdlog::info("connection {}: closing: {}", id_, why);
  Send(std::move(line));
  aborting_ = true;  // after the Send: from here on Send drops
  abort_deadline_ = Clock::now() + kAbortGrace;
  drain_signal_.cancel();  // a reader paused by backpressure goes back to reading (and discarding)
  Rearm();
  MaybeFinish();
}

void Session::Rearm() {
  if (!closed_) watchdog_.cancel();
}

asio::awaitable<void> Session::WatchLoop() {
  auto self = shared_from_this();
  const ServerOptions& opt = server_.options();
  const auto ms = [](int64_t n) { return std::chrono::milliseconds(n); };
  auto timeout_error = [](StatusCode code, std::string message, int64_t timeout_ms) {
    return EncodeErrorLine(RequestId(), Status(code, std::move(message), {{"timeout_ms", timeout_ms}}));
  };
  while (!closed_) {
    const auto now = Clock::now();
    auto next = Clock::time_point::max();
    if (aborting_) {
      if (now >= abort_deadline_) {
        Close();
        break;
      }
      next = abort_deadline_;
    } else {
      if (!authenticated_ && opt.auth_timeout_ms > 0) {
        const auto deadline = accepted_at_ + ms(opt.auth_timeout_ms);
        if (now >= deadline) {
          Abort(timeout_error(StatusCode::kUnauthorized,
                              "no sys.auth within " + std::to_string(opt.auth_timeout_ms) +
                                  " ms of connecting; closing the connection",
                              opt.auth_timeout_ms),
                "no sys.auth in time");
          continue;
        }
        next = std::min(next, deadline);
      }
      if (line_open_ && !waiting_for_drain_ && opt.partial_line_timeout_ms > 0) {
        const auto deadline = line_started_ + ms(opt.partial_line_timeout_ms);
        if (now >= deadline) {
          Abort(timeout_error(StatusCode::kTimeout,
                              "request line not completed within " + std::to_string(opt.partial_line_timeout_ms) +
                                  " ms of its first byte; closing the connection",
                              opt.partial_line_timeout_ms),
                "partial-line timeout");
          continue;
        }
        next = std::min(next, deadline);
      }
      if (opt.idle_timeout_ms > 0 && pending_ == 0) {
        const auto deadline = last_activity_ + ms(opt.idle_timeout_ms);
        if (now >= deadline) {
          Abort(timeout_error(StatusCode::kTimeout,
                              "no traffic for " + std::to_string(opt.idle_timeout_ms) +
                                  " ms; closing the connection",
                              opt.idle_timeout_ms),
                "idle timeout");
          continue;
        }
        next = std::min(next, deadline);
      }
    }
    watchdog_.expires_at(next);
    error_code ec;
    co_await watchdog_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

asio::awaitable<void> Session::ReadLoop() {
  auto self = shared_from_this();
  const ServerOptions& opt = server_.options();
  std::vector<char> chunk(kReadChunk);

  // Before sys.auth a line can only be a short sys.auth request: an
  // unauthenticated client may not make us buffer a megabyte.
  auto line_limit = [&] {
    return authenticated_ ? opt.max_message_bytes : std::min(opt.max_message_bytes, kMaxLineBeforeAuth);
  };
  LineFramer framer(line_limit());
  auto too_large = [&](std::string_view line_start) {
    if (!authenticated_) {
      return Abort(EncodeErrorLine(RequestId(), Status(StatusCode::kUnauthorized,
                                                       "authentication required: a line longer than " +
                                                           std::to_string(line_limit()) +
                                                           " bytes before sys.auth; closing the connection",
                                                       {{"limit", line_limit()}})),
                   "over-long line before sys.auth");
    }
    Send(EncodeErrorLine(IdFromLineStart(line_start),
                         Status::TooLarge("request line longer than " + std::to_string(opt.max_message_bytes) +
                                              " bytes; discarded",
                                          opt.max_message_bytes)));
  };

  while (!closed_ && !reading_done_) {
    // Backpressure: a client that does not read its replies is not read.
    co_await WaitForDrain();
    if (closed_ || reading_done_) break;

    error_code ec;
    size_t n = co_await socket_.async_read_some(asio::buffer(chunk),
                                                asio::redirect_error(asio::use_awaitable, ec));
    if (closed_) break;
    if (ec) {
      if (ec == asio::error::eof) {
        // The client sends nothing more: it closed, or half-closed, which
        // look the same from here. What does not wait is still answered;
        // its waits end now (docs/design.md, style rule 13), so a departed client is not
        // handed a lock or a task, and its slot and places are free at once.
        reading_done_ = true;
        server_.engine().EndWaits(id_);
        server_.host().Pump();
        MaybeFinish();
      } else {
        Close();
      }
      break;
    }
    server_.stats().AddBytesIn(n);
    const auto read_at = Clock::now();
    last_activity_ = read_at;
    if (aborting_) continue;  // the error is on its way; input no longer matters

    framer.Feed(std::string_view(chunk.data(), n));
    while (!closed_ && !aborting_) {
      // Checked per line, not per chunk: one chunk can hold a thousand small
      // requests for large replies, far more output than the limit.
      if (outbox_bytes_ > opt.max_outbound_bytes) {
        server_.host().Pump();
        co_await WaitForDrain();
        if (closed_ || reading_done_) break;
      }
      // Replies held behind a commit are not in any outbox yet: bounded
      // server-wide instead, until the commit lands.
      if (server_.engine().held_reply_bytes() > opt.max_held_reply_bytes) {
        co_await server_.host().WaitForHeldReplies(opt.max_held_reply_bytes);
        if (closed_ || reading_done_ || aborting_) break;
      }
      framer.set_max_line_bytes(line_limit());  // sys.auth may just have raised it
      std::optional<LineFramer::Piece> piece = framer.Next();
      if (!piece) break;
      if (piece->kind == LineFramer::Piece::Kind::kTooLong) {
        too_large(piece->bytes);
      } else {
        HandleLine(piece->bytes);
      }
    }
    // The partial-line clock starts at the first byte of an unfinished line
    // and is not reset by more bytes of the same line: trickling a byte a
    // second does not keep a connection.
    const bool open = !aborting_ && framer.line_open();
    if (open && (!line_open_ || framer.open_line_began_in_chunk())) {
      line_open_ = true;
      line_started_ = read_at;
      Rearm();
    } else if (!open) {
      line_open_ = false;
    }
    server_.host().Pump();
  }
}

asio::awaitable<void> Session::WaitForDrain() {
  const size_t limit = server_.options().max_outbound_bytes;
  if (closed_ || reading_done_ || aborting_ || outbox_bytes_ <= limit) co_return;
  // While we do not read, an unfinished line is our delay, not the client's.
  waiting_for_drain_ = true;
  while (!closed_ && !reading_done_ && !aborting_ && outbox_bytes_ > limit) {
    drain_signal_.expires_at(std::chrono::steady_clock::time_point::max());
    error_code ec;
    co_await drain_signal_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  waiting_for_drain_ = false;
  if (line_open_) {
    line_started_ = Clock::now();
    Rearm();
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
    last_activity_ = Clock::now();
    server_.stats().AddBytesOut(bytes);
    if (aborting_ && outbox_.empty() && !send_shut_down_) {
      // The error is out: our FIN tells the client we are done; its close
      // (read as EOF) or the grace ends the connection.
      send_shut_down_ = true;
      socket_.shutdown(Socket::shutdown_send, ec);
    }
    drain_signal_.cancel();
    if (notify_refused_ && outbox_bytes_ < server_.options().max_outbound_bytes) {
      notify_refused_ = false;
      server_.engine().OnClientWritable(id_);  // paced output (replays) goes on
      server_.host().Pump();
    }
    MaybeFinish();
  }
}

void Session::Send(std::string line) {
  if (closed_ || aborting_) return;
  outbox_bytes_ += line.size();
  outbox_.push_back(std::move(line));
  write_signal_.cancel();
}

bool Session::Notify(std::string_view method, const json& params, bool force) {
  return NotifyEncoded(method, DumpCompact(params), force);
}

bool Session::NotifyEncoded(std::string_view method, std::string_view params_json, bool force) {
  if (closed_ || aborting_) return true;  // nobody to refuse on behalf of; the engine forgets us soon
  if (!force && outbox_bytes_ >= server_.options().max_outbound_bytes) {
    notify_refused_ = true;
    return false;
  }
  Send(EncodeNotificationLine(method, params_json));
  return true;
}

size_t Session::outbound_limit() const { return server_.options().max_outbound_bytes; }

void Session::HandleLine(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.find_first_not_of(" \t") == std::string_view::npos) return;  // blank line
  if (!seen_first_line_) {
    seen_first_line_ = true;
    // A browser made to reach a loopback port (e.g. by DNS rebinding) sends
    // HTTP; its request line is refused before any header or body could be
    // taken for a request.
    if (LooksLikeHttpRequest(line)) return Abort(HttpRefusal(), "the first line is an HTTP request");
  }

  // Nearly every line is a plain request: its envelope is read without a
  // document. Anything else, and anything before sys.auth, goes the general way.
  // (An empty Done sends the reply on this session: Track.)
  if (authenticated_) {
    if (std::optional<Request> req = ParseSimpleRequest(line)) return Dispatch(std::move(*req), Track(nullptr));
  }

  RequestLine read = ReadRequestLine(line);
  json& message = read.message;
  if (!authenticated_) {
    // Only a method allowed before auth (sys.auth), as a single request, may come first.
    const MethodEntry* first = message.is_object() && message.contains("method") && message["method"].is_string()
                                   ? server_.methods().Find(message["method"].get_ref<const std::string&>())
                                   : nullptr;
    if (!first || !first->before_auth) {
      return Abort(EncodeErrorLine(IdFromLine(line),
                                   Status(StatusCode::kUnauthorized,
                                          "authentication required: the first request on a TCP connection must be "
                                          "sys.auth {\"token\": ...}; closing the connection")),
                   "request before sys.auth");
    }
  }
  if (read.syntax_error) {
    Send(EncodeErrorLine(RequestId(), Status(StatusCode::kParseError, "the line is not valid JSON")));
    return;
  }
  // Refused at a limit (nesting, a long integer): nothing was built, but the
  // answer carries the request's id. A batch has no one id: null.
  if (!read.status.ok()) return Send(EncodeErrorLine(IdFromLine(line), read.status));
  if (!message.is_array()) {
    return HandleMessage(std::move(message), read.id_texts.empty() ? std::string() : std::move(read.id_texts[0]),
                         nullptr);
  }
  if (message.empty()) {
    Send(EncodeErrorLine(RequestId(), Status(StatusCode::kInvalidRequest, "empty batch")));
    return;
  }
  // A batch is answered with one array, in request order, once every member
  // is done; notifications contribute nothing. The array's compact encoding
  // is its members' joined by commas.
  struct BatchState {
    std::vector<std::string> replies;
    size_t remaining;
    size_t bytes = 0;  // of the replies so far
  };
  auto self = shared_from_this();
  auto batch = std::make_shared<BatchState>();
  batch->replies.resize(message.size());
  batch->remaining = message.size();
  // Each member's answer lands here; the last one sends the array.
  auto member_done = [self, batch](size_t i, std::string reply) {
    batch->bytes += reply.size();
    batch->replies[i] = std::move(reply);
    if (--batch->remaining > 0) return;
    std::string out;
    for (std::string& r : batch->replies) {
      if (r.empty()) continue;
      out += out.empty() ? '[' : ',';
      out.append(r, 0, r.size() - 1);  // without its newline
    }
    if (!out.empty()) self->Send(out + "]\n");
  };
  const ServerOptions& opt = server_.options();
  for (size_t i = 0; i < message.size(); ++i) {
    // One batch is one reply line, held whole until its last member is
    // answered: once the replies so far are over the outbound limit (or the
    // server holds too much behind a commit), the remaining members are not
    // executed but answered with an error saying to send them again.
    std::optional<Status> refused;
    if (batch->bytes > opt.max_outbound_bytes) {
      refused = Status::TooLarge("the replies of this batch so far exceed " + std::to_string(opt.max_outbound_bytes) +
                                     " bytes (--max-outbound-bytes); this request was not executed: send it "
                                     "again, in a smaller batch",
                                 opt.max_outbound_bytes);
    } else if (server_.engine().held_reply_bytes() > opt.max_held_reply_bytes) {
      refused = Status(StatusCode::kOverloaded,
                       "the server holds over " + std::to_string(opt.max_held_reply_bytes) +
                           " bytes of replies behind a commit; this request was not executed: send it again",
                       {{"limit", opt.max_held_reply_bytes}});
    }
    if (refused) {
      const json& member = message[i];
      const bool has_id = member.is_object() && member.contains("id") &&
                          (member["id"].is_string() || member["id"].is_number());
      const RequestId id = read.id_texts[i].empty() ? RequestId::FromJson(member["id"])
                                                    : RequestId::FromNumberText(read.id_texts[i]);
      member_done(i, has_id ? EncodeErrorLine(id, *refused) : std::string());
      continue;
    }
    HandleMessage(std::move(message[i]), std::move(read.id_texts[i]),
                  [member_done, i](std::string reply) { member_done(i, std::move(reply)); });
  }
}

Session::Done Session::Track(Done done) {
  ++pending_;
  auto self = shared_from_this();
  return [self, done = std::move(done)](std::string reply) {
    --self->pending_;
    if (done) {
      done(std::move(reply));
    } else if (!reply.empty()) {
      self->Send(std::move(reply));
    }
    if (self->pending_ == 0 && self->server_.options().idle_timeout_ms > 0) self->Rearm();
    self->MaybeFinish();
  };
}

void Session::HandleMessage(json message, std::string id_text, Done done) {
  Done finish = Track(std::move(done));
  std::string error;
  Result<Request> req = ParseRequest(std::move(message), id_text, &error);
  if (!req.ok()) {
    if (!authenticated_) {
      // A malformed sys.auth is still not an authentication.
      if (error.empty()) {
        error = EncodeErrorLine(RequestId(), Status(StatusCode::kUnauthorized, "malformed sys.auth; closing the connection"));
      }
      Abort(std::move(error), "malformed sys.auth");
      return finish({});
    }
    finish(std::move(error));
    return;
  }
  Dispatch(std::move(req).value(), std::move(finish));
}

void Session::Dispatch(Request req, Done done) {
  auto self = shared_from_this();
  const auto started = std::chrono::steady_clock::now();
  // The one lookup: who serves the method, and how.
  const MethodEntry* entry = server_.methods().Find(req.method);
  if (!entry) {
    // Counted, under the one bucket for names that are not registered.
    server_.stats().RecordCall(req.method, 0, /*error=*/true);
    done(req.has_id ? EncodeErrorLine(req.id, Status(StatusCode::kMethodNotFound, "unknown method '" + req.method + "'"))
                    : std::string());
    return;
  }
  // The one shutting-down check (sys.auth is answered to the end).
  if (server_.shutting_down() && !entry->before_auth) {
    server_.stats().RecordCall(entry->stats_name, 0, /*error=*/true);
    return done(req.has_id ? EncodeErrorLine(req.id, Status(StatusCode::kShuttingDown, "the server is shutting down"))
                           : std::string());
  }
  if (entry->before_auth) return Authenticate(req, std::move(done));
  if (entry->home == MethodHome::kMcp) {
    return server_.mcp().Handle(req, self, [self, started, entry, done = std::move(done)](std::string line, bool error) {
      auto micros =
          std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
      self->server_.stats().RecordCall(entry->stats_name, micros.count(), error);
      done(std::move(line));
    });
  }
  // What either reply path needs, kept once per request: the document reply
  // and the text reply (for methods that answer as text) share it, and
  // whichever runs records the call's stats and sends the line.
  struct Answer {
    std::shared_ptr<Session> self;
    std::chrono::steady_clock::time_point started;
    RequestId id;
    bool has_id;
    const MethodEntry* entry;  // the table outlives every session
    Done done;
    void Send(bool error, const std::function<std::string()>& line) {
      auto micros = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
      self->server_.stats().RecordCall(entry->stats_name, micros.count(), error);
      done(has_id ? line() : std::string());
    }
  };
  auto answer = std::make_shared<Answer>(Answer{std::move(self), started, std::move(req.id), req.has_id, entry, std::move(done)});
  engine::EncodedReplyFn reply_encoded;
  if (entry->answers_encoded) {
    // A success arrives as text and goes into the line as it is.
    reply_encoded = [answer](std::string result_json) {
      answer->Send(false, [&] { return EncodeResultLine(answer->id, std::string_view(result_json)); });
    };
  }
  std::shared_ptr<engine::Client> client = answer->self;
  auto reply = [answer = std::move(answer)](Result<json> result) {
    answer->Send(!result.ok(), [&] {
      return result.ok() ? EncodeResultLine(answer->id, result.value()) : EncodeErrorLine(answer->id, result.status());
    });
  };
  if (entry->home == MethodHome::kServer) return reply(server_.HandleLocal(req.method, req.params));
  server_.engine().Execute(*entry->engine_method, std::move(req.params), std::move(client), std::move(reply),
                           std::move(reply_encoded));
}

void Session::Authenticate(const Request& req, Done done) {
  const auto started = std::chrono::steady_clock::now();
  Status status;
  if (!server_.options().auth_token.empty()) {
    // With a token configured it is checked on every transport: a wrong one
    // is never accepted quietly, even where it was not needed.
    const json* token = req.params.is_object() && req.params.contains("token") ? &req.params["token"] : nullptr;
    if (!token || !token->is_string()) {
      status = Status(StatusCode::kUnauthorized, "sys.auth needs params.token, a string; closing the connection");
    } else if (!server_.TokenMatches(token->get_ref<const std::string&>())) {
      status = Status(StatusCode::kUnauthorized, "wrong token; closing the connection");
    }
  }
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
  server_.stats().RecordCall("sys.auth", micros.count(), !status.ok());
  if (!status.ok()) {
    spdlog::warn("connection {}: sys.auth failed: {}", id_, status.message());
    // The error is the last line this connection gets, even for a
    // notification: a silent close would leave the client guessing.
    Abort(EncodeErrorLine(req.id, status), "sys.auth failed");
    return done({});
  }
  authenticated_ = true;
  Rearm();
  done(req.has_id ? EncodeResultLine(req.id, json{{"authenticated", true}, {"required", needs_auth_}})
                  : std::string());
}

}  // namespace shim::net
