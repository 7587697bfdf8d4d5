// The engine test fixture: a SyncHost (tests/support/sync_host.h) with a
// real Store in a TempDir and a FakeClock, and shorthands that drive it the
// way the server's host drives the engine. What the host finds wrong (a
// reply before its write was durable, a failed group write, a group commit
// that does not settle, a call not answered exactly once) fails the test.
// Replies can be kept in slots, so that a test can start a request that
// waits (lock.acquire with wait_ms) and look at it later.
// Single-threaded, no sockets, no sleeps: time moves only through Advance()
// (or clock_ and RunTimers() by hand).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/client.h"
#include "engine/clock.h"
#include "engine/engine.h"
#include "engine/sessions/risk_model.h"
#include "storage/store.h"
#include "tests/support/fake_client.h"
#include "tests/support/sync_host.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_util.h"

namespace shim::engine::test {

using nlohmann::json;
using shim::testing::FakeClient;
using shim::testing::ReplySlot;

class EngineTest : public ::testing::Test {
 protected:
  EngineTest() { store_options_.path = dir_.Sub("data"); }
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(Open()); }
  void TearDown() override { Close(); }

  // Opens the store with store_options_ and the engine on it with limits_
  // and risk_.
  void Open() {
    EngineOptions eo;
    eo.clock = &clock_;
    eo.limits = limits_;
    eo.risk = risk_;
    ASSERT_OK_AND_ASSIGN(
        host_, shim::testing::SyncHost::Open(
                   store_options_, eo, [](const std::string& what) { ADD_FAILURE() << what; }));
    engine_ = &host_->engine();
    store_ = &host_->store();
  }

  // Drops the engine (what is not committed is lost, as in a crash) and
  // closes the store.
  void Close() {
    engine_ = nullptr;
    store_ = nullptr;
    if (host_) EXPECT_OK(host_->Close());
    host_.reset();
  }

  // A server restart: commits what is open, then closes and opens both on
  // the same data. Waiting requests die with the old engine; the clock goes
  // on.
  void Reopen() {
    Pump();
    Close();
    ASSERT_NO_FATAL_FAILURE(Open());
  }

  // Applies one request and commits nothing.
  std::shared_ptr<ReplySlot> Execute(const std::string& method, json params,
                                     std::shared_ptr<Client> client = nullptr) {
    return host_->Execute(method, std::move(params), std::move(client));
  }
  // Commits the open group, if any; returns true if there was one.
  bool CommitGroup() { return host_->CommitGroup(); }
  // Commits until nothing is open.
  void Pump() { host_->Pump(); }
  // Runs what is due, committing its writes.
  void RunTimers() { host_->RunTimers(); }
  // Moves both clocks and runs what fell due, committing its writes.
  void Advance(int64_t ms) {
    clock_.Advance(ms);
    host_->RunTimers();
  }
  int64_t Now() const { return clock_.NowMs(); }

  // Executes one request and commits its group; the slot holds the reply if
  // there is one yet (a waiting lock.acquire has none).
  std::shared_ptr<ReplySlot> Start(const std::string& method, json params,
                                   std::shared_ptr<Client> client = nullptr) {
    return host_->Start(method, std::move(params), std::move(client));
  }
  // A request that must be answered once its group commits.
  Result<json> Call(const std::string& method, json params,
                    std::shared_ptr<Client> client = nullptr) {
    return host_->Call(method, std::move(params), std::move(client));
  }
  // Call that must succeed; returns the result (null json on failure, with
  // the test marked failed).
  json Ok(const std::string& method, json params, std::shared_ptr<Client> client = nullptr) {
    const std::string shown =
        params.dump(-1, ' ', false, json::error_handler_t::replace).substr(0, 300);
    Result<json> r = Call(method, std::move(params), std::move(client));
    EXPECT_TRUE(r.ok()) << method << " " << shown << ": " << r.status().ToString();
    return r.ok() ? r.value() : json();
  }

  // A connection with an id no other one of this test has.
  std::shared_ptr<FakeClient> NewClient() {
    return std::make_shared<FakeClient>(next_client_id_++);
  }

  // --- shorthands -------------------------------------------------------
  json Get(const std::string& key) { return Ok("state.get", {{"key", key}}); }
  json LockStatus(const std::string& lock) { return Ok("lock.status", {{"name", lock}}); }
  bool LeaseAlive(uint64_t lease_id) {
    json list = Ok("lease.list", json::object());
    for (const json& l : list["leases"]) {
      if (l["lease_id"] == lease_id) return true;
    }
    return false;
  }

  testing::TempDir dir_;
  FakeClock clock_;
  // Change before Open() (or Close(), then Open()) to test other settings.
  storage::StoreOptions store_options_;  // path: dir_/data
  EngineLimits limits_;
  RiskConfig risk_;
  std::unique_ptr<shim::testing::SyncHost> host_;
  Engine* engine_ = nullptr;         // host_'s, while open
  storage::Store* store_ = nullptr;  // host_'s, while open
  uint64_t next_client_id_ = 1;
};

// gtest predicate: `result` failed with `code`.
inline ::testing::AssertionResult FailedWith(const Result<json>& result, StatusCode code) {
  if (result.ok()) {
    return ::testing::AssertionFailure()
           << "expected " << StatusCodeReason(code) << ", got OK " << result.value().dump();
  }
  if (result.status().code() != code) {
    return ::testing::AssertionFailure()
           << "expected " << StatusCodeReason(code) << ", got " << result.status().ToString();
  }
  return ::testing::AssertionSuccess();
}

}  // namespace shim::engine::test
