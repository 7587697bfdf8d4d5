// libFuzzer target: the line framer + JSON-RPC dispatcher, on the code path
// a real connection takes. Each input is the byte stream a client sends on
// one connection: a net::Session (the server's own class) reads it from one
// end of a socketpair, splits it into lines, parses, validates and
// dispatches every request (engine methods, sys.*, MCP) to a real Engine on
// a temp store (Durability none, FakeClock) through the server's
// EngineHost; then the client half-closes. The other end reads everything
// the session writes.
//
// Oracles besides the sanitizers: every line the server sends is valid JSON
// (an object or a non-empty array of objects) with "jsonrpc": "2.0", except
// the HTTP refusal to a first line that is an HTTP request. A session still
// open when nothing moves any more (requests that wait: lock.acquire with
// wait_ms, a blocking claim) is closed by the harness, as a client
// disconnecting would.
//
// An input whose first byte is 0x01 is sent (without that byte) on a
// connection that must authenticate with sys.auth {"token": "fuzz-token"}
// first, as a TCP connection to a server with --auth-token.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "net/asio.h"
#include "net/engine_host.h"
#include "net/server.h"
#include "net/session.h"
#include "tests/fuzz/fuzz_engine.h"

namespace {

namespace asio = boost::asio;
using nlohmann::json;
using shim::net::Session;

struct Rig {
  shim::fuzz::FuzzEngine& fe = shim::fuzz::GetFuzzEngine();
  asio::io_context io;
  shim::net::EngineHost host{io, *fe.engine};
  std::unique_ptr<shim::net::Server> server;
  uint64_t next_id = 1;

  Rig() {
    shim::net::ServerOptions options;
    options.socket_path = fe.dir + "/unused.sock";  // never bound: sessions are made by hand
    options.auth_token = "fuzz-token";
    options.data_dir = fe.dir;
    options.durability = "none";
    // Small, so that inputs of a few KiB reach the over-long-line path
    // (TOO_LARGE, then skip to the newline) as well as normal lines.
    options.max_message_bytes = 1024;
    server = std::make_unique<shim::net::Server>(io, host, options);
  }
};

Rig& GetRig() {
  static Rig* rig = new Rig;  // lives until exit, like a server
  return *rig;
}

[[noreturn]] void Fail(const std::string& what, std::string_view line) {
  std::fprintf(stderr, "jsonrpc_fuzz: %s: %.*s\n", what.c_str(), static_cast<int>(std::min<size_t>(line.size(), 2000)),
               line.data());
  std::abort();
}

void CheckMessage(const json& m, std::string_view line) {
  if (!m.is_object()) Fail("a reply is not an object", line);
  auto v = m.find("jsonrpc");
  if (v == m.end() || *v != "2.0") Fail("a reply without jsonrpc 2.0", line);
  const bool response = m.contains("id");
  const bool notification = m.contains("method");
  if (response == notification) Fail("a reply is neither a response nor a notification", line);
  if (response && (m.contains("result") == m.contains("error"))) Fail("a response needs result xor error", line);
}

void CheckOutput(std::string out, bool forced_close) {
  // A connection closed under a write may have cut the last line.
  if (forced_close && !out.empty() && out.back() != '\n') out.erase(out.rfind('\n') + 1);
  size_t pos = 0;
  bool first = true;
  while (pos < out.size()) {
    size_t nl = out.find('\n', pos);
    if (nl == std::string::npos) Fail("the output ends inside a line", std::string_view(out).substr(pos));
    std::string_view line(out.data() + pos, nl - pos);
    pos = nl + 1;
    if (first && line.rfind("HTTP/1.1 400", 0) == 0) return;  // the refusal to a browser; then the close
    first = false;
    json m = json::parse(line, nullptr, false);
    if (m.is_discarded()) Fail("a reply line is not JSON", line);
    if (m.is_array()) {
      if (m.empty()) Fail("an empty batch reply", line);
      for (const json& e : m) CheckMessage(e, line);
    } else {
      CheckMessage(m, line);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Rig& rig = GetRig();
  std::string_view input(reinterpret_cast<const char*>(data), size);
  bool needs_auth = false;
  if (!input.empty() && input[0] == '\x01') {
    needs_auth = true;
    input.remove_prefix(1);
  }

  asio::local::stream_protocol::socket server_end(rig.io), client_end(rig.io);
  asio::local::connect_pair(server_end, client_end);
  client_end.non_blocking(true);
  auto session = std::make_shared<Session>(Session::Socket(std::move(server_end)), *rig.server, rig.next_id++,
                                           needs_auth);
  session->Start();

  std::string out;
  char buf[65536];
  size_t sent = 0;
  bool half_closed = false;
  int quiet = 0;  // rounds in which nothing moved
  for (int round = 0; round < 100000 && !session->closed(); ++round) {
    bool moved = false;
    boost::system::error_code ec;
    if (sent < input.size()) {
      size_t n = client_end.write_some(asio::buffer(input.data() + sent, input.size() - sent), ec);
      if (!ec && n > 0) {
        sent += n;
        moved = true;
      } else if (ec && ec != asio::error::would_block) {
        sent = input.size();  // the session closed its end
      }
    }
    if (sent == input.size() && !half_closed) {
      client_end.shutdown(asio::socket_base::shutdown_send, ec);
      half_closed = true;
      moved = true;
    }
    if (rig.io.poll() > 0) moved = true;
    for (;;) {
      size_t n = client_end.read_some(asio::buffer(buf), ec);
      if (ec || n == 0) break;
      out.append(buf, n);
      moved = true;
    }
    if (moved) {
      quiet = 0;
      continue;
    }
    if (rig.fe.engine->busy()) {
      rig.io.run_one_for(std::chrono::milliseconds(5));  // a group commit in flight
      continue;
    }
    // Nothing in flight and nothing moving: only requests that wait (a lock
    // acquire with wait_ms, a blocking claim) keep the session open.
    if (++quiet > 3) break;
  }
  const bool forced_close = !session->closed();
  if (forced_close) session->Close();  // the waits die with the connection
  rig.io.poll();
  for (;;) {
    boost::system::error_code ec;
    size_t n = client_end.read_some(asio::buffer(buf), ec);
    if (ec || n == 0) break;
    out.append(buf, n);
  }
  CheckOutput(std::move(out), forced_close);
  return 0;
}
