// End-to-end: the server's lifecycle from the command line (issue 20):
// `shim stop` and sys.shutdown (Unix socket only; writes in flight
// finish), `shim info`'s pid, log file, TCP address and counts, `shim serve
// --log-file`, one server per data directory (the refusal names the
// other), a private data directory, SHIM_HOME resolution, and `shim mcp`
// starting the server: its log in $SHIM_HOME/shim.log, and a start-up
// failure reported at once with the server's own error line.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include "cli/data_dir_owner.h"
#include "net/line_client.h"
#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_util.h"

// Its own namespace: in the unity build every e2e test file shares one
// translation unit, and these helpers must not meet same-named ones.
namespace shim::lifecycle_test {
namespace {

using net::LineClient;
using nlohmann::json;
using testing::ReadFile;
using testing::RunServeToExit;
using testing::RunShim;
using testing::ServerProcess;
using testing::ServerProcessOptions;
using testing::TempDir;
using Clock = std::chrono::steady_clock;

bool PathExists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

mode_t PermissionsOf(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : 0;
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// --- shim stop and sys.shutdown ----------------------------------------------

TEST(ShimStopTest, StopWaitReturnsOnceTheServerHasExitedCleanly) {
  ServerProcess server;
  ASSERT_OK(server.Start());
  const pid_t pid = server.pid();
  std::string out;
  ASSERT_EQ(RunShim("stop --wait --socket " + server.socket_path(), &out), 0) << out;
  EXPECT_TRUE(Contains(out, "stopping the server (pid " + std::to_string(pid) + ")")) << out;
  EXPECT_TRUE(Contains(out, "it has exited")) << out;
  EXPECT_FALSE(PathExists(server.socket_path()));
  // --wait returned after the exit: the child is already there to reap, clean.
  EXPECT_EQ(server.WaitForExit(0), 0) << ReadFile(server.log_path());
}

TEST(ShimStopTest, NoServerIsExitThreeWithAPlainMessage) {
  TempDir dir;
  std::string out;
  EXPECT_EQ(RunShim("stop --socket " + dir.Sub("none.sock"), &out), 3) << out;
  EXPECT_TRUE(Contains(out, "no shim server is running at " + dir.Sub("none.sock"))) << out;
  EXPECT_TRUE(Contains(out, "nothing to stop")) << out;
  EXPECT_FALSE(Contains(out, "start one")) << out;

  // A socket file a killed server left behind is no server either.
  ServerProcess killed;
  ASSERT_OK(killed.Start());
  killed.Kill();
  ASSERT_TRUE(PathExists(killed.socket_path()));
  EXPECT_EQ(RunShim("stop --socket " + killed.socket_path(), &out), 3) << out;
  EXPECT_TRUE(Contains(out, "nothing to stop")) << out;
}

TEST(ShimStopTest, WritesInFlightFinishAndEveryAnsweredWriteSurvives) {
  ServerProcess server;
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto writer, server.Connect());
  // Many writes in one burst, then the stop from another connection: each
  // write is answered either as done (then it is durable) or SHUTTING_DOWN.
  constexpr int kWrites = 300;
  std::string burst;
  for (int i = 0; i < kWrites; ++i) {
    burst += json{{"jsonrpc", "2.0"},
                  {"id", i},
                  {"method", "state.set"},
                  {"params", {{"key", "k/" + std::to_string(i)}, {"value", i}}}}
                 .dump() +
             "\n";
  }
  ASSERT_OK(writer->SendRaw(burst));
  ASSERT_OK_AND_ASSIGN(auto stopper, server.Connect());
  ASSERT_OK_AND_ASSIGN(json stopping, stopper->Call("sys.shutdown"));
  EXPECT_EQ(stopping["stopping"], true);
  EXPECT_EQ(stopping["pid"], server.pid());

  std::set<int> done;
  int refused = 0;
  for (int answered = 0; answered < kWrites; ++answered) {
    auto reply = writer->ReadMessage(10'000);
    if (!reply.ok()) break;  // the server closed once the rest were unread
    if (reply->contains("result")) {
      done.insert((*reply)["id"].get<int>());
    } else {
      EXPECT_EQ((*reply)["error"]["data"]["reason"], "SHUTTING_DOWN") << reply->dump();
      ++refused;
    }
  }
  EXPECT_GT(done.size(), 0u) << "the writes read before the stop must be finished";
  EXPECT_EQ(server.WaitForExit(20'000), 0) << ReadFile(server.log_path());

  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto reader, server.Connect());
  for (int i : done) {
    ASSERT_OK_AND_ASSIGN(json got, reader->Call("state.get", {{"key", "k/" + std::to_string(i)}}));
    EXPECT_EQ(got["value"], i) << "write " << i << " was answered but is gone";
  }
}

TEST(ShimStopTest, ShutdownOverTcpIsForbiddenAndStopsNothing) {
  ServerProcess server({.extra_args = {"--listen", "127.0.0.1:0"}});
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto unix_client, server.Connect());
  ASSERT_OK_AND_ASSIGN(json info, unix_client->Call("sys.info"));
  ASSERT_TRUE(info["listen"].is_string()) << info.dump();
  const std::string address = info["listen"];

  ASSERT_OK_AND_ASSIGN(auto tcp, LineClient::ConnectTcp(address));
  auto refused = tcp->Call("sys.shutdown");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kForbidden) << refused.status().ToString();
  EXPECT_TRUE(Contains(refused.status().message(), "Unix socket")) << refused.status().ToString();
  // The connection stays usable, and the server was not stopped.
  ASSERT_OK(tcp->Call("sys.ping"));

  std::string out;
  EXPECT_EQ(RunShim("stop --connect " + address, &out), 1) << out;
  EXPECT_TRUE(Contains(out, "FORBIDDEN")) << out;
  ASSERT_OK(unix_client->Call("sys.ping"));
  EXPECT_TRUE(server.running());
  EXPECT_EQ(server.WaitForExit(200), -1) << "the server exited";
}

// --- shim info and --log-file ------------------------------------------------

TEST(ShimInfoTest, ShowsPidLogFileTcpAddressAndCountsInHumanUnits) {
  TempDir dir;
  const std::string log_file = dir.Sub("server.log");
  // (--log-level info: ServerProcess starts servers at warn.)
  ServerProcess server(
      {.extra_args = {"--listen", "127.0.0.1:0", "--log-file", log_file, "--log-level", "info"}});
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto client, server.Connect());
  ASSERT_OK(client->Call("task.submit", {{"queue", "q"}, {"payload", {{"n", 1}}}}));
  ASSERT_OK(client->Call("task.submit", {{"queue", "q"}, {"payload", {{"n", 2}}}}));
  ASSERT_OK(client->Call("worker.register", {{"worker_id", "w1"}}));
  ASSERT_OK(client->Call("session.open", {{"session_id", "s1"}}));
  ASSERT_OK_AND_ASSIGN(json info, client->Call("sys.info"));
  EXPECT_EQ(info["pid"], server.pid());
  EXPECT_EQ(info["log_file"], log_file);

  std::string out;
  ASSERT_EQ(RunShim("info --socket " + server.socket_path(), &out), 0) << out;
  EXPECT_TRUE(Contains(out, "pid          " + std::to_string(server.pid()) + "\n")) << out;
  EXPECT_TRUE(Contains(out, "log          " + log_file + "\n")) << out;
  EXPECT_TRUE(Contains(out, "tcp          " + info["listen"].get<std::string>() + "\n")) << out;
  EXPECT_TRUE(Contains(out, "tasks        2\n")) << out;
  EXPECT_TRUE(Contains(out, "workers      1 (1 alive)\n")) << out;
  EXPECT_TRUE(Contains(out, "sessions     1\n")) << out;
  // Human units: the store's size in B/KiB/MiB, the uptime as "Ns"/"Nms".
  EXPECT_TRUE(Contains(out, "store size   ") &&
              (Contains(out, " KiB\n") || Contains(out, " MiB\n") || Contains(out, " B\n")))
      << out;
  EXPECT_FALSE(Contains(out, " bytes\n")) << out;
  EXPECT_TRUE(Contains(out, "uptime       ")) << out;

  // The log went to the file, not to stderr (ServerProcess's own log).
  EXPECT_TRUE(Contains(ReadFile(log_file), "shim serving on " + server.socket_path()))
      << ReadFile(log_file);
  EXPECT_FALSE(Contains(ReadFile(server.log_path()), "shim serving on"))
      << ReadFile(server.log_path());
}

TEST(ShimInfoTest, WithoutLogFileSaysTheLogGoesToStderrAndTcpIsOff) {
  ServerProcess server;
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto client, server.Connect());
  ASSERT_OK_AND_ASSIGN(json info, client->Call("sys.info"));
  EXPECT_TRUE(info["log_file"].is_null()) << info.dump();
  std::string out;
  ASSERT_EQ(RunShim("info --socket " + server.socket_path(), &out), 0) << out;
  EXPECT_TRUE(Contains(out, "log          stderr")) << out;
  EXPECT_TRUE(Contains(out, "tcp          off\n")) << out;
}

// --- the data directory ------------------------------------------------------

TEST(DataDirectoryTest, SecondServerOnTheSameDirectoryNamesTheFirst) {
  ServerProcess first;
  ASSERT_OK(first.Start());
  TempDir other;
  const std::string log = other.Sub("second.log");
  const int code =
      RunServeToExit({"--data", first.data_dir(), "--socket", other.Sub("s.sock")}, log);
  EXPECT_EQ(code, 1) << ReadFile(log);
  EXPECT_TRUE(Contains(ReadFile(log), "another shim server (pid " + std::to_string(first.pid()) +
                                          ", socket " + first.socket_path() + ") is using " +
                                          first.data_dir()))
      << ReadFile(log);
  EXPECT_FALSE(PathExists(other.Sub("s.sock")));
  ASSERT_OK_AND_ASSIGN(auto client, first.Connect());
  ASSERT_OK(client->Call("sys.ping"));
  // The note naming the first server is its own to remove, on a clean stop.
  EXPECT_TRUE(PathExists(first.data_dir() + "/shim-server.json"));
  EXPECT_EQ(first.Stop(), 0);
  EXPECT_FALSE(PathExists(first.data_dir() + "/shim-server.json"));
}

TEST(DataDirectoryTest, MissingDirectoryIsCreatedPrivate) {
  ServerProcess server;
  ASSERT_FALSE(PathExists(server.data_dir()));
  ASSERT_OK(server.Start());
  EXPECT_EQ(PermissionsOf(server.data_dir()), 0700u);
}

TEST(DataDirectoryTest, DirectoryOpenToOthersIsRefusedAndNotChanged) {
  TempDir dir;
  const std::string data = dir.Sub("data");
  ASSERT_EQ(::mkdir(data.c_str(), 0700), 0);
  for (mode_t mode : {0755, 0750, 0701}) {
    ASSERT_EQ(::chmod(data.c_str(), mode), 0);
    const std::string log = dir.Sub("log-" + std::to_string(mode));
    const int code = RunServeToExit({"--data", data, "--socket", dir.Sub("s.sock")}, log);
    EXPECT_EQ(code, 2) << ReadFile(log);
    const std::string text = ReadFile(log);
    EXPECT_TRUE(Contains(text, "refusing to open the store: its data directory " + data)) << text;
    EXPECT_TRUE(Contains(text, "chmod 700 " + data)) << text;
    EXPECT_EQ(PermissionsOf(data), mode) << "the server changed the directory's mode";
    EXPECT_FALSE(PathExists(data + "/CURRENT")) << "a store was created in " << data;
    EXPECT_FALSE(PathExists(dir.Sub("s.sock")));
  }
}

// --- SHIM_HOME ---------------------------------------------------------------

TEST(ShimHomeTest, RelativeHomeIsMadeAbsolute) {
  TempDir dir;
  std::string out;
  // A client with no server to talk to names the socket it tried.
  EXPECT_EQ(RunShim("info", &out, "cd " + dir.path() + " && SHIM_HOME=rel/home SHIM_SOCKET="), 3)
      << out;
  EXPECT_TRUE(Contains(out, "no shim server is running at " + dir.path() + "/rel/home/shim.sock"))
      << out;
}

TEST(ShimHomeTest, LiteralTildeIsRefusedWithAHint) {
  for (const std::string home : {"'~/.shim'", "'~'", "'/tmp/~/x'"}) {
    std::string out;
    EXPECT_EQ(RunShim("info", &out, "SHIM_HOME=" + home + " SHIM_SOCKET="), 2) << out;
    EXPECT_TRUE(Contains(out, "literal '~'")) << out;
    EXPECT_TRUE(Contains(out, "$HOME")) << out;
  }
}

// --- shim mcp starting the server ----------------------------------------------

// Stops the server a test's `shim mcp` started in $SHIM_HOME, whatever the
// test's outcome.
class StopsServerIn {
 public:
  explicit StopsServerIn(std::string home) : home_(std::move(home)) {}
  ~StopsServerIn() {
    std::string out;
    RunShim("stop --wait", &out, "SHIM_HOME=" + home_ + " SHIM_SOCKET=");
  }

 private:
  std::string home_;
};

TEST(McpStartTest, StartedServerLogsToShimHomeAndShimStopEndsIt) {
  TempDir dir;
  const std::string home = dir.Sub("home");
  const std::string env = "SHIM_HOME=" + home + " SHIM_SOCKET=";
  StopsServerIn cleanup(home);
  std::string out;
  // EOF on stdin at once: it starts the server, bridges nothing, exits 0.
  ASSERT_EQ(RunShim("mcp < /dev/null", &out, env), 0) << out;
  ASSERT_TRUE(PathExists(home + "/shim.sock")) << out;

  ASSERT_EQ(RunShim("info --json", &out, env), 0) << out;
  const json info = json::parse(out.substr(out.find('{')));
  EXPECT_EQ(info["info"]["log_file"], home + "/shim.log") << out;
  EXPECT_EQ(PermissionsOf(home + "/data"), 0700u);
  EXPECT_TRUE(Contains(ReadFile(home + "/shim.log"), "shim serving on " + home + "/shim.sock"))
      << ReadFile(home + "/shim.log");

  const pid_t pid = info["info"]["pid"].get<pid_t>();
  ASSERT_EQ(RunShim("stop --wait", &out, env), 0) << out;
  EXPECT_FALSE(PathExists(home + "/shim.sock"));
  EXPECT_FALSE(cli::ProcessRunning(pid)) << "the server is still running";
  EXPECT_TRUE(Contains(ReadFile(home + "/shim.log"), "sys.shutdown: finishing writes in flight"))
      << ReadFile(home + "/shim.log");
  EXPECT_TRUE(Contains(ReadFile(home + "/shim.log"), "shim stopped"));
  EXPECT_EQ(RunShim("stop", &out, env), 3) << out;
}

TEST(McpStartTest, ServerThatCannotStartIsReportedAtOnceWithItsOwnError) {
  // The data directory is in use by another server (on another socket):
  // the server `shim mcp` starts exits at once, and mcp says why.
  ServerProcess holder;
  ASSERT_OK(holder.Start());
  TempDir dir;
  const std::string home = dir.Sub("home");
  std::string out;
  const auto start = Clock::now();
  const int code = RunShim("mcp --data " + holder.data_dir() + " < /dev/null", &out,
                           "SHIM_HOME=" + home + " SHIM_SOCKET=");
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  EXPECT_EQ(code, 3) << out;
  EXPECT_TRUE(Contains(out, "shim mcp: the server did not start: another shim server (pid " +
                                std::to_string(holder.pid()) + ", socket " + holder.socket_path() +
                                ") is using " + holder.data_dir()))
      << out;
  EXPECT_TRUE(Contains(out, "log: " + home + "/shim.log")) << out;
  EXPECT_LT(ms, testing::kSanitized ? 6000 : 3000) << "took " << ms << " ms: " << out;
}

}  // namespace
}  // namespace shim::lifecycle_test
