// Session, the protocol side: what a line read from the connection means.
// The HTTP refusal, sys.auth, single requests and batches, and the one
// dispatch to whoever serves the method. The socket side (reading, writing,
// timeouts, closing) is net/session.cc.
#include <spdlog/spdlog.h>

#include <optional>

#include "engine/params.h"
#include "net/access.h"
#include "net/mcp_adapter.h"
#include "net/server.h"
#include "net/session.h"
#include "net/simple_request.h"

namespace shim::net {

using nlohmann::json;

void Session::HandleOverlongLine(std::string_view line_start, size_t limit) {
  if (!authenticated_) {
    return Abort(
        EncodeErrorLine(RequestId(), Status(StatusCode::kUnauthorized,
                                            "authentication required: a line longer than " +
                                                std::to_string(limit) +
                                                " bytes before sys.auth; closing the connection",
                                            {{"limit", limit}})),
        "over-long line before sys.auth");
  }
  Send(EncodeErrorLine(
      IdFromLineStart(line_start),
      Status::TooLarge("request line longer than " + std::to_string(limit) + " bytes; discarded",
                       limit)));
}

void Session::HandleLine(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.find_first_not_of(" \t") == std::string_view::npos) return;  // blank line
  if (!seen_first_line_) {
    seen_first_line_ = true;
    // A browser made to reach a loopback port (e.g. by DNS rebinding) sends
    // HTTP; its request line is refused before any header or body could be
    // taken for a request.
    if (LooksLikeHttpRequest(line))
      return Abort(HttpRefusal(), "the first line is an HTTP request");
  }

  // Nearly every line is a plain request: its envelope is read without a
  // document. Anything else, and anything before sys.auth, goes the general way.
  // (An empty Done sends the reply on this session: Track.)
  if (authenticated_) {
    if (std::optional<Request> req = ParseSimpleRequest(line))
      return Dispatch(std::move(*req), Track(nullptr));
  }

  RequestLine read = ReadRequestLine(line);
  json& message = read.message;
  if (!authenticated_) {
    // Only a method allowed before auth (sys.auth), as a single request, may come first.
    const MethodEntry* first =
        message.is_object() && message.contains("method") && message["method"].is_string()
            ? server_.methods().Find(message["method"].get_ref<const std::string&>())
            : nullptr;
    if (!first || !first->before_auth) {
      return Abort(
          EncodeErrorLine(IdFromLine(line),
                          Status(StatusCode::kUnauthorized,
                                 "authentication required: the first request on a TCP connection "
                                 "must be sys.auth {\"token\": ...}; closing the connection")),
          "request before sys.auth");
    }
  }
  if (read.syntax_error) {
    Send(EncodeErrorLine(RequestId(),
                         Status(StatusCode::kParseError, "the line is not valid JSON")));
    return;
  }
  // Refused at a limit (nesting, a long integer): nothing was built, but the
  // answer carries the request's id. A batch has no one id: null.
  if (!read.status.ok()) return Send(EncodeErrorLine(IdFromLine(line), read.status));
  if (!message.is_array()) {
    return HandleMessage(std::move(message),
                         read.id_texts.empty() ? std::string() : std::move(read.id_texts[0]),
                         nullptr);
  }
  if (message.empty()) {
    Send(EncodeErrorLine(RequestId(), Status(StatusCode::kInvalidRequest, "empty batch")));
    return;
  }
  // A batch is answered with one array, in request order, once every member
  // is done; notifications contribute nothing (JoinBatchReplies).
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
    if (std::string out = JoinBatchReplies(batch->replies); !out.empty())
      self->Send(std::move(out));
  };
  const ServerOptions& opt = server_.options();
  for (size_t i = 0; i < message.size(); ++i) {
    // One batch is one reply line, held whole until its last member is
    // answered: once the replies so far are over the outbound limit (or the
    // server holds too much behind a commit), the remaining members are not
    // executed but answered with an error saying to send them again.
    std::optional<Status> refused;
    if (batch->bytes > opt.max_outbound_bytes) {
      refused = Status::TooLarge("the replies of this batch so far exceed " +
                                     std::to_string(opt.max_outbound_bytes) +
                                     " bytes (--max-outbound-bytes); this request was not "
                                     "executed: send it again, in a smaller batch",
                                 opt.max_outbound_bytes);
    } else if (server_.engine().held_reply_bytes() > opt.max_held_reply_bytes) {
      refused = Status(
          StatusCode::kOverloaded,
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
        error = EncodeErrorLine(RequestId(), Status(StatusCode::kUnauthorized,
                                                    "malformed sys.auth; closing the connection"));
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
    done(req.has_id ? EncodeErrorLine(req.id, Status(StatusCode::kMethodNotFound,
                                                     "unknown method '" + req.method + "'"))
                    : std::string());
    return;
  }
  // The one shutting-down check (sys.auth is answered to the end).
  if (server_.shutting_down() && !entry->before_auth) {
    server_.stats().RecordCall(entry->stats_name, 0, /*error=*/true);
    return done(req.has_id ? EncodeErrorLine(req.id, Status(StatusCode::kShuttingDown,
                                                            "the server is shutting down"))
                           : std::string());
  }
  if (entry->before_auth) return Authenticate(req, std::move(done));
  if (entry->unix_socket_only && tcp_) {
    // Stopping the server is for its own user on its own machine, whom the
    // socket's permissions vouch for; a TCP token only grants use.
    server_.stats().RecordCall(entry->stats_name, 0, /*error=*/true);
    const Status forbidden(StatusCode::kForbidden,
                           req.method + " is accepted only on the server's Unix socket (shim " +
                               "stop), not over TCP");
    return done(req.has_id ? EncodeErrorLine(req.id, forbidden) : std::string());
  }
  if (entry->home == MethodHome::kMcp) {
    return server_.mcp().Handle(
        req, self, [self, started, entry, done = std::move(done)](std::string line, bool error) {
          auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
              std::chrono::steady_clock::now() - started);
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
      auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::steady_clock::now() - started);
      self->server_.stats().RecordCall(entry->stats_name, micros.count(), error);
      done(has_id ? line() : std::string());
    }
  };
  auto answer = std::make_shared<Answer>(
      Answer{std::move(self), started, std::move(req.id), req.has_id, entry, std::move(done)});
  engine::EncodedReplyFn reply_encoded;
  if (entry->answers_encoded) {
    // A success arrives as text and goes into the line as it is.
    reply_encoded = [answer](std::string result_json) {
      answer->Send(false,
                   [&] { return EncodeResultLine(answer->id, std::string_view(result_json)); });
    };
  }
  std::shared_ptr<engine::Client> client = answer->self;
  auto reply = [answer = std::move(answer)](Result<json> result) {
    answer->Send(!result.ok(), [&] {
      return result.ok() ? EncodeResultLine(answer->id, result.value())
                         : EncodeErrorLine(answer->id, result.status());
    });
  };
  if (entry->home == MethodHome::kServer) return reply(server_.HandleLocal(req.method, req.params));
  server_.engine().Execute(*entry->engine_method, std::move(req.params), std::move(client),
                           std::move(reply), std::move(reply_encoded));
}

void Session::Authenticate(const Request& req, Done done) {
  const auto started = std::chrono::steady_clock::now();
  // An unknown field is INVALID_PARAMS, as for every method. Before
  // authentication it ends the connection like any malformed sys.auth.
  static constexpr std::string_view kFields[] = {"token"};
  if (Status bad = engine::CheckKnownFields(req.params, kFields); !bad.ok()) {
    server_.stats().RecordCall("sys.auth", 0, true);
    if (!authenticated_) {
      Abort(EncodeErrorLine(req.id, bad), "malformed sys.auth");
      return done({});
    }
    return done(req.has_id ? EncodeErrorLine(req.id, bad) : std::string());
  }
  Status status;
  if (!server_.options().auth_token.empty()) {
    // With a token configured it is checked on every transport: a wrong one
    // is never accepted quietly, even where it was not needed.
    const json* token =
        req.params.is_object() && req.params.contains("token") ? &req.params["token"] : nullptr;
    if (!token || !token->is_string()) {
      status = Status(StatusCode::kUnauthorized,
                      "sys.auth needs params.token, a string; closing the connection");
    } else if (!server_.TokenMatches(token->get_ref<const std::string&>())) {
      status = Status(StatusCode::kUnauthorized, "wrong token; closing the connection");
    }
  }
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - started);
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
  done(req.has_id
           ? EncodeResultLine(req.id, json{{"authenticated", true}, {"required", needs_auth_}})
           : std::string());
}

}  // namespace shim::net
