// The `shim` command line as a user meets it (cli/command_line.cc): usage
// errors say which argument is wrong, suggest the nearest command or option
// and exit 2; global options go before or after the command; `shim help
// CMD` is `shim CMD --help`; the completion script offers the commands.
// Runs the real binary; commands that need a server get one.
#include <gtest/gtest.h>

#include <string>

#include "cli/command_table.h"
#include "tests/support/server_process.h"
#include "tests/support/test_util.h"

namespace shim {
namespace {

using testing::RunShim;
using testing::ServerProcess;

struct UsageCase {
  const char* args;
  const char* says;  // part of what the error says
};

TEST(CommandLineTest, UsageErrorsNameTheArgumentAndExit2) {
  const UsageCase cases[] = {
      {"stat", "unknown command 'stat'; did you mean 'state'?"},
      {"state gte k", "unknown subcommand 'gte' of 'shim state'; did you mean 'get'?"},
      {"tsak get t1", "did you mean 'task'?"},
      {"state get k --jsn", "unknown option '--jsn'; did you mean '--json'?"},
      {"state get", "KEY is required"},
      {"state get a b", "unexpected argument 'b'"},
      {"state set k 1 --ttl-ms soon", "--ttl-ms"},
      {"state set k 1 --ttl-ms", "--ttl-ms"},
      {"tail ch --from x", "--from"},
      {"task submit q p --priority high", "--priority"},
      {"worker run --queue q", "COMMAND is required"},
      {"--json serve", "--json does not apply to shim serve"},
      {"xyzzy", "unknown command 'xyzzy'"},
  };
  for (const UsageCase& c : cases) {
    std::string out;
    EXPECT_EQ(RunShim(std::string(c.args) + " --socket /nonexistent/s.sock", &out), 2)
        << c.args << "\n"
        << out;
    EXPECT_NE(out.find(c.says), std::string::npos) << c.args << "\n" << out;
  }
}

TEST(CommandLineTest, NoCommandPrintsTheHelpAndExits2) {
  std::string out;
  EXPECT_EQ(RunShim("", &out), 2);
  EXPECT_NE(out.find("state"), std::string::npos) << out;
  EXPECT_EQ(RunShim("task", &out), 2);
  EXPECT_NE(out.find("submit"), std::string::npos) << out;
}

TEST(CommandLineTest, HelpCommandPrintsTheCommandsHelp) {
  std::string via_flag, via_help;
  ASSERT_EQ(RunShim("state set --help", &via_flag), 0) << via_flag;
  ASSERT_EQ(RunShim("help state set", &via_help), 0) << via_help;
  EXPECT_EQ(via_flag, via_help);
  EXPECT_NE(via_help.find("shim state set"), std::string::npos) << via_help;
  EXPECT_NE(via_help.find("--expected-version"), std::string::npos) << via_help;
  EXPECT_NE(via_help.find("--socket"), std::string::npos) << "global options listed\n" << via_help;
  std::string root;
  ASSERT_EQ(RunShim("--help", &root), 0);
  for (const char* code : {"0  ok", "1  the server answered with an error", "2  usage error",
                           "3  no server could be reached"}) {
    EXPECT_NE(root.find(code), std::string::npos) << code << "\n" << root;
  }
  EXPECT_EQ(RunShim("help stat", &root), 2);
  EXPECT_NE(root.find("did you mean 'state'?"), std::string::npos) << root;
}

TEST(CommandLineTest, VersionFlagAndCommand) {
  std::string out;
  EXPECT_EQ(RunShim("--version", &out), 0);
  EXPECT_NE(out.find("shim 0.1.0"), std::string::npos) << out;
  EXPECT_EQ(RunShim("version", &out), 0);
  EXPECT_NE(out.find("shim 0.1.0"), std::string::npos) << out;
}

TEST(CommandLineTest, GlobalOptionsGoBeforeOrAfterTheCommand) {
  ServerProcess server;
  ASSERT_OK(server.Start());
  const std::string socket = "--socket " + server.socket_path();
  std::string out;
  ASSERT_EQ(RunShim(socket + " --json state set cl/k 7", &out), 0) << out;
  EXPECT_NE(out.find("\"version\":1"), std::string::npos) << out;
  ASSERT_EQ(RunShim("state " + socket + " get --json cl/k", &out), 0) << out;
  EXPECT_NE(out.find("\"value\":7"), std::string::npos) << out;
  ASSERT_EQ(RunShim("state get cl/k " + socket, &out), 0) << out;
  EXPECT_EQ(out, "7\n");
}

// `source <(shim completion bash)`, then what <TAB> would offer.
std::string CompleteInBash(const std::string& words, int cword) {
  std::string out;
  const std::string script =
      std::string("source <(") + SHIM_BINARY + " completion bash); COMP_WORDS=(" + words +
      "); COMP_CWORD=" + std::to_string(cword) + "; _shim; echo \"${COMPREPLY[*]}\"";
  EXPECT_EQ(testing::RunShim("completion bash >/dev/null && bash -c '" + script + "'", &out), 0)
      << out;
  return out;
}

TEST(CommandLineTest, BashCompletionOffersCommandsSubcommandsAndOptions) {
  EXPECT_EQ(CompleteInBash("shim sta", 1), "state\n");
  EXPECT_EQ(CompleteInBash("shim state g", 2), "get\n");
  EXPECT_EQ(CompleteInBash("shim --json state li", 3), "list\n");
  EXPECT_NE(CompleteInBash("shim state set k v --ttl", 5).find("--ttl-ms"), std::string::npos);
  std::string script;
  ASSERT_EQ(RunShim("completion bash", &script), 0);
  for (const cli::CommandSpec& c : cli::Commands()) {
    const std::string path(c.path);
    const std::string last = path.substr(path.rfind(' ') + 1);
    EXPECT_NE(script.find(last), std::string::npos) << path;
  }
  ASSERT_EQ(RunShim("completion zsh", &script), 0);
  EXPECT_NE(script.find("bashcompinit"), std::string::npos);
  EXPECT_EQ(RunShim("completion fish", &script), 2);
}

}  // namespace
}  // namespace shim
