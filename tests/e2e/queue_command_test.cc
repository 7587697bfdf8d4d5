// `shim queue pause|resume|stats|drain|delete QUEUE` against a real server:
// what each prints, and the exit codes (1 for a refusal, 2 for usage).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/server_process.h"
#include "tests/support/test_util.h"

namespace shim {
namespace {

using nlohmann::json;
using testing::RunShim;
using testing::ServerProcess;

TEST(QueueCommandTest, PausesDrainsAndDeletesAQueue) {
  ServerProcess server;
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto client, server.Connect());
  for (int i = 0; i < 3; ++i)
    ASSERT_OK(client->Call("task.submit", {{"queue", "jobs"}, {"payload", i}}).status());
  const std::string socket = " --socket " + server.socket_path();
  std::string out;

  EXPECT_EQ(RunShim("queue pause jobs" + socket, &out), 0) << out;
  EXPECT_EQ(out, "jobs paused\n");
  EXPECT_EQ(RunShim("queue stats jobs" + socket, &out), 0) << out;
  EXPECT_NE(out.find("jobs (paused)"), std::string::npos) << out;
  EXPECT_NE(out.find("ready 3"), std::string::npos) << out;
  EXPECT_EQ(RunShim("queue resume jobs" + socket, &out), 0) << out;
  EXPECT_EQ(out, "jobs resumed\n");

  // A running task: drain leaves it, delete is refused without --force.
  ASSERT_OK_AND_ASSIGN(json claimed,
                       client->Call("task.claim", {{"queues", {"jobs"}}, {"worker_id", "w"}}));
  ASSERT_EQ(claimed["tasks"].size(), 1u);
  EXPECT_EQ(RunShim("queue drain jobs" + socket, &out), 0) << out;
  EXPECT_EQ(out, "jobs drained: 2 task(s) removed\n");
  EXPECT_EQ(RunShim("queue delete jobs" + socket, &out), 1) << out;
  EXPECT_NE(out.find("INVALID_STATE"), std::string::npos) << out;
  EXPECT_NE(out.find("force"), std::string::npos) << out;
  EXPECT_EQ(RunShim("queue delete jobs --force --json" + socket, &out), 0) << out;
  EXPECT_EQ(json::parse(out, nullptr, false), json({{"queue", "jobs"}, {"removed", 1}})) << out;
  EXPECT_EQ(RunShim("queue delete jobs" + socket, &out), 1) << out;
  EXPECT_NE(out.find("NOT_FOUND"), std::string::npos) << out;

  EXPECT_EQ(RunShim("queue drain" + socket, &out), 2) << out;
  EXPECT_EQ(RunShim("queue stop jobs" + socket, &out), 2) << out;
  EXPECT_EQ(RunShim("queue drain jobs --force" + socket, &out), 2) << out;
}

}  // namespace
}  // namespace shim
