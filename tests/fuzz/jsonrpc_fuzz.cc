// libFuzzer target: JSON-RPC line handling + dispatch, the path of
// Session::HandleLine / HandleMessage / Dispatch (net/session_protocol.cc) without
// the socket: each input is the byte stream of one connection, split into
// lines at '\n' (a trailing '\r' dropped, blank lines skipped), each line
// read by net::ReadRequestLine, batches answered as one array in request
// order, every request validated by net::ParseRequest (net/jsonrpc.cc) — or, for the common
// shape, read by net::ParseSimpleRequest (net/simple_request.cc) — and
// dispatched as the session does: MCP methods to net::McpAdapter, engine
// methods to a real Engine on a temp store (Durability none, FakeClock),
// anything else METHOD_NOT_FOUND. sys.auth / sys.info / sys.stats, the HTTP refusal and
// the byte-level framer with its limits and timeouts live in Session, which
// clang 14 with ASan cannot compile (Asio coroutines), so they are not
// covered here (docs/fault-testing.md, "Fuzzing").
//
// The clock: a line "#m<N>" (not JSON, so no session would take it)
// advances the monotonic and wall clocks by N ms and "#w<N>" / "#w-<N>"
// moves the wall clock alone (NTP, an operator), then whatever fell due
// runs (FuzzEngine::MoveClock): TTL keys, lock and lease expiry, task
// leases, delays and backoff, heartbeats, waits that time out. Any other
// line starting with '#' goes to the session like every line.
//
// Oracles besides the sanitizers: every reply line encodes to valid JSON
// with "jsonrpc": "2.0", a response with result xor error or a
// notification; batch replies are non-empty arrays; a request is answered
// at most once; a line the fast path reads gives the same request through
// ReadRequestLine + ParseRequest; EncodeResultLine matches the envelope's
// encoding.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "engine/client.h"
#include "engine/json_parse.h"
#include "net/jsonrpc.h"
#include "net/mcp_adapter.h"
#include "net/simple_request.h"
#include "tests/fuzz/fuzz_engine.h"

namespace {

using nlohmann::json;
using shim::net::EncodeLine;
using shim::net::RequestId;

class FuzzClient final : public shim::engine::Client {
 public:
  explicit FuzzClient(uint64_t id) : id_(id) {}
  uint64_t id() const override { return id_; }
  bool Notify(std::string_view method, const json& params, bool) override {
    lines.push_back(EncodeLine(shim::net::Notification(method, params)));
    return true;
  }
  bool closed() const override { return closed_; }
  void set_closed() { closed_ = true; }
  std::vector<std::string> lines;  // everything "sent" on the connection

 private:
  uint64_t id_;
  bool closed_ = false;
};

[[noreturn]] void Fail(const std::string& what, std::string_view line) {
  std::fprintf(stderr, "jsonrpc_fuzz: %s: %.*s\n", what.c_str(),
               static_cast<int>(std::min<size_t>(line.size(), 2000)), line.data());
  std::abort();
}

void CheckMessage(const json& m, std::string_view line) {
  if (!m.is_object()) Fail("a reply is not an object", line);
  auto v = m.find("jsonrpc");
  if (v == m.end() || *v != "2.0") Fail("a reply without jsonrpc 2.0", line);
  const bool response = m.contains("id");
  const bool notification = m.contains("method");
  if (response == notification) Fail("a reply is neither a response nor a notification", line);
  if (response && (m.contains("result") == m.contains("error")))
    Fail("a response needs result xor error", line);
}

void CheckLine(const std::string& line) {
  if (line.empty() || line.back() != '\n') Fail("a reply line without its newline", line);
  json m = json::parse(line, nullptr, false);
  if (m.is_discarded()) Fail("a reply line is not JSON", line);
  if (m.is_array()) {
    if (m.empty()) Fail("an empty batch reply", line);
    for (const json& e : m) CheckMessage(e, line);
  } else {
    CheckMessage(m, line);
  }
}

// The fast path must read a line exactly as the general path does.
void CheckSameAsGeneralPath(const shim::net::Request& fast, std::string_view line) {
  shim::net::RequestLine read = shim::net::ReadRequestLine(line);
  if (!read.status.ok() || !read.message.is_object())
    Fail("the fast path took a line the general path refuses", line);
  std::string error;
  auto general = shim::net::ParseRequest(std::move(read.message), read.id_texts.at(0), &error);
  if (!general.ok()) Fail("the fast path took a line the general path refuses", line);
  const shim::net::Request& g = general.value();
  if (fast.has_id != g.has_id || fast.id != g.id || fast.method != g.method ||
      fast.params.type() != g.params.type() || fast.params != g.params) {
    Fail("the fast path read a line differently from the general path", line);
  }
}

struct Connection {
  shim::fuzz::FuzzEngine& fe;
  shim::net::McpAdapter& mcp;
  std::shared_ptr<FuzzClient> client;

  void Send(std::string line) { client->lines.push_back(std::move(line)); }

  // Session::Dispatch, minus the server's own methods (sys.auth, sys.info,
  // sys.stats: answered as unknown here) and shutdown. `done` gets the
  // reply line (empty: nothing to send).
  void Dispatch(shim::net::Request req, std::function<void(std::string)> done) {
    const shim::net::MethodEntry* entry = fe.methods->Find(req.method);
    if (entry && entry->home == shim::net::MethodHome::kMcp) {
      return mcp.Handle(
          req, client, [done = std::move(done)](std::string line, bool) { done(std::move(line)); });
    }
    if (!entry || entry->home != shim::net::MethodHome::kEngine) {
      return done(req.has_id ? shim::net::EncodeErrorLine(
                                   req.id, shim::Status(shim::StatusCode::kMethodNotFound,
                                                        "unknown method '" + req.method + "'"))
                             : std::string());
    }
    fe.host->Execute(
        *entry->engine_method, req.method, std::move(req.params), client,
        [id = req.id, has_id = req.has_id, done = std::move(done)](shim::Result<json> r) {
          if (!has_id) return done({});
          if (!r.ok()) return done(shim::net::EncodeErrorLine(id, r.status()));
          // The session encodes results without the envelope document: the
          // line must be the document's (ids written canonically).
          std::string line = shim::net::EncodeResultLine(id, r.value());
          shim::Result<json> id_value = shim::ParseJson(id.text());
          if (id_value.ok() && RequestId::FromJson(id_value.value()) == id) {
            json response = {{"jsonrpc", "2.0"}, {"id", id_value.value()}, {"result", r.value()}};
            if (line != EncodeLine(response)) {
              Fail("EncodeResultLine differs from the envelope's encoding", response.dump());
            }
          }
          done(std::move(line));
        });
  }

  // Session::HandleMessage: `done` must run at most once.
  void HandleMessage(json message, std::string id_text, std::function<void(std::string)> done) {
    auto calls = std::make_shared<int>(0);
    auto once = [calls, done = std::move(done)](std::string line) {
      if (++*calls > 1) Fail("a request answered twice", line);
      done(std::move(line));
    };
    std::string error;
    auto req = shim::net::ParseRequest(std::move(message), id_text, &error);
    if (!req.ok()) return once(std::move(error));
    Dispatch(std::move(req).value(), std::move(once));
  }

  // Session::HandleLine, minus auth and the HTTP refusal.
  void HandleLine(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) return;
    auto self = client;
    // Session::HandleLine's fast path (authenticated sessions).
    if (auto req = shim::net::ParseSimpleRequest(line)) {
      CheckSameAsGeneralPath(*req, line);
      auto calls = std::make_shared<int>(0);
      return Dispatch(std::move(*req), [self, calls, line = std::string(line)](std::string reply) {
        if (++*calls > 1) Fail("a request answered twice", line);
        if (!reply.empty()) self->lines.push_back(std::move(reply));
      });
    }
    shim::net::RequestLine read = shim::net::ReadRequestLine(line);
    json& message = read.message;
    if (read.syntax_error) {
      return Send(shim::net::EncodeErrorLine(
          RequestId(), shim::Status(shim::StatusCode::kParseError, "the line is not valid JSON")));
    }
    if (!read.status.ok())
      return Send(shim::net::EncodeErrorLine(shim::net::IdFromLine(line), read.status));
    if (!message.is_array()) {
      return HandleMessage(std::move(message),
                           read.id_texts.empty() ? std::string() : read.id_texts[0],
                           [self](std::string reply) {
                             if (!reply.empty()) self->lines.push_back(std::move(reply));
                           });
    }
    if (message.empty()) {
      return Send(shim::net::EncodeErrorLine(
          RequestId(), shim::Status(shim::StatusCode::kInvalidRequest, "empty batch")));
    }
    struct BatchState {
      std::vector<std::string> replies;
      size_t remaining;
    };
    auto batch = std::make_shared<BatchState>();
    batch->replies.resize(message.size());
    batch->remaining = message.size();
    for (size_t i = 0; i < message.size(); ++i) {
      HandleMessage(
          std::move(message[i]), read.id_texts.at(i), [self, batch, i](std::string reply) {
            batch->replies[i] = std::move(reply);
            if (--batch->remaining > 0) return;
            if (std::string out = shim::net::JoinBatchReplies(batch->replies); !out.empty()) {
              self->lines.push_back(std::move(out));
            }
          });
    }
  }
};

// A clock line "#m<digits>" or "#w[-]<digits>" (see the top): moves the
// engine's clock and returns true; any other line: false.
bool MaybeMoveClock(shim::fuzz::FuzzEngine& fe, std::string_view line) {
  if (line.size() < 3 || line[0] != '#' || (line[1] != 'm' && line[1] != 'w')) return false;
  const bool wall_only = line[1] == 'w';
  std::string_view digits = line.substr(2);
  const bool back = wall_only && digits.front() == '-';
  if (back) digits.remove_prefix(1);
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string_view::npos)
    return false;
  int64_t ms = 0;
  for (char c : digits)
    ms = std::min<int64_t>(ms * 10 + (c - '0'), shim::fuzz::FuzzEngine::kMaxStepMs);
  if (wall_only)
    fe.MoveClock(0, back ? -ms : ms);
  else
    fe.MoveClock(ms, 0);
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static shim::fuzz::FuzzEngine& fe = shim::fuzz::GetFuzzEngine();
  static uint64_t next_client = 1;
  fe.BeginInput();
  Connection conn{fe, *fe.mcp, std::make_shared<FuzzClient>(next_client++)};
  std::string_view input(reinterpret_cast<const char*>(data), size);
  while (!input.empty()) {
    size_t nl = input.find('\n');
    if (nl == std::string_view::npos) break;  // an unfinished line is never handled
    if (!MaybeMoveClock(fe, input.substr(0, nl))) conn.HandleLine(input.substr(0, nl));
    input.remove_prefix(nl + 1);
    fe.host->RunUntilIdle();  // group commit after each line, as the session's Pump
  }
  // The client goes away: waits end, subscriptions go.
  conn.client->set_closed();
  fe.host->engine().OnClientClosed(conn.client->id());
  fe.host->RunUntilIdle();
  for (const std::string& line : conn.client->lines) CheckLine(line);
  return 0;
}
