// Values from anywhere (cli/client_util.h ValueText): "-" reads a value (or
// `shim call` params) from stdin, --file F from a file, --string keeps the
// text a string; `state get --raw` prints a string bare; `state list --all`
// reads every page; `--` ends the options. Against a real server.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_util.h"

namespace shim {
namespace {

using nlohmann::json;
using testing::RunShim;
using testing::ServerProcess;
using testing::TempDir;

class CliValuesTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(server_.Start()); }

  // `shim --socket S ARGS`, with `input` on its stdin; its exit code.
  int Shim(const std::string& args, std::string* out, const std::string& input = "") {
    const std::string in_path = dir_.Sub("stdin-" + std::to_string(++runs_));
    std::ofstream(in_path) << input;
    // The socket goes first: after a `--` in ARGS every word is a positional.
    return RunShim("--socket " + server_.socket_path() + " " + args + " <" + in_path, out);
  }
  std::string WriteFile(const std::string& name, const std::string& text) {
    std::ofstream(dir_.Sub(name)) << text;
    return dir_.Sub(name);
  }
  json Stored(const std::string& key) {
    auto client = server_.Connect();
    EXPECT_TRUE(client.ok());
    auto got = (*client)->Call("state.get", {{"key", key}});
    EXPECT_TRUE(got.ok());
    return got.ok() && got->is_object() ? (*got)["value"] : json();
  }

  ServerProcess server_;
  TempDir dir_;
  int runs_ = 0;
};

TEST_F(CliValuesTest, DashReadsTheValueFromStdin) {
  std::string out;
  ASSERT_EQ(Shim("state set v/obj -", &out, "{\"a\":[1,2]}\n"), 0) << out;
  EXPECT_EQ(Stored("v/obj"), json({{"a", {1, 2}}}));
  ASSERT_EQ(Shim("state set v/text -", &out, "hello world\n"), 0) << out;
  EXPECT_EQ(Stored("v/text"), "hello world") << "one trailing newline is dropped";
  ASSERT_EQ(Shim("pub v/ch -", &out, "\"from stdin\""), 0) << out;
  ASSERT_EQ(Shim("task submit v-q -", &out, "{\"n\":1}"), 0) << out;
  ASSERT_EQ(Shim("call state.get -", &out, "{\"key\":\"v/obj\"}"), 0) << out;
  EXPECT_NE(out.find("\"a\""), std::string::npos) << out;
}

TEST_F(CliValuesTest, FileReadsTheValueFromAFile) {
  std::string out;
  const std::string big(200'000, 'x');  // past what a command line comfortably holds
  ASSERT_EQ(Shim("state set v/big --file " + WriteFile("big.txt", big), &out), 0) << out;
  EXPECT_EQ(Stored("v/big"), big);
  ASSERT_EQ(Shim("state set v/arr --file " + WriteFile("arr.json", "[1, 2, 3]\n"), &out), 0) << out;
  EXPECT_EQ(Stored("v/arr"), json({1, 2, 3}));
  ASSERT_EQ(Shim("call state.get --file " + WriteFile("p.json", "{\"key\":\"v/arr\"}"), &out), 0)
      << out;
  EXPECT_NE(out.find("\"version\""), std::string::npos) << out;
  ASSERT_EQ(Shim("state set v/fin --file -", &out, "42"), 0) << out;
  EXPECT_EQ(Stored("v/fin"), 42);
}

TEST_F(CliValuesTest, StringKeepsTheTextAString) {
  std::string out;
  ASSERT_EQ(Shim("state set v/n 5 --string", &out), 0) << out;
  EXPECT_EQ(Stored("v/n"), "5");
  ASSERT_EQ(Shim("state set v/n2 5", &out), 0) << out;
  EXPECT_EQ(Stored("v/n2"), 5);
  ASSERT_EQ(Shim("state set v/j --string -", &out, "{\"a\":1}"), 0) << out;
  EXPECT_EQ(Stored("v/j"), "{\"a\":1}");
}

TEST_F(CliValuesTest, RawPrintsAStringWithoutQuotes) {
  std::string out;
  ASSERT_EQ(Shim("state set v/who alice", &out), 0) << out;
  ASSERT_EQ(Shim("state get v/who", &out), 0) << out;
  EXPECT_EQ(out, "\"alice\"\n");
  ASSERT_EQ(Shim("state get v/who --raw", &out), 0) << out;
  EXPECT_EQ(out, "alice\n");
  ASSERT_EQ(Shim("state set v/num 7", &out), 0) << out;
  ASSERT_EQ(Shim("state get --raw v/num", &out), 0) << out;
  EXPECT_EQ(out, "7\n") << "only strings lose their quotes";
}

TEST_F(CliValuesTest, ListAllReadsEveryPage) {
  std::string out;
  for (int i = 0; i < 5; ++i) ASSERT_EQ(Shim("state set v/p/" + std::to_string(i) + " 1", &out), 0);
  ASSERT_EQ(Shim("state list v/p/ --limit 2", &out), 0) << out;
  EXPECT_NE(out.find("(more: --after \"v/p/1\")"), std::string::npos) << out;
  EXPECT_EQ(out.find("v/p/2"), std::string::npos) << out;
  ASSERT_EQ(Shim("state list v/p/ --limit 2 --all", &out), 0) << out;
  for (int i = 0; i < 5; ++i) EXPECT_NE(out.find("v/p/" + std::to_string(i)), std::string::npos);
  EXPECT_EQ(out.find("(more"), std::string::npos) << out;
  ASSERT_EQ(Shim("state list v/p/ --limit 2 --all --json", &out), 0) << out;
  EXPECT_EQ(json::parse(out)["items"].size(), 5u) << out;
}

TEST_F(CliValuesTest, DoubleDashEndsTheOptions) {
  std::string out;
  ASSERT_EQ(Shim("state set --string -- v/dash --json", &out), 0) << out;
  EXPECT_EQ(Stored("v/dash"), "--json");
  ASSERT_EQ(Shim("state set v/neg -5", &out), 0) << out;
  EXPECT_EQ(Stored("v/neg"), -5);
}

TEST_F(CliValuesTest, AValueGivenTwiceOrNotAtAllIsAUsageError) {
  std::string out;
  EXPECT_EQ(Shim("state set v/x", &out), 2);
  EXPECT_NE(out.find("VALUE is required"), std::string::npos) << out;
  EXPECT_EQ(Shim("state set v/x 1 --file " + WriteFile("one", "1"), &out), 2);
  EXPECT_NE(out.find("not both"), std::string::npos) << out;
  EXPECT_EQ(Shim("pub v/ch --file /nonexistent/data", &out), 2);
  EXPECT_NE(out.find("--file /nonexistent/data: cannot read it"), std::string::npos) << out;
  EXPECT_EQ(Shim("call state.get -", &out, "[1]"), 2);
  EXPECT_NE(out.find("must be a JSON object"), std::string::npos) << out;
  EXPECT_TRUE(Stored("v/x").is_null());
}

}  // namespace
}  // namespace shim
