// Engine fixture for the lease, lock and worker tests: a real Store in a
// TempDir, a FakeClock and an Engine, driven the way the server's host drives
// it (Execute, then Seal / Group::Write / Land while ReadyToSeal, RunTimers
// when time moves). Replies are captured in shared slots so a test can start
// a request that waits (lock.acquire with wait_ms) and look at it later.
// Single-threaded, no sockets, no sleeps: time moves only through Advance().
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/client.h"
#include "engine/clock.h"
#include "engine/engine.h"
#include "storage/store.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_util.h"

namespace shim::engine::coordtest {

using nlohmann::json;

// One request's answer, shared with the reply callback.
struct Slot {
  int calls = 0;
  std::optional<Result<json>> result;
  bool done() const { return calls > 0; }
  bool ok() const { return result && result->ok(); }
  StatusCode code() const { return result ? result->status().code() : StatusCode::kOk; }
  const json& value() const { return result->value(); }
};

// A connection double: only its id matters to locks (waiters leave the queue
// when their client closes); notifications are counted.
class StubClient final : public Client {
 public:
  explicit StubClient(uint64_t id) : id_(id) {}
  uint64_t id() const override { return id_; }
  bool Notify(std::string_view method, const json& params, bool) override {
    last_method_ = std::string(method);
    last_params_ = params;
    ++notifications_;
    return true;
  }
  bool closed() const override { return closed_; }
  void set_closed() { closed_ = true; }
  int notifications() const { return notifications_; }

 private:
  uint64_t id_;
  bool closed_ = false;
  int notifications_ = 0;
  std::string last_method_;
  json last_params_;
};

class EngineFixture : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(Open()); }
  void TearDown() override { Close(); }

  void Open() {
    storage::StoreOptions so;
    so.path = dir_.Sub("data");
    ASSERT_OK_AND_ASSIGN(store_, storage::Store::Open(so));
    EngineOptions eo;
    eo.clock = &clock_;
    eo.store = store_.get();
    eo.limits = limits_;
    ASSERT_OK_AND_ASSIGN(engine_, Engine::Open(eo));
  }

  void Close() {
    engine_.reset();
    if (store_) EXPECT_OK(store_->Close());
    store_.reset();
  }

  // A server restart: everything committed is on disk; the engine recovers
  // from the store. Waiting requests die with the old engine.
  void Reopen() {
    Pump();
    Close();
    ASSERT_NO_FATAL_FAILURE(Open());
  }

  // Group commit until nothing is open, exactly as the host does it.
  void Pump() {
    for (int i = 0; i < 100 && engine_->ReadyToSeal(); ++i) {
      std::unique_ptr<Group> group = engine_->Seal();
      Status s = group->Write();
      EXPECT_OK(s);
      engine_->Land(*group, s);
    }
    EXPECT_FALSE(engine_->busy()) << "group commit did not settle";
  }

  // Executes one request and commits its group; the slot holds the reply if
  // there is one yet (a waiting lock.acquire has none).
  std::shared_ptr<Slot> Start(const std::string& method, json params,
                              std::shared_ptr<Client> client = nullptr) {
    auto slot = std::make_shared<Slot>();
    engine_->Execute(method, std::move(params), std::move(client), [slot](Result<json> r) {
      ++slot->calls;
      slot->result = std::move(r);
    });
    Pump();
    return slot;
  }

  // A request that must be answered at once (after its group commits).
  Result<json> Call(const std::string& method, json params, std::shared_ptr<Client> client = nullptr) {
    auto slot = Start(method, std::move(params), std::move(client));
    EXPECT_EQ(slot->calls, 1) << method << " must be answered exactly once";
    if (!slot->result) return Status::Internal("no reply to " + method);
    return *slot->result;
  }

  // Call that must succeed.
  json Ok(const std::string& method, json params, std::shared_ptr<Client> client = nullptr) {
    const std::string shown = params.dump();
    Result<json> r = Call(method, std::move(params), std::move(client));
    EXPECT_TRUE(r.ok()) << method << " " << shown << ": " << r.status().ToString();
    return r.ok() ? r.value() : json();
  }

  // Moves both clocks and runs whatever fell due, committing its writes.
  void Advance(int64_t ms) {
    clock_.Advance(ms);
    engine_->RunTimers();
    Pump();
  }

  int64_t Now() const { return clock_.NowMs(); }

  // --- shorthands -------------------------------------------------------
  json LockStatus(const std::string& lock) { return Ok("lock.status", {{"name", lock}}); }
  json Get(const std::string& key) { return Ok("state.get", {{"key", key}}); }
  bool LeaseAlive(uint64_t lease_id) {
    json list = Ok("lease.list", json::object());
    for (const json& l : list["leases"]) {
      if (l["lease_id"] == lease_id) return true;
    }
    return false;
  }

  EngineLimits limits_;  // set before Open() to test other limits
  testing::TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<Engine> engine_;
};

// gtest predicate: `r` failed with `code`.
inline ::testing::AssertionResult FailedWith(const Result<json>& r, StatusCode code) {
  if (r.ok()) {
    return ::testing::AssertionFailure() << "expected " << StatusCodeReason(code) << ", got OK "
                                         << r.value().dump();
  }
  if (r.status().code() != code) {
    return ::testing::AssertionFailure() << "expected " << StatusCodeReason(code) << ", got "
                                         << r.status().ToString();
  }
  return ::testing::AssertionSuccess();
}

}  // namespace shim::engine::coordtest
