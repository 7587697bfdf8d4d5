// End-to-end: access control and connection timeouts against a real
// `shim serve` (docs/threat-model.md): the socket's mode and directory, the
// TCP listen rule, sys.auth on TCP, HTTP refused, and the partial-line,
// idle and auth timeouts. Whenever one connection is refused or cut, other
// clients must keep being served.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "net/line_client.h"
#include "tests/support/load_baseline.h"
#include "tests/support/rpc_expect.h"
#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_util.h"

namespace shim {
namespace {

using net::LineClient;
using nlohmann::json;
using testing::ExpectError;
using testing::ReadFile;
using testing::RunServeToExit;
using testing::RunShim;
using testing::ServerProcess;
using testing::SpawnServe;
using testing::TempDir;
using Clock = std::chrono::steady_clock;

using testing::kCallTimeoutMs;
constexpr const char* kToken = "0123456789abcdef-access-test-token";

int64_t MsSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

mode_t ModeOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// After the server's last line the connection ends: EOF (or a reset), not a
// timeout.
void ExpectClosed(LineClient& client, int timeout_ms = 5000) {
  auto line = client.ReadLine(timeout_ms);
  ASSERT_FALSE(line.ok()) << "unexpected line after the close: " << line.value();
  EXPECT_NE(line.status().code(), StatusCode::kTimeout)
      << "the server did not close the connection";
}

// A fresh Unix client does a write and a read.
void ExpectHealthy(const std::string& socket) {
  static std::atomic<int> probe{0};
  ASSERT_OK_AND_ASSIGN(auto client, LineClient::ConnectUnix(socket));
  const std::string key = "health/" + std::to_string(probe++);
  ASSERT_OK_AND_ASSIGN(json set,
                       client->Call("state.set", {{"key", key}, {"value", key}}, kCallTimeoutMs));
  EXPECT_EQ(set["version"], 1);
  ASSERT_OK_AND_ASSIGN(json get, client->Call("state.get", {{"key", key}}, kCallTimeoutMs));
  EXPECT_EQ(get["value"], key);
}

// `shim serve` with arbitrary arguments (own socket path), stopped by PID.
class ServeChild {
 public:
  ServeChild(std::vector<std::string> args, std::string socket, std::string log)
      : args_(std::move(args)), socket_(std::move(socket)), log_(std::move(log)) {}
  ~ServeChild() { Stop(); }

  Status Start() {
    pid_ = SpawnServe(args_, log_);
    if (pid_ < 0) return Status::Internal("fork failed");
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < deadline) {
      int status;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return Status::Internal("shim serve exited during start-up: " + ReadFile(log_));
      }
      auto client = LineClient::ConnectUnix(socket_);
      if (client.ok() && (*client)->Call("sys.ping", json::object(), 2000).ok())
        return Status::Ok();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return Status::Internal("shim serve did not answer within 20 s: " + ReadFile(log_));
  }
  int Stop() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  std::vector<std::string> args_;
  std::string socket_, log_;
  pid_t pid_ = -1;
};

// The TCP address to dial for a server's sys.info "listen" (a wildcard
// bind is reached over loopback).
std::string DialAddress(const std::string& socket) {
  auto client = LineClient::ConnectUnix(socket);
  if (!client.ok()) return "";
  auto info = (*client)->Call("sys.info", json::object(), kCallTimeoutMs);
  if (!info.ok() || !(*info)["listen"].is_string()) return "";
  const std::string listen = (*info)["listen"];
  return "127.0.0.1:" + listen.substr(listen.rfind(':') + 1);
}

int ConnectionCount(LineClient& observer) {
  auto info = observer.Call("sys.info", json::object(), kCallTimeoutMs);
  return info.ok() ? (*info)["connections"].get<int>() : -1;
}

// Waits (bounded) until the server counts at most `n` connections.
bool WaitForConnections(LineClient& observer, int n, int timeout_ms = 5000) {
  for (auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
       Clock::now() < deadline;) {
    if (ConnectionCount(observer) <= n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// --- the Unix socket and its directory -------------------------------------

TEST(SocketAccessTest, SocketIsOwnerOnlyInsideADirectoryCreatedPrivate) {
  TempDir dir;
  const std::string run = dir.Sub("run");
  const std::string socket = run + "/shim/s.sock";  // neither directory exists yet
  ServeChild server({"--data", dir.Sub("data"), "--socket", socket}, socket, dir.Sub("log"));
  ASSERT_OK(server.Start());
  struct stat st;
  ASSERT_EQ(::lstat(socket.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "socket mode " << std::oct << (st.st_mode & 0777);
  EXPECT_EQ(st.st_uid, ::geteuid());
  EXPECT_EQ(ModeOf(run + "/shim"), 0700u)
      << "socket directory mode " << std::oct << ModeOf(run + "/shim");
  ExpectHealthy(socket);
  EXPECT_EQ(server.Stop(), 0);
}

TEST(SocketAccessTest, ExistingPrivateDirectoryIsUsedAsIs) {
  ServerProcess server;  // its socket lives in a mkdtemp (0700) directory
  ASSERT_OK(server.Start());
  const std::string dir = server.socket_path().substr(0, server.socket_path().rfind('/'));
  EXPECT_EQ(ModeOf(dir), 0700u);
  EXPECT_EQ(ModeOf(server.socket_path()), 0600u);
  ExpectHealthy(server.socket_path());
}

TEST(SocketAccessTest, DirectoryOpenToOthersIsRefusedAndNotChanged) {
  TempDir dir;
  const std::string open_dir = dir.Sub("open");
  ASSERT_EQ(::mkdir(open_dir.c_str(), 0700), 0);
  for (mode_t mode : {0755, 0750, 0701, 0770}) {
    ASSERT_EQ(::chmod(open_dir.c_str(), mode), 0);
    const std::string log = dir.Sub("log-" + std::to_string(mode));
    int code = RunServeToExit({"--data", dir.Sub("data"), "--socket", open_dir + "/s.sock"}, log);
    EXPECT_NE(code, -1) << "the server kept running";
    EXPECT_NE(code, 0) << "the server started with its socket in a " << std::oct << mode
                       << " directory";
    const std::string text = ReadFile(log);
    EXPECT_NE(text.find("refusing to create the socket"), std::string::npos) << text;
    EXPECT_NE(text.find("chmod 700 " + open_dir), std::string::npos) << text;
    EXPECT_EQ(ModeOf(open_dir), mode) << "the server changed the directory's mode";
    EXPECT_FALSE(Exists(open_dir + "/s.sock"));
  }
}

TEST(SocketAccessTest, SharedStickyDirectoryLikeTmpIsRefusedAndLeftAlone) {
  TempDir dir;
  const std::string shared = dir.Sub("shared");
  ASSERT_EQ(::mkdir(shared.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(shared.c_str(), 01777), 0);
  const std::string log = dir.Sub("log");
  int code = RunServeToExit({"--data", dir.Sub("data"), "--socket", shared + "/s.sock"}, log);
  EXPECT_NE(code, -1);
  EXPECT_NE(code, 0);
  const std::string text = ReadFile(log);
  EXPECT_NE(text.find("shared with other users"), std::string::npos) << text;
  EXPECT_EQ(text.find("chmod 700"), std::string::npos)
      << "never suggest chmod on a shared directory: " << text;
  EXPECT_EQ(ModeOf(shared), 01777u);
  EXPECT_FALSE(Exists(shared + "/s.sock"));
}

// --- the TCP listen rule -----------------------------------------------------

TEST(TcpListenTest, NonLoopbackAddressWithoutTokenRefusesToStart) {
  TempDir dir;
  for (std::string listen : {"0.0.0.0:0", "[::]:0"}) {
    const std::string log = dir.Sub("log");
    std::remove(log.c_str());
    int code = RunServeToExit(
        {"--data", dir.Sub("data"), "--socket", dir.Sub("s.sock"), "--listen", listen}, log);
    EXPECT_EQ(code, 2) << listen << ": " << ReadFile(log);
    const std::string text = ReadFile(log);
    EXPECT_NE(text.find("refusing to listen on " + listen), std::string::npos) << text;
    EXPECT_NE(text.find("--auth-token"), std::string::npos) << text;
    // Refused before anything was touched.
    EXPECT_FALSE(Exists(dir.Sub("s.sock"))) << listen;
    EXPECT_FALSE(Exists(dir.Sub("data"))) << listen;
  }
}

TEST(TcpListenTest, LoopbackWithoutTokenServesWithoutAuthButRefusesHttp) {
  TempDir dir;
  const std::string socket = dir.Sub("s.sock");
  ServeChild server({"--data", dir.Sub("data"), "--socket", socket, "--listen", "127.0.0.1:0"},
                    socket, dir.Sub("log"));
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto unix_client, LineClient::ConnectUnix(socket));
  ASSERT_OK_AND_ASSIGN(json info, unix_client->Call("sys.info", json::object(), kCallTimeoutMs));
  ASSERT_TRUE(info["listen"].is_string()) << info.dump();
  EXPECT_EQ(info["listen"].get<std::string>().rfind("127.0.0.1:", 0), 0u) << info.dump();
  EXPECT_NE(info["listen"], "127.0.0.1:0") << "sys.info should show the port actually bound";
  EXPECT_EQ(info["tcp_auth"], false);
  const std::string address = DialAddress(socket);

  ASSERT_OK_AND_ASSIGN(auto tcp, LineClient::ConnectTcp(address));
  ASSERT_OK_AND_ASSIGN(json ping, tcp->Call("sys.ping", json::object(), kCallTimeoutMs));
  EXPECT_EQ(ping["pong"], true);
  // sys.auth without a configured token is accepted (clients may always send it).
  ASSERT_OK_AND_ASSIGN(json auth, tcp->Call("sys.auth", {{"token", "anything"}}, kCallTimeoutMs));
  EXPECT_EQ(auth, json({{"authenticated", true}, {"required", false}}));

  // A web page made to reach this port (DNS rebinding, a form POST) sends
  // HTTP: refused at the request line, so the JSON body is never run.
  ASSERT_OK_AND_ASSIGN(auto browser, LineClient::ConnectTcp(address));
  const std::string body =
      R"({"jsonrpc":"2.0","id":1,"method":"state.set","params":{"key":"csrf","value":1}})";
  ASSERT_OK(
      browser->SendRaw("POST / HTTP/1.1\r\nHost: evil.example:80\r\nContent-Type: text/plain\r\n"
                       "Content-Length: " +
                       std::to_string(body.size() + 1) + "\r\n\r\n" + body + "\n"));
  ASSERT_OK_AND_ASSIGN(std::string status_line, browser->ReadLine(kCallTimeoutMs));
  EXPECT_EQ(status_line, "HTTP/1.1 400 Bad Request\r");
  std::string rest;
  for (;;) {
    auto line = browser->ReadLine(5000);
    if (!line.ok()) {
      EXPECT_NE(line.status().code(), StatusCode::kTimeout)
          << "the server did not close after the 400";
      break;
    }
    rest += *line + "\n";
  }
  EXPECT_NE(rest.find("not HTTP"), std::string::npos) << rest;
  ASSERT_OK_AND_ASSIGN(json csrf,
                       unix_client->Call("state.get", {{"key", "csrf"}}, kCallTimeoutMs));
  EXPECT_TRUE(csrf.is_null()) << "the body of an HTTP request was executed: " << csrf.dump();

  ASSERT_OK_AND_ASSIGN(json again, tcp->Call("sys.ping", json::object(), kCallTimeoutMs));
  EXPECT_EQ(again["pong"], true);
  ExpectHealthy(socket);
  EXPECT_EQ(server.Stop(), 0);
}

// --- sys.auth on TCP ---------------------------------------------------------

// One server for the suite: listening on every address, with a token from a
// file, and a short auth timeout. Two long-lived clients (one TCP, one Unix)
// must keep being served through every refused connection.
class TcpAuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const std::string token_file = dir_->Sub("token");
    {
      std::ofstream out(token_file);
      out << kToken << "\n";
    }
    ::chmod(token_file.c_str(), 0600);
    socket_ = dir_->Sub("s.sock");
    server_ =
        new ServeChild({"--data", dir_->Sub("data"), "--socket", socket_, "--listen", "0.0.0.0:0",
                        "--auth-token-file", token_file, "--auth-timeout-ms", "500"},
                       socket_, dir_->Sub("log"));
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    address_ = DialAddress(socket_);
    ASSERT_FALSE(address_.empty());
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(tcp_, LineClient::ConnectTcp(address_));
    ASSERT_OK_AND_ASSIGN(json auth, tcp_->Call("sys.auth", {{"token", kToken}}, kCallTimeoutMs));
    ASSERT_EQ(auth, json({{"authenticated", true}, {"required", true}}));
    ASSERT_OK_AND_ASSIGN(unix_, LineClient::ConnectUnix(socket_));
  }
  void TearDown() override {
    // Both long-lived clients are still served, and so is a new one.
    ASSERT_OK_AND_ASSIGN(json ping, tcp_->Call("sys.ping", json::object(), kCallTimeoutMs));
    EXPECT_EQ(ping["pong"], true);
    ASSERT_OK_AND_ASSIGN(
        json set, unix_->Call("state.set", {{"key", "after"}, {"value", 1}}, kCallTimeoutMs));
    EXPECT_GE(set["version"].get<int>(), 1);
    ExpectHealthy(socket_);
  }

  std::unique_ptr<LineClient> Dial() {
    auto c = LineClient::ConnectTcp(address_);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c).value() : nullptr;
  }

  static TempDir* dir_;
  static ServeChild* server_;
  static std::string socket_, address_;
  std::unique_ptr<LineClient> tcp_, unix_;
};
TempDir* TcpAuthTest::dir_ = nullptr;
ServeChild* TcpAuthTest::server_ = nullptr;
std::string TcpAuthTest::socket_;
std::string TcpAuthTest::address_;

TEST_F(TcpAuthTest, InfoShowsTheBoundAddressAndThatTcpNeedsAuth) {
  ASSERT_OK_AND_ASSIGN(json info, unix_->Call("sys.info", json::object(), kCallTimeoutMs));
  EXPECT_EQ(info["listen"].get<std::string>().rfind("0.0.0.0:", 0), 0u) << info.dump();
  EXPECT_EQ(info["tcp_auth"], true);
  EXPECT_EQ(info.dump().find(kToken), std::string::npos) << "sys.info leaks the token";
}

TEST_F(TcpAuthTest, RequestBeforeAuthGetsUnauthorizedAndTheConnectionIsClosed) {
  auto c = Dial();
  ASSERT_TRUE(c);
  ASSERT_OK(c->SendRaw(
      R"({"jsonrpc":"2.0","id":7,"method":"state.set","params":{"key":"sneak","value":1}})"
      "\n"));
  ASSERT_OK_AND_ASSIGN(json response, c->ReadMessage(kCallTimeoutMs));
  ExpectError(response, 1013, "UNAUTHORIZED", 7);
  EXPECT_NE(response["error"]["message"].get<std::string>().find("sys.auth"), std::string::npos);
  ExpectClosed(*c);
  ASSERT_OK_AND_ASSIGN(json get, unix_->Call("state.get", {{"key", "sneak"}}, kCallTimeoutMs));
  EXPECT_TRUE(get.is_null()) << "a request before sys.auth was applied";

  // Not JSON, a batch, MCP: all the same.
  for (std::string first :
       {std::string("hello\n"),
        std::string(R"([{"jsonrpc":"2.0","id":1,"method":"sys.auth","params":{"token":")") +
            kToken +
            R"("}}])"
            "\n",
        std::string(R"({"jsonrpc":"2.0","id":"i","method":"initialize","params":{}})"
                    "\n")}) {
    auto d = Dial();
    ASSERT_TRUE(d);
    ASSERT_OK(d->SendRaw(first));
    ASSERT_OK_AND_ASSIGN(json r, d->ReadMessage(kCallTimeoutMs));
    EXPECT_EQ(r["error"]["data"]["reason"], "UNAUTHORIZED") << first << " -> " << r.dump();
    ExpectClosed(*d);
  }
}

TEST_F(TcpAuthTest, WrongOrMissingTokenIsRejectedAndTheConnectionIsClosed) {
  for (json params :
       {json{{"token", "wrong"}}, json{{"token", std::string(kToken) + "x"}},
        json{{"token", std::string(kToken).substr(1)}}, json{{"token", 42}}, json::object()}) {
    auto c = Dial();
    ASSERT_TRUE(c);
    ASSERT_OK_AND_ASSIGN(uint64_t id, c->SendRequest("sys.auth", params));
    // A request pipelined behind the failed auth is not run.
    ASSERT_OK(c->SendRaw(
        R"({"jsonrpc":"2.0","id":99,"method":"state.set","params":{"key":"behind","value":1}})"
        "\n"));
    ASSERT_OK_AND_ASSIGN(json response, c->ReadMessage(kCallTimeoutMs));
    ExpectError(response, 1013, "UNAUTHORIZED", id);
    ExpectClosed(*c);
  }
  ASSERT_OK_AND_ASSIGN(json get, unix_->Call("state.get", {{"key", "behind"}}, kCallTimeoutMs));
  EXPECT_TRUE(get.is_null());
}

// Strict parameters: even with the right token, an unknown field makes it a
// malformed sys.auth, which authenticates nothing.
TEST_F(TcpAuthTest, AnUnknownFieldIsInvalidParamsAndTheConnectionIsClosed) {
  auto c = Dial();
  ASSERT_TRUE(c);
  ASSERT_OK_AND_ASSIGN(uint64_t id,
                       c->SendRequest("sys.auth", {{"token", kToken}, {"tokne", kToken}}));
  ASSERT_OK(c->SendRaw(
      R"({"jsonrpc":"2.0","id":99,"method":"state.set","params":{"key":"behind-strict","value":1}})"
      "\n"));
  ASSERT_OK_AND_ASSIGN(json response, c->ReadMessage(kCallTimeoutMs));
  ExpectError(response, -32602, "INVALID_PARAMS", id);
  EXPECT_EQ(response["error"]["data"]["field"], "tokne") << response.dump();
  EXPECT_EQ(response["error"]["message"], "unknown field 'tokne'; did you mean 'token'?");
  ExpectClosed(*c);
  ASSERT_OK_AND_ASSIGN(json get,
                       unix_->Call("state.get", {{"key", "behind-strict"}}, kCallTimeoutMs));
  EXPECT_TRUE(get.is_null());
}

TEST_F(TcpAuthTest, RightTokenWorksAndRequestsMayBePipelinedBehindIt) {
  auto c = Dial();
  ASSERT_TRUE(c);
  std::string lines =
      json({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "sys.auth"}, {"params", {{"token", kToken}}}})
          .dump() +
      "\n";
  lines += R"({"jsonrpc":"2.0","id":2,"method":"state.set","params":{"key":"tcp/k","value":"v"}})"
           "\n";
  lines += R"({"jsonrpc":"2.0","id":3,"method":"state.get","params":{"key":"tcp/k"}})"
           "\n";
  ASSERT_OK(c->SendRaw(lines));
  ASSERT_OK_AND_ASSIGN(json auth, c->ReadResponse(1, kCallTimeoutMs));
  EXPECT_EQ(auth["result"], json({{"authenticated", true}, {"required", true}})) << auth.dump();
  ASSERT_OK_AND_ASSIGN(json set, c->ReadResponse(2, kCallTimeoutMs));
  EXPECT_EQ(set["result"]["version"], 1) << set.dump();
  ASSERT_OK_AND_ASSIGN(json get, c->ReadResponse(3, kCallTimeoutMs));
  EXPECT_EQ(get["result"]["value"], "v") << get.dump();
  // Authenticated once, the connection stays so.
  for (int i = 0; i < 5; ++i) ASSERT_OK(c->Call("sys.ping", json::object(), kCallTimeoutMs));
  ASSERT_OK_AND_ASSIGN(json info, c->Call("sys.info", json::object(), kCallTimeoutMs));
  EXPECT_EQ(info["tcp_auth"], true);
}

TEST_F(TcpAuthTest, UnixSocketNeedsNoTokenButAWrongOneIsStillRefused) {
  ASSERT_OK_AND_ASSIGN(auto c, LineClient::ConnectUnix(socket_));
  ASSERT_OK_AND_ASSIGN(json ping, c->Call("sys.ping", json::object(), kCallTimeoutMs));
  EXPECT_EQ(ping["pong"], true);
  ASSERT_OK_AND_ASSIGN(json auth, c->Call("sys.auth", {{"token", kToken}}, kCallTimeoutMs));
  EXPECT_EQ(auth, json({{"authenticated", true}, {"required", false}}));
  ASSERT_OK_AND_ASSIGN(auto d, LineClient::ConnectUnix(socket_));
  auto bad = d->Call("sys.auth", {{"token", "nope"}}, kCallTimeoutMs);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kUnauthorized) << bad.status().ToString();
  ExpectClosed(*d);
}

TEST_F(TcpAuthTest, ConnectionThatNeverAuthenticatesIsClosedAfterTheAuthTimeout) {
  auto c = Dial();
  ASSERT_TRUE(c);
  const auto start = Clock::now();
  ASSERT_OK(c->SendRaw("{\"jsonrpc\":"));  // not even a whole line
  ASSERT_OK_AND_ASSIGN(json response, c->ReadMessage(kCallTimeoutMs));
  const auto ms = MsSince(start);
  ExpectError(response, 1013, "UNAUTHORIZED", nullptr);
  EXPECT_EQ(response["error"]["data"]["timeout_ms"], 500) << response.dump();
  EXPECT_GE(ms, 400);
  EXPECT_LT(ms, 5000);
  ExpectClosed(*c);

  // Silent from the start: the same.
  auto d = Dial();
  ASSERT_TRUE(d);
  ASSERT_OK_AND_ASSIGN(json silent, d->ReadMessage(kCallTimeoutMs));
  EXPECT_EQ(silent["error"]["data"]["reason"], "UNAUTHORIZED") << silent.dump();
  ExpectClosed(*d);
}

TEST_F(TcpAuthTest, LongLineBeforeAuthIsRefusedWithoutBufferingIt) {
  auto c = Dial();
  ASSERT_TRUE(c);
  // 64 KiB and no newline: far more than a sys.auth request can be.
  (void)c->SendRaw(std::string(64 << 10, 'a'));
  ASSERT_OK_AND_ASSIGN(json response, c->ReadMessage(kCallTimeoutMs));
  ExpectError(response, 1013, "UNAUTHORIZED", nullptr);
  EXPECT_EQ(response["error"]["data"]["limit"], 4096) << response.dump();
  ExpectClosed(*c);
}

TEST_F(TcpAuthTest, HttpRequestIsRefusedWithA400) {
  auto c = Dial();
  ASSERT_TRUE(c);
  ASSERT_OK(c->SendRaw("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  ASSERT_OK_AND_ASSIGN(std::string status_line, c->ReadLine(kCallTimeoutMs));
  EXPECT_EQ(status_line, "HTTP/1.1 400 Bad Request\r");
}

TEST_F(TcpAuthTest, ClientCommandsAuthenticateOverTcp) {
  std::string out;
  int code = RunShim("call --connect " + address_ + " --auth-token " + kToken + " sys.ping", &out);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("\"pong\": true"), std::string::npos) << out;
  code = RunShim("state set --connect " + address_ + " cli/k 5", &out,
                 std::string("SHIM_AUTH_TOKEN=") + kToken);
  EXPECT_EQ(code, 0) << out;
  ASSERT_OK_AND_ASSIGN(json get, unix_->Call("state.get", {{"key", "cli/k"}}, kCallTimeoutMs));
  EXPECT_EQ(get["value"], 5);

  code = RunShim("call --connect " + address_ + " --auth-token wrong sys.ping", &out);
  EXPECT_NE(code, 0) << out;
  EXPECT_NE(out.find("UNAUTHORIZED"), std::string::npos) << out;
  code = RunShim("call --connect " + address_ + " sys.ping", &out, "SHIM_AUTH_TOKEN=");
  EXPECT_NE(code, 0) << out;
  EXPECT_NE(out.find("UNAUTHORIZED"), std::string::npos) << out;
}

// shim bench takes the same connection options as the other client
// commands: over authenticated TCP its writes land on this server.
TEST_F(TcpAuthTest, BenchRunsOverTcpWithTheToken) {
  std::string out;
  // --keep: without it the run deletes its keys at the end.
  int code =
      RunShim("bench state --op set --clients 2 --count 200 --keys 10 --json --keep --connect " +
                  address_ + " --auth-token " + kToken,
              &out);
  ASSERT_EQ(code, 0) << out;
  const json report = json::parse(out, nullptr, false);
  ASSERT_TRUE(report.contains("names")) << out;
  const std::string key = report["names"]["keys"].get<std::string>() + "0";
  ASSERT_OK_AND_ASSIGN(json got, unix_->Call("state.get", {{"key", key}}, kCallTimeoutMs));
  EXPECT_FALSE(got.is_null()) << "shim bench --connect wrote nothing here: " << out;

  code = RunShim("bench state --count 10 --connect " + address_ + " --auth-token wrong", &out);
  EXPECT_NE(code, 0) << out;
  EXPECT_NE(out.find("UNAUTHORIZED"), std::string::npos) << out;
  code = RunShim("bench state --count 10 --spawn --connect " + address_, &out);
  EXPECT_EQ(code, 2) << out;
}

// --- partial-line and idle timeouts ------------------------------------------

testing::ServerProcessOptions WithArgs(std::vector<std::string> args) {
  testing::ServerProcessOptions options;
  options.extra_args = std::move(args);
  return options;
}

// Sends `first`, then one byte every `every_ms` until the server answers (or
// `limit_ms` passes). Returns the time from the first byte to the answer.
int64_t TrickleUntilAnswered(LineClient& c, const std::string& first, int64_t every_ms,
                             int64_t limit_ms) {
  const auto start = Clock::now();
  (void)c.SendRaw(first);
  while (MsSince(start) < limit_ms) {
    pollfd p{c.fd(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(every_ms)) > 0) break;
    (void)c.SendRaw("x");  // fails once the server has closed: fine
  }
  return MsSince(start);
}

// The timeouts these tests start servers with follow the load (a slow
// step is a late wakeup here: the server's timers and the clients' sends
// wait for a CPU the same way); on a quiet machine they are the floors.
int64_t TimeoutFromLoad(int64_t floor_ms) { return testing::MeasureLoad().Window(floor_ms, 10); }

// What decides here is the order of events, not how fast the machine is:
// - bytes every 100 ms that extended the timeout would keep the line open
//   for as long as they flow, so the cut must come while they still flow
//   (they flow kTrickleMs, many timeouts long);
// - a line that then goes silent is cut by the timer alone: "{" and not
//   another byte until the answer;
// - the cut never comes before the timeout, counted from the first byte;
// - another client's requests are answered while the slow line is open
//   (a server that waited for the line would answer them after the cut).
TEST(ConnectionTimeoutTest, TricklingClientIsCutAtThePartialLineTimeoutWhileOthersAreServed) {
  const int64_t timeout_ms = TimeoutFromLoad(300);
  const int64_t trickle_ms = 20 * timeout_ms;
  ServerProcess server(WithArgs({"--partial-line-timeout-ms", std::to_string(timeout_ms)}));
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto observer, server.Connect());
  const int baseline = ConnectionCount(*observer);

  // Another client keeps asking; the times of its answers are kept.
  std::atomic<bool> stop{false};
  std::atomic<int> failed{0};
  std::mutex answered_mu;
  std::vector<Clock::time_point> answered;
  std::thread other([&] {
    auto c = server.Connect();
    if (!c.ok()) {
      ++failed;
      return;
    }
    while (!stop) {
      auto r = (*c)->Call("state.get", {{"key", "other"}}, kCallTimeoutMs);
      if (!r.ok()) {
        ++failed;
      } else {
        std::lock_guard lock(answered_mu);
        answered.push_back(Clock::now());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  auto answered_between = [&](Clock::time_point from, Clock::time_point to) {
    std::lock_guard lock(answered_mu);
    return std::count_if(answered.begin(), answered.end(),
                         [&](auto t) { return t > from && t < to; });
  };

  ASSERT_OK_AND_ASSIGN(auto slow, server.Connect());
  // A request line, one byte every 100 ms: more bytes do not extend the timeout.
  const auto slow_start = Clock::now();
  const int64_t answered_ms = TrickleUntilAnswered(
      *slow, R"({"jsonrpc":"2.0","id":1,"method":"sys.ping",)", 100, trickle_ms);
  const auto slow_end = Clock::now();
  ASSERT_OK_AND_ASSIGN(json response, slow->ReadMessage(kCallTimeoutMs));
  ExpectError(response, 1007, "TIMEOUT", nullptr);
  EXPECT_EQ(response["error"]["data"]["timeout_ms"], timeout_ms) << response.dump();
  EXPECT_NE(response["error"]["message"].get<std::string>().find("request line not completed"),
            std::string::npos)
      << response.dump();
  EXPECT_GE(answered_ms, timeout_ms);
  EXPECT_LT(answered_ms, trickle_ms) << "the trickling bytes kept the line open";
  ExpectClosed(*slow);
  EXPECT_TRUE(WaitForConnections(*observer, baseline + 1))
      << "the server kept the trickling connection";
  EXPECT_GE(answered_between(slow_start, slow_end), 1)
      << "no other request was answered during the " << answered_ms << " ms the slow line was open";

  // One byte, then silence: cut by the timer, with no later byte to wake it.
  ASSERT_OK_AND_ASSIGN(auto silent, server.Connect());
  const int64_t silent_ms = TrickleUntilAnswered(*silent, "{", trickle_ms, trickle_ms);
  EXPECT_GE(silent_ms, timeout_ms);
  EXPECT_LT(silent_ms, trickle_ms) << "a silent partial line was never cut";
  ASSERT_OK_AND_ASSIGN(json r2, silent->ReadMessage(kCallTimeoutMs));
  EXPECT_EQ(r2["error"]["data"]["reason"], "TIMEOUT") << r2.dump();
  ExpectClosed(*silent);

  stop = true;
  other.join();
  EXPECT_EQ(failed.load(), 0);
  ExpectHealthy(server.socket_path());
}

// Lines completed within the partial-line timeout are never cut, however
// long the connection goes on sending them: each line's halves are half a
// timeout apart (the other half absorbs 5 slow steps of the load measured
// for the timeout), and the 8 lines take several timeouts in all.
TEST(ConnectionTimeoutTest, WholeLinesSentSlowlyAreNotCut) {
  const int64_t timeout_ms = TimeoutFromLoad(300);
  ServerProcess server(WithArgs({"--partial-line-timeout-ms", std::to_string(timeout_ms)}));
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto c, server.Connect());
  for (int i = 0; i < 8; ++i) {
    const std::string line =
        json({{"jsonrpc", "2.0"}, {"id", i}, {"method", "sys.ping"}}).dump() + "\n";
    ASSERT_OK(c->SendRaw(line.substr(0, 10)));
    std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms / 2));
    ASSERT_OK(c->SendRaw(line.substr(10)));
    ASSERT_OK_AND_ASSIGN(json r, c->ReadResponse(i, kCallTimeoutMs));
    EXPECT_EQ(r["result"]["pong"], true) << r.dump();
    std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms / 3));
  }
}

// A connection with no traffic for the idle timeout is told and closed; one
// that keeps sending is not, nor one whose request waits server-side longer
// than the timeout. The busy client sends every quarter timeout (the rest
// absorbs 7 slow steps of the load measured for the timeout).
TEST(ConnectionTimeoutTest, IdleConnectionIsClosedButNotWhileARequestIsPending) {
  const int64_t idle_ms = TimeoutFromLoad(400);
  ServerProcess server(WithArgs({"--idle-timeout-ms", std::to_string(idle_ms)}));
  ASSERT_OK(server.Start());

  // Busy clients are never idle.
  ASSERT_OK_AND_ASSIGN(auto busy, server.Connect());
  ASSERT_OK_AND_ASSIGN(auto idle, server.Connect());
  ASSERT_OK(idle->Call("sys.ping", json::object(), kCallTimeoutMs));
  for (int i = 0; i < 12; ++i) {
    SCOPED_TRACE("the busy client's ping " + std::to_string(i));
    ASSERT_OK(busy->Call("sys.ping", json::object(), kCallTimeoutMs));
    std::this_thread::sleep_for(std::chrono::milliseconds(idle_ms / 4));
  }
  // The idle one was told and closed meanwhile.
  ASSERT_OK_AND_ASSIGN(json response, idle->ReadMessage(kCallTimeoutMs));
  ExpectError(response, 1007, "TIMEOUT", nullptr);
  EXPECT_EQ(response["error"]["data"]["timeout_ms"], idle_ms) << response.dump();
  EXPECT_NE(response["error"]["message"].get<std::string>().find("no traffic"), std::string::npos)
      << response.dump();
  ExpectClosed(*idle);

  // A request waiting server-side longer than the idle timeout is not idle.
  ASSERT_OK_AND_ASSIGN(auto holder, server.Connect());
  ASSERT_OK(holder->Call("lock.acquire", {{"name", "L"}, {"owner", "a"}, {"ttl_ms", 600'000}},
                         kCallTimeoutMs));
  ASSERT_OK_AND_ASSIGN(auto waiter, server.Connect());
  const int64_t wait_ms = idle_ms * 5 / 2;
  auto waited = waiter->Call(
      "lock.acquire", {{"name", "L"}, {"owner", "b"}, {"ttl_ms", 1000}, {"wait_ms", wait_ms}},
      static_cast<int>(wait_ms) + kCallTimeoutMs);
  ASSERT_FALSE(waited.ok());
  EXPECT_EQ(waited.status().code(), StatusCode::kTimeout) << waited.status().ToString();
  EXPECT_FALSE(waited.status().details().contains("timeout_ms")) << "the waiter was cut as idle";
  ExpectHealthy(server.socket_path());
}

}  // namespace
}  // namespace shim
