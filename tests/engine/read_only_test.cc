// Read-only after a failed reload (engine/engine.h): a group write fails
// (failpoint store.before_write:error), the reload from the store that
// follows fails too (engine.reload:error), and from then on every method
// that writes is answered READ_ONLY with the reload's failure as its cause,
// while reads, subscriptions and paced replays go on and no timer writes.
// Reopening the engine on the same directory (a restart) clears it.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "storage/failpoint.h"
#include "tests/engine/engine_fixture.h"

namespace shim::engine::test {
namespace {

class ReadOnlyTest : public EngineTest {
 protected:
  void TearDown() override {
    failpoint::Reset();
    EngineTest::TearDown();
  }

  // One state.set whose group write fails; with `reload_fails` the reload
  // after it fails too. Drives the commit by hand: EngineTest::Call expects
  // writes to succeed.
  void FailAWrite(bool reload_fails) {
    ASSERT_OK(failpoint::Configure(reload_fails ? "store.before_write:error,engine.reload:error"
                                                : "store.before_write:error"));
    auto lost = Execute("state.set", {{"key", "lost"}, {"value", 1}});
    ASSERT_TRUE(engine_->ReadyToSeal());
    std::unique_ptr<Group> group = engine_->Seal();
    Status written = group->Write();
    EXPECT_EQ(written.code(), StatusCode::kInternal);
    EXPECT_NE(written.message().find("failpoint store.before_write fired"), std::string::npos)
        << written.ToString();
    engine_->Land(*group, written);
    failpoint::Reset();
    ASSERT_EQ(lost->calls, 1);
    EXPECT_TRUE(FailedWith(*lost->result, StatusCode::kInternal))
        << "the failed write itself is INTERNAL";
  }
};

TEST_F(ReadOnlyTest, AFailedReloadRefusesEveryWriteWithItsCause) {
  Ok("state.set", {{"key", "kept"}, {"value", 1}});
  ASSERT_NO_FATAL_FAILURE(FailAWrite(/*reload_fails=*/true));

  ASSERT_TRUE(engine_->read_only().has_value());
  const std::string cause = engine_->read_only()->cause;
  EXPECT_NE(cause.find("failpoint engine.reload fired"), std::string::npos) << cause;
  EXPECT_EQ(engine_->read_only()->since_ms, clock_.NowMs());

  const uint64_t commits = store_->stats().commits;
  const uint64_t revision = engine_->revision();
  Result<json> set = Call("state.set", {{"key", "k"}, {"value", 2}});
  ASSERT_TRUE(FailedWith(set, StatusCode::kReadOnly));
  EXPECT_EQ(set.status().details()["cause"], cause);
  EXPECT_NE(set.status().message().find(cause), std::string::npos) << set.status().message();

  // Every method that may write is refused before it runs (so whatever its
  // params), and none reaches the store.
  int writers = 0;
  for (std::string_view name : engine_->MethodNames()) {
    if (!engine_->FindMethod(name)->writes()) continue;
    ++writers;
    EXPECT_TRUE(FailedWith(Call(std::string(name), json::object()), StatusCode::kReadOnly)) << name;
  }
  EXPECT_GE(writers, 30);
  EXPECT_EQ(store_->stats().commits, commits);
  EXPECT_EQ(engine_->revision(), revision);

  // Reads answer from what the engine holds.
  EXPECT_EQ(Ok("state.get", {{"key", "kept"}})["value"], 1);
  EXPECT_TRUE(Ok("state.get", {{"key", "lost"}}).is_null());
  EXPECT_EQ(Ok("sys.ping", json::object())["revision"], revision);
}

TEST_F(ReadOnlyTest, SubscriptionsAndPacedReplaysGoOn) {
  // More messages than one replay slice (1000), so the replay needs the
  // pacing timer to finish.
  constexpr int kMessages = 1500;
  auto early = std::make_shared<FakeClient>(1);
  Ok("pubsub.subscribe", {{"channel", "ch"}}, early);
  for (int i = 1; i <= kMessages; ++i) Execute("pubsub.publish", {{"channel", "ch"}, {"data", i}});
  Pump();
  EXPECT_EQ(early->Seqs().size(), static_cast<size_t>(kMessages));
  ASSERT_NO_FATAL_FAILURE(FailAWrite(/*reload_fails=*/true));
  ASSERT_TRUE(engine_->read_only().has_value());

  EXPECT_TRUE(FailedWith(Call("pubsub.publish", {{"channel", "ch"}, {"data", "no"}}),
                         StatusCode::kReadOnly));
  auto late = std::make_shared<FakeClient>(2);
  json sub = Ok("pubsub.subscribe", {{"channel", "ch"}, {"from_seq", 1}}, late);
  EXPECT_TRUE(sub.contains("subscription"));
  ASSERT_LT(late->Seqs().size(), static_cast<size_t>(kMessages))
      << "the replay should take more than one slice";
  for (int turn = 0; turn < 10 && late->Seqs().size() < static_cast<size_t>(kMessages); ++turn) {
    auto in = engine_->NextTimerInMs();
    ASSERT_TRUE(in.has_value()) << "the replay's pacing timer must still be armed";
    clock_.Advance(*in + 1);
    RunTimers();
  }
  std::vector<uint64_t> want;
  for (uint64_t s = 1; s <= kMessages; ++s) want.push_back(s);
  EXPECT_EQ(late->Seqs(), want);
  EXPECT_EQ(Ok("pubsub.history", {{"channel", "ch"}, {"limit", 1}})["messages"].size(), 1u);
  Ok("pubsub.unsubscribe", {{"subscription", sub["subscription"]}}, late);
}

TEST_F(ReadOnlyTest, TimersThatWriteStop) {
  Ok("state.set", {{"key", "ttl"}, {"value", 1}, {"ttl_ms", 1000}});
  Ok("lease.grant", {{"ttl_ms", 1000}});
  ASSERT_NO_FATAL_FAILURE(FailAWrite(/*reload_fails=*/true));
  ASSERT_TRUE(engine_->read_only().has_value());
  EXPECT_EQ(engine_->NextTimerInMs(), std::nullopt) << "no timer but the pacing ones runs";
  const uint64_t commits = store_->stats().commits;
  clock_.Advance(5000);
  RunTimers();
  EXPECT_EQ(store_->stats().commits, commits)
      << "a key's TTL or a lease's end wrote while read-only";
  // A read still hides what has expired.
  EXPECT_TRUE(Ok("state.get", {{"key", "ttl"}}).is_null());
}

TEST_F(ReadOnlyTest, ARestartClearsIt) {
  Ok("state.set", {{"key", "kept"}, {"value", 1}});
  ASSERT_NO_FATAL_FAILURE(FailAWrite(/*reload_fails=*/true));
  ASSERT_TRUE(engine_->read_only().has_value());
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_FALSE(engine_->read_only().has_value());
  EXPECT_EQ(Ok("state.set", {{"key", "k"}, {"value", 2}})["version"], 1);
  EXPECT_EQ(Ok("state.get", {{"key", "kept"}})["value"], 1);
  EXPECT_TRUE(Ok("state.get", {{"key", "lost"}}).is_null())
      << "the failed write never reached the store";
}

TEST_F(ReadOnlyTest, AReloadThatSucceedsKeepsTheEngineWritable) {
  Ok("state.set", {{"key", "kept"}, {"value", 1}});
  ASSERT_NO_FATAL_FAILURE(FailAWrite(/*reload_fails=*/false));
  EXPECT_FALSE(engine_->read_only().has_value());
  EXPECT_EQ(Ok("state.set", {{"key", "k"}, {"value", 2}})["version"], 1);
}

}  // namespace
}  // namespace shim::engine::test
