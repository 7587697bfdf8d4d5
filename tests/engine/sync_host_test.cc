// SyncHost (tests/support/sync_host.h), the host every engine test, fuzz
// target and engine benchmark drives the engine through: it commits as
// net/engine_host.cc does, and what it reports as a fault.
#include "tests/support/sync_host.h"

#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/clock.h"
#include "engine/engine.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_util.h"

namespace shim::testing {
namespace {

using nlohmann::json;

class SyncHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(
        host_, SyncHost::OpenAt(dir_.Sub("data"), &clock_,
                                [this](const std::string& what) { faults_.push_back(what); }));
  }
  void TearDown() override {
    if (host_) EXPECT_OK(host_->Close());
  }

  TempDir dir_;
  engine::FakeClock clock_;
  std::vector<std::string> faults_;
  std::unique_ptr<SyncHost> host_;
};

TEST_F(SyncHostTest, AWriteIsAnsweredWhenItsGroupLands) {
  auto set = host_->Execute("state.set", {{"key", "k"}, {"value", 1}});
  EXPECT_FALSE(set->done());
  EXPECT_TRUE(host_->CommitGroup());
  EXPECT_TRUE(set->ok());
  EXPECT_FALSE(host_->CommitGroup()) << "nothing left to commit";
  EXPECT_TRUE(faults_.empty());
}

TEST_F(SyncHostTest, ACallLeftWaitingIsAFault) {
  ASSERT_OK(host_->Call("lock.acquire", {{"name", "L"}, {"owner", "a"}, {"ttl_ms", 60'000}}));
  ASSERT_TRUE(faults_.empty());
  Result<json> waiting = host_->Call(
      "lock.acquire", {{"name", "L"}, {"owner", "b"}, {"ttl_ms", 60'000}, {"wait_ms", 60'000}});
  EXPECT_EQ(waiting.status().code(), StatusCode::kInternal);
  EXPECT_EQ(faults_, std::vector<std::string>{
                         "lock.acquire must be answered exactly once, was answered 0 times"});
}

TEST_F(SyncHostTest, APumpThatCannotSettleIsAFault) {
  host_->Execute("state.set", {{"key", "k"}, {"value", 1}});
  // A group in flight that the host did not seal: it cannot land it.
  std::unique_ptr<engine::Group> in_flight = host_->engine().Seal();
  host_->Pump();
  EXPECT_EQ(faults_, std::vector<std::string>{"group commit did not settle"});
  ASSERT_OK(in_flight->Write());
  host_->engine().Land(*in_flight, Status::Ok());
}

TEST_F(SyncHostTest, RunUntilIdleRunsTheTimersThatFellDueAndPumpDoesNot) {
  ASSERT_OK(host_->Call("state.set", {{"key", "k"}, {"value", 1}, {"ttl_ms", 100}}));
  clock_.Advance(200);
  host_->Pump();
  EXPECT_EQ(host_->engine().Describe()["keys"], 1) << "the expiry is a timer";
  host_->RunUntilIdle();
  EXPECT_EQ(host_->engine().Describe()["keys"], 0);
  EXPECT_FALSE(host_->engine().busy()) << "the expiry's delete is committed";
  EXPECT_TRUE(faults_.empty());
}

}  // namespace
}  // namespace shim::testing
