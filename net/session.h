// Session: one client connection (Unix socket or TCP), JSON-RPC over lines.
//
// A reader coroutine splits the byte stream into lines with a LineFramer
// (net/line_framer.h; bounded by max_message_bytes: a longer line is
// answered TOO_LARGE and skipped to its newline), parses and dispatches each
// request to the engine; replies may
// complete out of order (waits do not block later requests). A writer
// coroutine drains a queue of encoded lines with one async_write in flight,
// gathering everything queued into that write.
//
// End of input: a client that closes and one that half-closes (shuts down
// its sending side) look the same, an EOF. Either way its server-side waits
// (lock.acquire, task.claim with wait_ms) end at once (Engine::EndWaits:
// TIMEOUT, or no tasks), requests that do not wait are still answered, and
// the connection closes once everything is answered and written. So a
// departed client is never handed a lock or a task, and its slot is free
// as soon as its last answer is out, not when its wait_ms would end.
//
// Slow clients: replies are never dropped; instead, while queued output
// exceeds max_outbound_bytes the reader stops handling lines (even within a
// chunk already read) and reading, so a client that does not read cannot
// make the server buffer without bound. Notifications are
// refused past that limit (Notify returns false), which the engine turns
// into a dropped subscription, or, for a pub/sub replay, into a pause:
// after a refusal, the writer tells the engine (Engine::OnClientWritable)
// once the queue is below the limit again. Replies still held in the
// engine behind a commit are in no outbox: while the server holds more than
// max_held_reply_bytes of them, the reader waits for a commit to land
// before its next request. A batch's reply is built whole, so its members
// stop being executed (answered TOO_LARGE / OVERLOADED) once its replies
// pass max_outbound_bytes or the held limit.
//
// Access and timeouts (docs/threat-model.md): a TCP session of a server
// with an auth token starts unauthenticated and must send `sys.auth
// {token}` first, within auth_timeout_ms; anything else, or a wrong token,
// is answered UNAUTHORIZED and the connection closed. A first line that is
// an HTTP request line gets an HTTP 400 and a close (browsers reaching a
// loopback port). A request line must be complete partial_line_timeout_ms
// after its first byte, and a connection without traffic or pending
// requests for idle_timeout_ms is closed; both send an error line with
// `id: null` first. Closing after such an error ("aborting") stops handling
// input, flushes the error, shuts down the sending side and reads and
// discards until the client closes or a short grace ends, so the client
// reads the error rather than a reset. io thread only.
//
// One class in two files, as Beast's examples separate a session from its
// request handling: net/session.cc is the transport (the read, write and
// watch loops, the outbox, closing), net/session_protocol.cc the protocol
// (the HTTP refusal, sys.auth, batches, dispatch).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/client.h"
#include "net/asio.h"
#include "net/jsonrpc.h"

namespace shim::net {

class Server;

class Session final : public engine::Client, public std::enable_shared_from_this<Session> {
 public:
  using Socket = asio::generic::stream_protocol::socket;

  // `tcp`: the client came over TCP (not the Unix socket); `needs_auth`:
  // the session must authenticate with sys.auth first.
  Session(Socket socket, Server& server, uint64_t id, bool tcp, bool needs_auth);
  void Start();
  // Closes the socket; pending replies are discarded. Idempotent.
  void Close();
  // Stops reading; closes once queued output is written (or after a grace).
  void CloseWhenFlushed();

  // engine::Client
  uint64_t id() const override { return id_; }
  bool Notify(std::string_view method, const nlohmann::json& params, bool force) override;
  bool NotifyEncoded(std::string_view method, std::string_view params_json, bool force) override;
  bool closed() const override { return closed_; }
  size_t outbound_limit() const override;

  size_t outbound_bytes() const { return outbox_bytes_; }

 private:
  // ---- transport (net/session.cc): the socket side
  asio::awaitable<void> ReadLoop();
  asio::awaitable<void> WriteLoop();
  // Enforces the auth, partial-line and idle deadlines and the abort grace.
  asio::awaitable<void> WatchLoop();
  // Re-evaluates the deadlines now (one of them may have moved earlier).
  void Rearm();
  // Sends `line` (an error line, or the HTTP refusal), then closes: see the
  // header comment. Further replies and notifications are dropped.
  void Abort(std::string line, std::string_view why);
  // Returns once queued output is at most max_outbound_bytes (or the
  // session stops reading).
  asio::awaitable<void> WaitForDrain();
  void Send(std::string line);
  // Closes once the client has half-closed, every request is answered and
  // all output is written.
  void MaybeFinish();

  // ---- protocol (net/session_protocol.cc): what a line means
  // Receives a request's answer exactly once: the encoded reply line (with
  // its newline), or an empty string when nothing is to be sent (a
  // notification). Lines rather than documents, so that the common reply is
  // encoded straight from the result (EncodeResultLine) and a batch joins its
  // members' lines.
  using Done = std::function<void(std::string line)>;

  // A line longer than `limit` (the framer skips the rest): TOO_LARGE, or
  // before sys.auth an abort.
  void HandleOverlongLine(std::string_view line_start, size_t limit);
  void HandleLine(std::string_view line);
  // Validates and dispatches one parsed request (`id_text`: its
  // RequestLine::id_texts entry); `done` as Done says.
  void HandleMessage(nlohmann::json message, std::string id_text, Done done);
  // Counts the request as pending until `done` runs.
  Done Track(Done done);
  void Dispatch(Request req, Done done);
  // sys.auth: checks the token, answers or aborts.
  void Authenticate(const Request& req, Done done);

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

  using Clock = std::chrono::steady_clock;
  const bool tcp_;
  const bool needs_auth_;
  bool authenticated_;
  bool seen_first_line_ = false;
  bool aborting_ = false;           // Abort was called
  bool send_shut_down_ = false;     // our FIN is out
  bool waiting_for_drain_ = false;  // the reader is paused by backpressure, not by the client
  bool notify_refused_ = false;     // Notify refused since the outbox last drained (flow control)
  bool line_open_ = false;          // bytes of an unfinished line are buffered (or being skipped)
  const Clock::time_point accepted_at_ = Clock::now();
  Clock::time_point line_started_;                  // first byte of the unfinished line
  Clock::time_point last_activity_ = accepted_at_;  // last byte read or written
  Clock::time_point abort_deadline_;
  asio::steady_timer watchdog_;
};

}  // namespace shim::net
