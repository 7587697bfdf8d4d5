// The wire's one method table (net/method_table.h): who serves each method,
// with which flags, and that docs/protocol.md documents exactly its methods.
#include "net/method_table.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <string>

#include "engine/clock.h"
#include "engine/engine.h"
#include "storage/store.h"
#include "tests/support/sync_host.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_util.h"

namespace shim::net {
namespace {

class MethodTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(
        host_, testing::SyncHost::OpenAt(dir_.Sub("data"), &clock_,
                                         [](const std::string& what) { ADD_FAILURE() << what; }));
    table_ = std::make_unique<MethodTable>(host_->engine());
  }

  testing::TempDir dir_;
  engine::FakeClock clock_;
  std::unique_ptr<testing::SyncHost> host_;
  std::unique_ptr<MethodTable> table_;
};

TEST_F(MethodTableTest, EveryEngineMethodIsServedByTheEngineWithItsTraits) {
  for (const auto& [name, method] : host_->engine().Methods()) {
    const MethodEntry* e = table_->Find(name);
    ASSERT_NE(e, nullptr) << name;
    EXPECT_EQ(e->home, MethodHome::kEngine) << name;
    EXPECT_EQ(e->engine_method, method) << name;
    EXPECT_EQ(e->writes, method->writes()) << name;
    EXPECT_EQ(e->answers_encoded, method->answers_encoded()) << name;
    EXPECT_FALSE(e->before_auth) << name;
    EXPECT_EQ(e->stats_name, name);
  }
  EXPECT_TRUE(table_->Find("state.set")->writes);
  EXPECT_FALSE(table_->Find("state.get")->writes);
  EXPECT_TRUE(table_->Find("state.get")->answers_encoded);
  EXPECT_TRUE(table_->Find("task.claim")->writes) << "a claim takes a lease";
}

TEST_F(MethodTableTest, OnlySysAuthComesBeforeAuthAndTheServerAnswersTheSysMethodsItHolds) {
  for (const MethodEntry* e : table_->All())
    EXPECT_EQ(e->before_auth, e->name == "sys.auth") << e->name;
  for (const char* m : {"sys.auth", "sys.info", "sys.stats", "sys.shutdown"}) {
    ASSERT_NE(table_->Find(m), nullptr) << m;
    EXPECT_EQ(table_->Find(m)->home, MethodHome::kServer) << m;
  }
  EXPECT_EQ(table_->Find("sys.ping")->home, MethodHome::kEngine);
}

TEST_F(MethodTableTest, OnlySysShutdownIsRefusedOverTcp) {
  for (const MethodEntry* e : table_->All())
    EXPECT_EQ(e->unix_socket_only, e->name == "sys.shutdown") << e->name;
}

TEST_F(MethodTableTest, McpMethodsAndAnyNotificationGoToTheAdapter) {
  for (const char* m : {"initialize", "ping", "tools/list", "tools/call", "logging/setLevel"}) {
    const MethodEntry* e = table_->Find(m);
    ASSERT_NE(e, nullptr) << m;
    EXPECT_EQ(e->home, MethodHome::kMcp) << m;
    EXPECT_FALSE(e->notification) << m;
    EXPECT_EQ(e->stats_name, std::string("mcp:") + m);
  }
  const MethodEntry* known = table_->Find("notifications/initialized");
  ASSERT_NE(known, nullptr);
  EXPECT_TRUE(known->notification);
  EXPECT_EQ(known->stats_name, "mcp:notifications/initialized");
  const MethodEntry* unknown = table_->Find("notifications/something_new");
  ASSERT_NE(unknown, nullptr);
  EXPECT_EQ(unknown->name, MethodTable::kAnyMcpNotification);
  EXPECT_TRUE(unknown->notification);
  EXPECT_EQ(unknown->stats_name, "(other)") << "distinct names must not grow the stats table";
}

TEST_F(MethodTableTest, UnknownNamesAreNotFound) {
  for (const char* m :
       {"", "state", "state.get.x", "server/discover", "notifications", "STATE.GET", "sys.auth "}) {
    EXPECT_EQ(table_->Find(m), nullptr) << m;
  }
}

// The method names docs/protocol.md documents: every `### ` heading's
// backquoted names, outside "## Notifications" (server-to-client messages,
// not methods).
std::set<std::string> DocumentedMethods() {
  const auto path = std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() /
                    "docs" / "protocol.md";
  std::ifstream in(path);
  EXPECT_TRUE(in) << "cannot read " << path;
  std::set<std::string> names;
  std::string line;
  bool notifications = false;
  const std::regex quoted("`([^`]+)`");
  while (std::getline(in, line)) {
    if (line.starts_with("## ")) notifications = line.starts_with("## Notifications");
    if (notifications || !line.starts_with("### ")) continue;
    for (std::sregex_iterator it(line.begin(), line.end(), quoted), end; it != end; ++it)
      names.insert((*it)[1]);
  }
  return names;
}

TEST_F(MethodTableTest, ProtocolDocDocumentsEveryMethodOfTheTableAndNothingElse) {
  const std::set<std::string> documented = DocumentedMethods();
  ASSERT_FALSE(documented.empty());
  std::set<std::string> served;
  for (const MethodEntry* e : table_->All()) served.insert(e->name);
  for (const std::string& m : served)
    EXPECT_TRUE(documented.count(m)) << m << " is served but not documented";
  for (const std::string& m : documented)
    EXPECT_TRUE(served.count(m)) << m << " is documented but not served";
}

}  // namespace
}  // namespace shim::net
