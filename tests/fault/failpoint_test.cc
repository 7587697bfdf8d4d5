// The failpoint registry itself (storage/failpoint.h): parsing of
// SHIM_FAILPOINTS, @N counting, and that a fired `crash` failpoint ends the
// process with kFailpointExitCode and a line naming it.
#include "storage/failpoint.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/support/server_process.h"
#include "tests/support/test_util.h"

namespace shim::failpoint {
namespace {

class FailpointTest : public ::testing::Test {
 protected:
  void TearDown() override { Reset(); }
};

TEST_F(FailpointTest, UnarmedByDefaultAndHitIsANoOp) {
  EXPECT_FALSE(g_any_armed);
  for (std::string_view name : kFailpointNames) {
    EXPECT_FALSE(Armed(name)) << name;
    SHIM_FAILPOINT(name);  // does nothing
  }
}

TEST_F(FailpointTest, ParsesEntriesAndArmsOnlyThose) {
  ASSERT_OK(Configure(" store.before_write:crash@3 , recovery.mid_scan:abort,"));
  EXPECT_TRUE(g_any_armed);
  EXPECT_TRUE(Armed("store.before_write"));
  EXPECT_TRUE(Armed("recovery.mid_scan"));
  EXPECT_FALSE(Armed("store.after_sync"));
  EXPECT_FALSE(Armed("no.such.point"));
  // The hits before N pass.
  Hit("store.before_write");
  Hit("store.before_write");
  EXPECT_TRUE(Armed("store.before_write"));
  // Configure replaces what was armed; "off" and "" disarm.
  ASSERT_OK(Configure("store.after_sync:off"));
  EXPECT_FALSE(g_any_armed);
  ASSERT_OK(Configure("store.after_sync:crash"));
  EXPECT_TRUE(Armed("store.after_sync"));
  Reset();
  EXPECT_FALSE(g_any_armed);
  EXPECT_FALSE(Armed("store.after_sync"));
}

TEST_F(FailpointTest, RejectsUnknownNamesAndMalformedEntries) {
  for (const char* bad : {"store.before_writ:crash", "store.before_write",
                          "store.before_write:explode", "store.before_write:crash@0",
                          "store.before_write:crash@x", "store.before_write:crash@3x", ":crash"}) {
    Status s = Configure(bad);
    EXPECT_EQ(s.code(), StatusCode::kInvalidParams) << bad;
    EXPECT_NE(s.message().find("SHIM_FAILPOINTS"), std::string::npos) << s.message();
  }
  EXPECT_NE(Configure("nope:crash").message().find("known: store.before_write"), std::string::npos);
  // A rejected spec arms nothing.
  EXPECT_FALSE(g_any_armed);
}

TEST_F(FailpointTest, CrashFiresOnTheNthHitWithItsExitCode) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        (void)Configure("engine.after_commit_before_reply:crash@2");
        SHIM_FAILPOINT("engine.after_commit_before_reply");
        SHIM_FAILPOINT("engine.after_commit_before_reply");
        std::exit(0);  // not reached
      },
      ::testing::ExitedWithCode(kFailpointExitCode),
      "failpoint engine.after_commit_before_reply fired \\(hit 2\\): crash");
  EXPECT_DEATH(
      {
        (void)Configure("store.after_sync:abort");
        SHIM_FAILPOINT("store.after_sync");
      },
      "failpoint store.after_sync fired \\(hit 1\\): abort");
}

// `error` makes a place that can fail fail once, at its Nth hit, and the
// process go on; the other places refuse it when it is armed.
TEST_F(FailpointTest, ErrorFailsThePlaceOnceAtTheNthHit) {
  ASSERT_OK(Configure("store.before_write:error@2, engine.reload:error"));
  EXPECT_OK(SHIM_FAILPOINT_STATUS("store.before_write"));
  Status second = SHIM_FAILPOINT_STATUS("store.before_write");
  EXPECT_EQ(second.code(), StatusCode::kInternal);
  EXPECT_EQ(second.message(), "failpoint store.before_write fired (hit 2): injected error");
  EXPECT_OK(SHIM_FAILPOINT_STATUS("store.before_write"));  // it fires once
  EXPECT_FALSE(SHIM_FAILPOINT_STATUS("engine.reload").ok());
  EXPECT_OK(SHIM_FAILPOINT_STATUS("engine.reload"));
  Reset();
  EXPECT_OK(SHIM_FAILPOINT_STATUS("store.before_write"));  // unarmed

  for (std::string_view name : kFailpointNames) {
    const bool can_fail =
        std::find(std::begin(kFailpointsThatCanFail), std::end(kFailpointsThatCanFail), name) !=
        std::end(kFailpointsThatCanFail);
    Status s = Configure(std::string(name) + ":error");
    EXPECT_EQ(s.ok(), can_fail) << name << ": " << s.ToString();
    if (!can_fail) {
      EXPECT_NE(s.message().find("cannot fail with `error`"), std::string::npos) << s.message();
    }
  }
  Reset();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// SHIM_FAILPOINTS is read before main(): a typo stops `shim serve` at once
// with exit code 2 instead of silently running unarmed.
TEST(FailpointEnvTest, BadSpecStopsTheServerAtStartup) {
  testing::ServerProcess server(
      {.durability = "sync", .extra_args = {}, .env = {"SHIM_FAILPOINTS=store.befor_write:crash"}});
  EXPECT_FALSE(server.Start().ok());
  EXPECT_EQ(server.last_exit_status(), 2);
  EXPECT_NE(ReadFile(server.log_path()).find("unknown failpoint 'store.befor_write'"),
            std::string::npos)
      << ReadFile(server.log_path());
}

}  // namespace
}  // namespace shim::failpoint
