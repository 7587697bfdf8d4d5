// Exit codes as documented (`shim --help`, README): 0 ok, 1 the server
// answered with an error, 2 usage error, 3 no server reachable or the auth
// token refused; one table, each code per command family where the family
// can produce it.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/server_process.h"
#include "tests/support/test_util.h"

namespace shim {
namespace {

using testing::RunShim;
using testing::ServerProcess;

constexpr const char* kExitToken = "exit-codes-test-token-0123456789";

struct ExitCase {
  const char* family;
  std::string args;  // {S}: this server's socket; {NONE}: a socket nothing serves
  int code;
};

std::string Fill(std::string args, const std::string& socket) {
  for (auto [mark, with] : {std::pair<std::string, std::string>{"{S}", "--socket " + socket},
                            {"{NONE}", "--socket /nonexistent/shim.sock"}}) {
    for (size_t at; (at = args.find(mark)) != std::string::npos;)
      args.replace(at, mark.size(), with);
  }
  return args;
}

TEST(ExitCodesTest, EachCommandFamilyExitsAsDocumented) {
  ServerProcess server;
  ASSERT_OK(server.Start());
  const std::string too_long(300, 'x');  // past every name limit: the server refuses it
  const ExitCase cases[] = {
      {"state", "state set ec/k 1 {S}", 0},
      {"state", "state get ec/k {S}", 0},
      {"state", "state set ec/k 2 --expected-version 9 {S}", 1},
      {"state", "state get ec/missing {S}", 1},
      {"state", "state set ec/k {S}", 2},
      {"state", "state get ec/k {NONE}", 3},
      {"pub", "pub ec/ch hello {S}", 0},
      {"pub", "pub " + too_long + " hello {S}", 1},
      {"pub", "pub {S}", 2},
      {"pub", "pub ec/ch hello {NONE}", 3},
      {"tail", "tail ec/ch --from 1 --count 1 {S}", 0},
      {"tail", "tail " + too_long + " {S}", 1},
      {"tail", "tail {S}", 2},
      {"tail", "tail ec/ch {NONE}", 3},
      {"task", "task submit ec-q '{\"n\":1}' {S}", 0},
      {"task", "task get t999999 {S}", 1},
      {"task", "task submit ec-q {S}", 2},
      {"task", "task get t1 {NONE}", 3},
      {"queues", "queues {S}", 0},
      {"queues", "queues extra {S}", 2},
      {"queues", "queues {NONE}", 3},
      {"workers", "workers {S}", 0},
      {"workers", "workers extra {S}", 2},
      {"workers", "workers {NONE}", 3},
      {"worker", "worker run --queue ec-none --max-tasks 0 {S} -- true", 0},
      {"worker", "worker run --queue ec-q --worker-id " + too_long + " {S} -- true", 1},
      {"worker", "worker run --queue ec-q {S}", 2},
      {"worker", "worker run --queue ec-q {NONE} -- true", 3},
      {"lock", "lock status ec/l {S}", 0},
      {"lock", "lock list {S}", 0},
      {"lock", "lock status " + too_long + " {S}", 1},
      {"lock", "lock status {S}", 2},
      {"lock", "lock list {NONE}", 3},
      {"leases", "leases {S}", 0},
      {"leases", "leases extra {S}", 2},
      {"leases", "leases {NONE}", 3},
      {"call", "call sys.ping {S}", 0},
      {"call", "call no.such.method {S}", 1},
      {"call", "call sys.ping '[1]' {S}", 2},
      {"call", "call sys.ping {NONE}", 3},
      {"info", "info {S}", 0},
      {"info", "info extra {S}", 2},
      {"info", "info {NONE}", 3},
      {"bench", "bench state --op set --clients 1 --count 5 {S}", 0},
      {"bench", "bench nosuch {S}", 2},
      {"bench", "bench state --count 5 {NONE}", 3},
      {"mcp", "mcp {S} </dev/null", 0},
      {"mcp", "mcp extra {S}", 2},
      {"mcp", "mcp --no-start {NONE} </dev/null", 3},
  };
  for (const ExitCase& c : cases) {
    std::string out;
    const std::string args = Fill(c.args, server.socket_path());
    EXPECT_EQ(RunShim(args, &out), c.code) << c.family << ": shim " << args << "\n" << out;
  }
}

// A TCP server that refuses the client's token: 3, as if unreachable (the
// command cannot do anything there), for every family that connects.
TEST(ExitCodesTest, ARefusedAuthTokenExits3) {
  ServerProcess server({.extra_args = {"--listen", "127.0.0.1:0", "--auth-token", kExitToken}});
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto client, server.Connect());
  ASSERT_OK_AND_ASSIGN(nlohmann::json info, client->Call("sys.info", nlohmann::json::object()));
  const std::string wrong =
      "--connect " + info["listen"].get<std::string>() + " --auth-token wrong";
  for (const char* command :
       {"state get k", "pub ch x", "tail ch", "task get t1", "queues", "workers", "lock list",
        "leases", "call sys.ping", "info", "bench state --count 5", "--queue q -- true"}) {
    // worker run: the options go before the `--` that starts its COMMAND.
    const bool worker = std::string(command).starts_with("--queue");
    const std::string args =
        worker ? "worker run " + wrong + " " + command : command + (" " + wrong);
    std::string out;
    EXPECT_EQ(RunShim(args, &out), 3) << args << "\n" << out;
    EXPECT_NE(out.find("UNAUTHORIZED"), std::string::npos) << command << "\n" << out;
  }
  std::string out;
  EXPECT_EQ(RunShim("call sys.ping --connect " + info["listen"].get<std::string>() +
                        " --auth-token " + kExitToken,
                    &out),
            0)
      << out;
}

}  // namespace
}  // namespace shim
