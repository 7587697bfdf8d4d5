// FirstErrorLine (cli/server_daemon.h): the line `shim mcp` shows when the
// server it started exits at once. StartServerDaemon itself runs end to end
// in tests/e2e/lifecycle_test.cc.
#include "cli/server_daemon.h"

#include <gtest/gtest.h>

namespace shim::cli {
namespace {

TEST(FirstErrorLineTest, TakesTheFirstErrorWithoutSpdlogsPrefix) {
  EXPECT_EQ(FirstErrorLine("[2026-12-03 19:03:09.123] [shim] [warning] low on files\n"
                           "[2026-12-03 19:03:09.124] [shim] [error] another shim server (pid 7, "
                           "socket /s) is using /d\n"
                           "[2026-12-03 19:03:09.125] [shim] [error] a later one\n"),
            "another shim server (pid 7, socket /s) is using /d");
  EXPECT_EQ(FirstErrorLine("x\n[t] [shim] [critical] boom\n"), "boom");
}

TEST(FirstErrorLineTest, TakesWhatServePrintsBeforeItsLoggerButNotItsWarnings) {
  EXPECT_EQ(FirstErrorLine("shim serve: warning: the auth token is short\n"
                           "shim serve: refusing to open the store: its data directory /d has mode "
                           "0755\n"),
            "shim serve: refusing to open the store: its data directory /d has mode 0755");
}

TEST(FirstErrorLineTest, ElseTheLastLineElseNothing) {
  EXPECT_EQ(FirstErrorLine("one\n\ntwo\n\n"), "two");
  EXPECT_EQ(FirstErrorLine(""), "");
}

}  // namespace
}  // namespace shim::cli
