// End-to-end: malformed and hostile input against a real `shim serve`.
// After every case a second, separate client must still get correct answers.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/rpc_expect.h"
#include "tests/support/server_health.h"
#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_util.h"

namespace shim {
namespace {

using nlohmann::json;
using testing::ExpectError;
using testing::JsonLine;
using testing::RssKiB;
using testing::RunServeToExit;
using testing::ServerProcess;
using Clock = std::chrono::steady_clock;

using testing::ExpectHealthy;
using testing::kCallTimeoutMs;

// One server for the suite: the point is that it survives every case.
class BadInputTest : public testing::OneServerSuite {};

TEST_F(BadInputTest, InvalidJsonGetsParseErrorWithNullIdAndConnectionStaysUsable) {
  ASSERT_OK_AND_ASSIGN(auto client, server_->Connect());
  for (std::string bad : {"{not json", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"sys.ping\"",
                          "\xff\xfe\x01", "]"}) {
    ASSERT_OK(client->SendRaw(bad + "\n"));
    ASSERT_OK_AND_ASSIGN(json response, client->ReadMessage(kCallTimeoutMs));
    ExpectError(response, -32700, "PARSE_ERROR", nullptr);
    ASSERT_OK_AND_ASSIGN(json ping, client->Call("sys.ping", json::object(), kCallTimeoutMs));
    EXPECT_EQ(ping["pong"], true) << "after " << bad;
  }
  ExpectHealthy(*server_);
}

TEST_F(BadInputTest, ParamsThatAreNotAnObjectGetInvalidParams) {
  ASSERT_OK_AND_ASSIGN(auto client, server_->Connect());
  for (json params : {json::array({"k", 1}), json("k"), json(5)}) {
    ASSERT_OK(client->SendRaw(
        JsonLine({{"jsonrpc", "2.0"}, {"id", 7}, {"method", "state.get"}, {"params", params}})));
    ASSERT_OK_AND_ASSIGN(json response, client->ReadMessage(kCallTimeoutMs));
    ExpectError(response, -32602, "INVALID_PARAMS", 7);
    EXPECT_EQ(response["error"]["data"]["field"], "params") << response.dump();
  }
  ASSERT_OK_AND_ASSIGN(json ping, client->Call("sys.ping", json::object(), kCallTimeoutMs));
  EXPECT_EQ(ping["pong"], true);
  ExpectHealthy(*server_);
}

TEST_F(BadInputTest, WrongFieldTypesGetInvalidParamsNamingTheField) {
  ASSERT_OK_AND_ASSIGN(auto client, server_->Connect());
  struct Case {
    std::string method;
    json params;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"state.set", {{"key", 5}, {"value", 1}}, "key"},
      {"state.set", {{"key", "typed/ttl"}, {"value", 1}, {"ttl_ms", "100"}}, "ttl_ms"},
      {"state.get", {{"key", json::array({"a"})}}, "key"},
      {"state.incr", {{"key", "typed/incr"}, {"by", "2"}}, "by"},
      {"state.set", {{"value", 1}}, "key"},
      {"pubsub.publish", {{"channel", 1}, {"data", 1}}, "channel"},
      {"pubsub.subscribe", {{"channel", "c"}, {"from_seq", "1"}}, "from_seq"},
  };
  for (const Case& c : cases) {
    ASSERT_OK_AND_ASSIGN(uint64_t id, client->SendRequest(c.method, c.params));
    ASSERT_OK_AND_ASSIGN(json response, client->ReadResponse(id, kCallTimeoutMs));
    ExpectError(response, -32602, "INVALID_PARAMS", id);
    EXPECT_EQ(response["error"]["data"]["field"], c.field) << c.method << " " << c.params.dump();
  }
  // Nothing of a rejected request was applied.
  for (const char* key : {"typed/ttl", "typed/incr"}) {
    ASSERT_OK_AND_ASSIGN(json get, client->Call("state.get", {{"key", key}}, kCallTimeoutMs));
    EXPECT_TRUE(get.is_null()) << key << ": " << get.dump();
  }
  ExpectHealthy(*server_);
}

TEST_F(BadInputTest, TwoMebibyteLineGetsTooLargeAndTheConnectionStillWorks) {
  ASSERT_OK_AND_ASSIGN(auto client, server_->Connect());
  std::string big = json({{"jsonrpc", "2.0"},
                          {"id", 1},
                          {"method", "state.set"},
                          {"params", {{"key", "huge"}, {"value", std::string(2 << 20, 'v')}}}})
                        .dump();
  ASSERT_GT(big.size(), size_t{2} << 20);
  // The valid request right behind the over-long line, in the same write,
  // must be answered: the server skips exactly to the end of the long line.
  ASSERT_OK(client->SendRaw(
      big + "\n" + JsonLine({{"jsonrpc", "2.0"}, {"id", "next"}, {"method", "sys.ping"}})));
  ASSERT_OK_AND_ASSIGN(json response, client->ReadMessage(kCallTimeoutMs));
  // The id is read from the start of the line, so the client can match it.
  ExpectError(response, 1008, "TOO_LARGE", 1);
  EXPECT_EQ(response["error"]["data"]["limit"], 1 << 20) << response.dump();
  ASSERT_OK_AND_ASSIGN(json next, client->ReadMessage(kCallTimeoutMs));
  EXPECT_EQ(next["id"], "next") << next.dump();
  EXPECT_EQ(next["result"]["pong"], true) << next.dump();

  // Sent in small pieces, an over-long line is still refused once.
  const std::string slow_big = std::string(1 << 20, ' ') + "  {}";  // JSON-valid, just too long
  for (size_t at = 0; at < slow_big.size(); at += 100'000) {
    ASSERT_OK(client->SendRaw(std::string_view(slow_big).substr(at, 100'000)));
  }
  ASSERT_OK(client->SendRaw("\n"));
  ASSERT_OK_AND_ASSIGN(json again, client->ReadMessage(kCallTimeoutMs));
  ExpectError(again, 1008, "TOO_LARGE", nullptr);

  // An id that only comes after the huge params cannot be read: null.
  ASSERT_OK(
      client->SendRaw(R"({"jsonrpc":"2.0","method":"state.set","params":{"key":"huge","value":")" +
                      std::string(2 << 20, 'v') + R"("},"id":"late"})" + "\n"));
  ASSERT_OK_AND_ASSIGN(json late, client->ReadMessage(kCallTimeoutMs));
  ExpectError(late, 1008, "TOO_LARGE", nullptr);
  // A string id up front, with a nested "id" inside params before it: the
  // top-level one counts.
  ASSERT_OK(client->SendRaw(R"({"params":{"id":"inner","value":")" + std::string(2 << 20, 'v') +
                            R"("},"jsonrpc":"2.0","method":"state.set","id":"outer"})" + "\n"));
  ASSERT_OK_AND_ASSIGN(json nested, client->ReadMessage(kCallTimeoutMs));
  ExpectError(nested, 1008, "TOO_LARGE", nullptr);
  ASSERT_OK(client->SendRaw(R"({"id":"front","params":{"id":"inner","value":")" +
                            std::string(2 << 20, 'v') +
                            R"("},"jsonrpc":"2.0","method":"state.set"})" + "\n"));
  ASSERT_OK_AND_ASSIGN(json front, client->ReadMessage(kCallTimeoutMs));
  ExpectError(front, 1008, "TOO_LARGE", "front");

  ASSERT_OK_AND_ASSIGN(json get, client->Call("state.get", {{"key", "huge"}}, kCallTimeoutMs));
  EXPECT_TRUE(get.is_null()) << "the discarded request was applied";
  ASSERT_OK_AND_ASSIGN(
      json set, client->Call("state.set", {{"key", "after-huge"}, {"value", 1}}, kCallTimeoutMs));
  EXPECT_EQ(set["version"], 1);
  auto extra = client->ReadLine(200);
  EXPECT_FALSE(extra.ok()) << "stray line: " << extra.value();
  ExpectHealthy(*server_);
}

TEST_F(BadInputTest, UnknownMethodGetsMethodNotFound) {
  ASSERT_OK_AND_ASSIGN(auto client, server_->Connect());
  ASSERT_OK_AND_ASSIGN(uint64_t id, client->SendRequest("state.frobnicate", {{"key", "x"}}));
  ASSERT_OK_AND_ASSIGN(json response, client->ReadResponse(id, kCallTimeoutMs));
  ExpectError(response, -32601, "METHOD_NOT_FOUND", id);
  ASSERT_OK(client->SendRaw(JsonLine({{"jsonrpc", "2.0"}, {"id", "s"}, {"method", ""}})));
  ASSERT_OK_AND_ASSIGN(json empty, client->ReadMessage(kCallTimeoutMs));
  ExpectError(empty, -32601, "METHOD_NOT_FOUND", "s");
  ASSERT_OK_AND_ASSIGN(json ping, client->Call("sys.ping", json::object(), kCallTimeoutMs));
  EXPECT_EQ(ping["pong"], true);
  ExpectHealthy(*server_);
}

TEST_F(BadInputTest, MissingOrWrongJsonrpcFieldGetsInvalidRequest) {
  ASSERT_OK_AND_ASSIGN(auto client, server_->Connect());
  ASSERT_OK(client->SendRaw(JsonLine({{"id", 3}, {"method", "sys.ping"}})));
  ASSERT_OK_AND_ASSIGN(json missing, client->ReadMessage(kCallTimeoutMs));
  ExpectError(missing, -32600, "INVALID_REQUEST", 3);
  ASSERT_OK(client->SendRaw(JsonLine({{"jsonrpc", "1.0"}, {"id", 4}, {"method", "sys.ping"}})));
  ASSERT_OK_AND_ASSIGN(json wrong, client->ReadMessage(kCallTimeoutMs));
  ExpectError(wrong, -32600, "INVALID_REQUEST", 4);
  ASSERT_OK(client->SendRaw(JsonLine({{"jsonrpc", "2.0"}, {"id", 5}, {"method", 12}})));
  ASSERT_OK_AND_ASSIGN(json method, client->ReadMessage(kCallTimeoutMs));
  ExpectError(method, -32600, "INVALID_REQUEST", 5);
  ASSERT_OK(client->SendRaw(
      JsonLine({{"jsonrpc", "2.0"}, {"id", {{"an", "object"}}}, {"method", "sys.ping"}})));
  ASSERT_OK_AND_ASSIGN(json bad_id, client->ReadMessage(kCallTimeoutMs));
  ExpectError(bad_id, -32600, "INVALID_REQUEST", nullptr);
  ASSERT_OK(client->SendRaw("17\n"));
  ASSERT_OK_AND_ASSIGN(json scalar, client->ReadMessage(kCallTimeoutMs));
  ExpectError(scalar, -32600, "INVALID_REQUEST", nullptr);
  ASSERT_OK_AND_ASSIGN(json ping, client->Call("sys.ping", json::object(), kCallTimeoutMs));
  EXPECT_EQ(ping["pong"], true);
  ExpectHealthy(*server_);
}

TEST_F(BadInputTest, HalfARequestThenDisconnectIsForgotten) {
  ASSERT_OK_AND_ASSIGN(auto observer, server_->Connect());
  ASSERT_OK_AND_ASSIGN(json before, observer->Call("sys.info", json::object(), kCallTimeoutMs));
  const int baseline = before["connections"].get<int>();
  {
    ASSERT_OK_AND_ASSIGN(auto half, server_->Connect());
    ASSERT_OK(half->SendRaw(
        R"({"jsonrpc":"2.0","id":1,"method":"state.set","params":{"key":"half","val)"));
    // Let the server read the fragment before the connection goes.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }  // closes
  ExpectHealthy(*server_);
  ASSERT_OK_AND_ASSIGN(json get, observer->Call("state.get", {{"key", "half"}}, kCallTimeoutMs));
  EXPECT_TRUE(get.is_null()) << "half a request was applied: " << get.dump();

  // The server reaps the connection (bounded wait).
  int connections = -1;
  for (auto deadline = Clock::now() + std::chrono::seconds(5); Clock::now() < deadline;) {
    ASSERT_OK_AND_ASSIGN(json info, observer->Call("sys.info", json::object(), kCallTimeoutMs));
    connections = info["connections"].get<int>();
    if (connections <= baseline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(connections, baseline);

  // Half a request, then a half-close (shutdown of the write side): the
  // server answers nothing for the fragment and closes the connection.
  ASSERT_OK_AND_ASSIGN(auto half_closed, server_->Connect());
  ASSERT_OK(half_closed->SendRaw(R"({"jsonrpc":"2.0","id":1,"method":"sys.ping"})"
                                 "\n"
                                 R"({"jsonrpc":"2.0","id":2,"me)"));
  ASSERT_EQ(::shutdown(half_closed->fd(), SHUT_WR), 0);
  ASSERT_OK_AND_ASSIGN(json first, half_closed->ReadMessage(kCallTimeoutMs));
  EXPECT_EQ(first["id"], 1) << first.dump();
  auto eof = half_closed->ReadLine(kCallTimeoutMs);
  ASSERT_FALSE(eof.ok()) << "answered a fragment: " << eof.value();
  EXPECT_NE(eof.status().code(), StatusCode::kTimeout)
      << "the server did not close a half-closed connection";
  ExpectHealthy(*server_);
}

TEST_F(BadInputTest, ClientThatNeverReadsDoesNotStallOthersOrGrowTheServerUnbounded) {
  ASSERT_OK_AND_ASSIGN(auto other, server_->Connect());
  // Replies of ~128 KiB each to requests of ~90 bytes: one chunk of
  // pipelined requests asks for far more output than --max-outbound-bytes
  // (8 MiB by default).
  const std::string big_value(128 << 10, 'r');
  ASSERT_OK_AND_ASSIGN(
      json set,
      other->Call("state.set", {{"key", "flood/big"}, {"value", big_value}}, kCallTimeoutMs));
  ASSERT_EQ(set["version"], 1);
  ASSERT_OK(other->Call("state.set", {{"key", "flood/small"}, {"value", "s"}}, kCallTimeoutMs));
  ASSERT_OK(other->Call("sys.ping", json::object(), kCallTimeoutMs));
  const long rss_before = RssKiB(server_->pid());
  ASSERT_GT(rss_before, 0);

  ASSERT_OK_AND_ASSIGN(auto flooder, server_->Connect());
  // 800 requests (~72 KB; 300 under a sanitizer) fit the socket buffer, so
  // this does not block; their replies are 100 MiB (37 MiB), far over the
  // 8 MiB outbound limit either way.
  constexpr int kFlood = testing::SanitizedLoad(800, 300);
  std::string requests;
  for (int i = 1; i <= kFlood; ++i) {
    requests += JsonLine({{"jsonrpc", "2.0"},
                          {"id", i},
                          {"method", "state.get"},
                          {"params", {{"key", "flood/big"}}}});
  }
  ASSERT_OK(flooder->SendRaw(requests));

  auto timed = [&](const char* what, int i, auto&& body) {
    const auto start = Clock::now();
    body();
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    EXPECT_LT(ms, testing::LatencyBoundMs(2000))
        << what << " round trip " << i << " took " << ms << " ms";
  };
  // Reads only first: the flood's replies go straight to its outbound queue,
  // which must stay near the 8 MiB limit (not kFlood x 128 KiB).
  long rss_peak = rss_before;
  for (int i = 0; i < 10; ++i) {
    timed("read", i, [&] {
      ASSERT_OK_AND_ASSIGN(json r, other->Call("state.get", {{"key", "flood/small"}}, 5000));
      EXPECT_EQ(r["value"], "s");
    });
    rss_peak = std::max(rss_peak, RssKiB(server_->pid()));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_LT(rss_peak - rss_before, testing::MemoryBoundKiB(48 * 1024))
      << "server RSS grew by " << (rss_peak - rss_before) << " KiB for a client that does not read";

  // Writes too: the other client keeps getting prompt, correct answers.
  for (int i = 0; i < 10; ++i) {
    timed("write", i, [&] {
      const std::string key = "flood/other/" + std::to_string(i);
      ASSERT_OK_AND_ASSIGN(json w, other->Call("state.set", {{"key", key}, {"value", i}}, 5000));
      EXPECT_EQ(w["version"], 1);
      ASSERT_OK_AND_ASSIGN(json r, other->Call("state.get", {{"key", key}}, 5000));
      EXPECT_EQ(r["value"], i);
    });
  }
  ExpectHealthy(*server_);

  // Replies are never dropped: once the flooder reads, all kFlood arrive, in order.
  int got = 0;
  const auto deadline = Clock::now() + std::chrono::milliseconds(testing::LatencyBoundMs(20'000));
  while (got < kFlood && Clock::now() < deadline) {
    ASSERT_OK_AND_ASSIGN(std::string line, flooder->ReadLine(kCallTimeoutMs));
    json response = json::parse(line, nullptr, false);
    ASSERT_EQ(response["id"], got + 1);
    ASSERT_EQ(response["result"]["value"].get_ref<const std::string&>().size(), big_value.size());
    ++got;
  }
  EXPECT_EQ(got, kFlood);
}

TEST_F(BadInputTest, ServerWithoutListenHasNoTcpEndpoint) {
  ASSERT_OK_AND_ASSIGN(auto client, server_->Connect());
  ASSERT_OK_AND_ASSIGN(json info, client->Call("sys.info", json::object(), kCallTimeoutMs));
  EXPECT_TRUE(info["listen"].is_null()) << info.dump();
  EXPECT_EQ(info["socket"], server_->socket_path());
  EXPECT_EQ(info["protocol"], 3);
  EXPECT_EQ(info["durability"], "sync");
  struct stat st;
  ASSERT_EQ(::lstat(server_->socket_path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "socket mode " << std::oct << (st.st_mode & 0777);
}

// --- start-up on a socket path -------------------------------------------

TEST(ServerStartupTest, StaleSocketFromKilledServerIsReplaced) {
  ServerProcess server;
  ASSERT_OK(server.Start());
  {
    ASSERT_OK_AND_ASSIGN(auto client, server.Connect());
    ASSERT_OK(client->Call("state.set", {{"key", "before"}, {"value", 1}}, kCallTimeoutMs));
  }
  server.Kill();
  struct stat st;
  ASSERT_EQ(::lstat(server.socket_path().c_str(), &st), 0)
      << "SIGKILL should leave the socket file behind";
  ASSERT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_FALSE(server.Connect().ok()) << "nobody should answer on the stale socket";

  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto client, server.Connect());
  ASSERT_OK_AND_ASSIGN(json get, client->Call("state.get", {{"key", "before"}}, kCallTimeoutMs));
  EXPECT_EQ(get["value"], 1);
  ExpectHealthy(server);
  EXPECT_EQ(server.Stop(), 0);
  EXPECT_NE(::lstat(server.socket_path().c_str(), &st), 0)
      << "a clean stop removes the socket file";
}

TEST(ServerStartupTest, SecondServerOnALiveSocketRefusesAndTheFirstKeepsServing) {
  ServerProcess first;
  ASSERT_OK(first.Start());
  ASSERT_OK_AND_ASSIGN(auto client, first.Connect());
  ASSERT_OK(client->Call("state.set", {{"key", "first"}, {"value", "mine"}}, kCallTimeoutMs));

  testing::TempDir other;
  // Same socket, its own data directory: the socket check must refuse.
  int code = RunServeToExit({"--data", other.Sub("data"), "--socket", first.socket_path()},
                            other.Sub("log"), 20'000);
  EXPECT_NE(code, -1) << "the second server kept running";
  EXPECT_NE(code, 0) << "the second server started on a live socket";
  // Same data directory, another socket: the store lock must refuse.
  int code2 = RunServeToExit({"--data", first.data_dir(), "--socket", other.Sub("s2.sock")},
                             other.Sub("log"), 20'000);
  EXPECT_NE(code2, -1) << "the second server kept running";
  EXPECT_NE(code2, 0) << "the second server opened a data directory in use";

  // The first server is untouched: same socket file, same data, same connection.
  struct stat st;
  ASSERT_EQ(::lstat(first.socket_path().c_str(), &st), 0);
  ASSERT_OK_AND_ASSIGN(json get, client->Call("state.get", {{"key", "first"}}, kCallTimeoutMs));
  EXPECT_EQ(get["value"], "mine");
  ExpectHealthy(first);
  EXPECT_EQ(first.Stop(), 0);
}

}  // namespace
}  // namespace shim
