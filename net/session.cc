// Session, the transport side: the read, write and watch loops, the outbox
// and its backpressure, closing. What a line means is the protocol side
// (net/session_protocol.cc).
#include "net/session.h"

#include <spdlog/spdlog.h>

#include <optional>

#include "base/json_text.h"
#include "net/line_framer.h"
#include "net/server.h"

namespace shim::net {

using boost::system::error_code;
using nlohmann::json;

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

Session::Session(Socket socket, Server& server, uint64_t id, bool tcp, bool needs_auth)
    : socket_(std::move(socket)),
      server_(server),
      id_(id),
      write_signal_(socket_.get_executor()),
      drain_signal_(socket_.get_executor()),
      tcp_(tcp),
      needs_auth_(needs_auth),
      authenticated_(!needs_auth),
      watchdog_(socket_.get_executor()) {}

void Session::Start() {
  auto self = shared_from_this();
  asio::co_spawn(
      socket_.get_executor(), [self] { return self->ReadLoop(); }, asio::detached);
  asio::co_spawn(
      socket_.get_executor(), [self] { return self->WriteLoop(); }, asio::detached);
  asio::co_spawn(
      socket_.get_executor(), [self] { return self->WatchLoop(); }, asio::detached);
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
  // One of the connection's deadlines: `since` + `timeout_ms`, enforced
  // while `armed`; when it passes the session aborts with `code` and the
  // message `text_before` <timeout_ms> `text_after`.
  struct Deadline {
    bool armed;
    Clock::time_point since;
    int64_t timeout_ms;
    StatusCode code;
    const char* text_before;
    const char* text_after;
    std::string_view why;  // for the log
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
      const Deadline deadlines[] = {
          {!authenticated_ && opt.auth_timeout_ms > 0, accepted_at_, opt.auth_timeout_ms,
           StatusCode::kUnauthorized, "no sys.auth within ", " ms of connecting",
           "no sys.auth in time"},
          {line_open_ && !waiting_for_drain_ && opt.partial_line_timeout_ms > 0, line_started_,
           opt.partial_line_timeout_ms, StatusCode::kTimeout, "request line not completed within ",
           " ms of its first byte", "partial-line timeout"},
          {opt.idle_timeout_ms > 0 && pending_ == 0, last_activity_, opt.idle_timeout_ms,
           StatusCode::kTimeout, "no traffic for ", " ms", "idle timeout"},
      };
      const Deadline* passed = nullptr;
      for (const Deadline& d : deadlines) {
        if (!d.armed) continue;
        const auto deadline = d.since + std::chrono::milliseconds(d.timeout_ms);
        if (now >= deadline) {
          passed = &d;
          break;
        }
        next = std::min(next, deadline);
      }
      if (passed) {
        Abort(EncodeErrorLine(RequestId(),
                              Status(passed->code,
                                     passed->text_before + std::to_string(passed->timeout_ms) +
                                         passed->text_after + "; closing the connection",
                                     {{"timeout_ms", passed->timeout_ms}})),
              passed->why);
        continue;
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
    return authenticated_ ? opt.max_message_bytes
                          : std::min(opt.max_message_bytes, kMaxLineBeforeAuth);
  };
  LineFramer framer(line_limit());

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
        HandleOverlongLine(piece->bytes, line_limit());
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
  if (closed_ || aborting_)
    return true;  // nobody to refuse on behalf of; the engine forgets us soon
  if (!force && outbox_bytes_ >= server_.options().max_outbound_bytes) {
    notify_refused_ = true;
    return false;
  }
  Send(EncodeNotificationLine(method, params_json));
  return true;
}

size_t Session::outbound_limit() const { return server_.options().max_outbound_bytes; }

}  // namespace shim::net
