// For tests of hostile or broken input: after each case a fresh client must
// still get correct answers from the server (ExpectHealthy: a ping, then a
// set/get round trip), and a suite can share one server that must survive
// every case (OneServerSuite).
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/server_process.h"
#include "tests/support/test_util.h"

namespace shim::testing {

inline void ExpectHealthy(const ServerProcess& server, int timeout_ms = 5000) {
  using nlohmann::json;
  static std::atomic<int> probe{0};
  ASSERT_OK_AND_ASSIGN(auto client, server.Connect());
  ASSERT_OK_AND_ASSIGN(json ping, client->Call("sys.ping", json::object(), timeout_ms));
  EXPECT_EQ(ping["pong"], true);
  const std::string key = "health/" + std::to_string(probe++);
  ASSERT_OK_AND_ASSIGN(
      json set, client->Call("state.set", {{"key", key}, {"value", {{"ok", key}}}}, timeout_ms));
  EXPECT_EQ(set["version"], 1);
  EXPECT_GT(set["revision"].get<uint64_t>(), 0u);
  ASSERT_OK_AND_ASSIGN(json get, client->Call("state.get", {{"key", key}}, timeout_ms));
  EXPECT_EQ(get["value"], json({{"ok", key}}));
  EXPECT_EQ(get["version"], 1);
}

// One server for the whole suite: each test starts with it running and ends
// by checking that it still serves a fresh client.
class OneServerSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ServerProcess();
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(server_ && server_->running()); }
  void TearDown() override {
    ASSERT_TRUE(server_->running()) << "the server died";
    ExpectHealthy(*server_);
  }
  static inline ServerProcess* server_ = nullptr;
};

}  // namespace shim::testing
