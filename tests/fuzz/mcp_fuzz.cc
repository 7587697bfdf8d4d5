// libFuzzer target: the MCP adapter (net/mcp_adapter.cc, net/mcp_tools.cc)
// on an in-process Engine (temp store, Durability none, FakeClock).
//
// Input format, chosen so that the fuzzer reaches every tool quickly and a
// seed stays readable: the first byte picks the MCP method (initialize,
// ping, tools/list, tools/call, logging/setLevel, a notification) and the
// second, for tools/call, the tool by its index in the catalogue (255: the
// name comes from the params instead, to reach unknown tools). The rest is
// JSON text: the params of the request (for tools/call, the arguments of the
// chosen tool, unless the second byte is 255). Text that is not JSON is
// sent as a string, which the adapter must refuse cleanly.
//
// The clock: byte 0 also says how far the clock moves while the request
// is pending, before its client goes away (so a waiting lock.acquire can
// time out instead of ending with its client): c = byte 0 / 6 — 0 not at
// all, 1..30 both clocks by 2^(c-1) ms (1 ms .. 6 days), 31..42 the wall
// clock alone back by 2^(3(c-31)) ms (1 ms .. 99 days). Seeds whose first
// byte is below 6 keep the clock still.
//
// The request goes through net::ParseRequest like a line from a socket.
// Oracles besides the sanitizers: `done` is called at most once; a request
// with an id gets a JSON-RPC response object (result xor error) whose line
// encoding is valid JSON; a tools/call result has content and isError; a
// notification gets nothing.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/json_text.h"
#include "engine/client.h"
#include "engine/json_parse.h"
#include "net/jsonrpc.h"
#include "net/mcp_adapter.h"
#include "net/mcp_tools.h"
#include "tests/fuzz/fuzz_engine.h"

namespace {

using nlohmann::json;

class FuzzClient final : public shim::engine::Client {
 public:
  explicit FuzzClient(uint64_t id) : id_(id) {}
  uint64_t id() const override { return id_; }
  bool Notify(std::string_view, const json& params, bool) override {
    (void)shim::net::EncodeLine(params);
    return true;
  }
  bool closed() const override { return closed_; }
  void set_closed() { closed_ = true; }

 private:
  uint64_t id_;
  bool closed_ = false;
};

[[noreturn]] void Fail(const std::string& what, const json& j) {
  std::fprintf(stderr, "mcp_fuzz: %s: %s\n", what.c_str(),
               shim::DumpCompact(j).substr(0, 2000).c_str());
  std::abort();
}

constexpr const char* kMethods[] = {"initialize",       "ping",
                                    "tools/list",       "tools/call",
                                    "logging/setLevel", "notifications/initialized"};

// Byte 0's clock step (see the top).
void MoveClock(shim::fuzz::FuzzEngine& fe, uint8_t byte0) {
  const int c = byte0 / static_cast<int>(std::size(kMethods));
  if (c == 0) return fe.host->RunUntilIdle();
  if (c <= 30) return fe.MoveClock(int64_t{1} << (c - 1), 0);
  fe.MoveClock(0, -(int64_t{1} << (3 * (c - 31))));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static shim::fuzz::FuzzEngine& fe = shim::fuzz::GetFuzzEngine();
  static uint64_t next_client = 1;
  if (size < 2) return 0;
  fe.BeginInput();
  shim::net::McpAdapter* adapter = fe.mcp.get();
  const std::string method = kMethods[data[0] % std::size(kMethods)];
  const uint8_t tool_index = data[1];
  std::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);
  // Read as the socket reads a line: within the nesting limit.
  shim::Result<json> parsed = shim::ParseJson(text);
  json body = parsed.ok() ? std::move(parsed).value() : json(std::string(text));

  json params = body;
  const auto& tools = shim::net::McpTools();
  if (method == "tools/call" && tool_index != 255) {
    params = json{{"name", tools[tool_index % tools.size()].name}, {"arguments", body}};
  }
  json envelope = {{"jsonrpc", "2.0"},
                   {"id", static_cast<int>(next_client)},
                   {"method", method},
                   {"params", params}};
  if (method.rfind("notifications/", 0) == 0) envelope.erase("id");

  std::string error;
  auto req = shim::net::ParseRequest(std::move(envelope), {}, &error);
  if (!req.ok()) return 0;
  auto client = std::make_shared<FuzzClient>(next_client++);
  auto calls = std::make_shared<int>(0);
  auto response = std::make_shared<json>();
  const bool has_id = req.value().has_id;
  adapter->Handle(req.value(), client, [calls, response](std::string line, bool) {
    ++*calls;
    if (line.empty()) return;
    *response = json::parse(line, nullptr, false);
    if (response->is_discarded()) Fail("the response line is not JSON", line);
  });
  fe.host->RunUntilIdle();
  MoveClock(fe, data[0]);
  // A request that waits (a lock acquire with wait_ms) ends with its client.
  client->set_closed();
  fe.host->engine().OnClientClosed(client->id());
  fe.host->RunUntilIdle();

  if (*calls > 1) Fail("done called " + std::to_string(*calls) + " times", *response);
  if (*calls == 0) return 0;
  const json& r = *response;
  if (!has_id) {
    if (!r.is_null()) Fail("a notification was answered", r);
    return 0;
  }
  if (!r.is_object() || r.value("jsonrpc", "") != "2.0") Fail("not a JSON-RPC response", r);
  if (r.contains("result") == r.contains("error")) Fail("a response needs result xor error", r);
  if (method == "tools/call" && r.contains("result")) {
    const json& res = r["result"];
    if (!res.is_object() || !res.contains("content") || !res.contains("isError"))
      Fail("a tool result without content/isError", r);
  }
  return 0;
}
