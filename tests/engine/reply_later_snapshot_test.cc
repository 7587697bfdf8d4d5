// A reply computed at release time (Core::ReplyLater) must describe the
// moment its request was applied, and only what is durable. Found by the
// crash loop (tests/fault/crash_loop_client.cc, SessionOp): recovery.check
// decides `recovery_available` when it is applied but describes the session
// when its reply is released, at the Land of the group it waited for; by
// then the engine may have applied later commands and timers into the next
// group, which is not durable yet. Here a heartbeat lapse applied in between
// shows as state "unclean" next to `recovery_available: false`, and a crash
// before the next group commits takes the "unclean" back.
//
// Now what lives in memory is taken when the request is applied, and only
// store reads (checkpoint data) wait for the release, when the store holds
// exactly what is durable. session.status described its session the same
// way.
#include <gtest/gtest.h>

#include "tests/engine/engine_fixture.h"

namespace shim::engine::test {
namespace {

class ReplyLaterSnapshotTest : public EngineTest {
 protected:
  // Makes a group that was sealed and held in flight durable, and lands it.
  void WriteAndLand(Group& group) {
    ASSERT_OK(group.Write());
    engine_->Land(group, Status::Ok());
  }

  // Applies `method` on session "s" while a write (state.set) is sealed and
  // in flight, then makes that write durable: the reply, in *slot, waits
  // for the next group.
  void ExecuteBehindAWriteInFlight(const std::string& method, std::shared_ptr<ReplySlot>* slot) {
    auto set = Execute("state.set", {{"key", "a"}, {"value", 1}});
    std::unique_ptr<Group> g1 = engine_->Seal();
    *slot = Execute(method, {{"session_id", "s"}});
    ASSERT_NO_FATAL_FAILURE(WriteAndLand(*g1));
    ASSERT_TRUE(set->done());
  }
};

TEST_F(ReplyLaterSnapshotTest, RecoveryCheckShowsOnlyDurableStateOfTheMomentItWasApplied) {
  Ok("session.open", {{"session_id", "s"}, {"heartbeat_ttl_ms", 200}});
  // The check is applied now, while the session is open; its reply waits.
  std::shared_ptr<ReplySlot> check;
  ASSERT_NO_FATAL_FAILURE(ExecuteBehindAWriteInFlight("recovery.check", &check));
  ASSERT_FALSE(check->done());
  // The group holding the check's reply goes in flight (no writes of its own)...
  ASSERT_TRUE(engine_->ReadyToSeal());
  std::unique_ptr<Group> g2 = engine_->Seal();
  // ...and meanwhile the heartbeat lapses: "unclean" goes into the next group.
  clock_.Advance(300);
  engine_->RunTimers();
  ASSERT_TRUE(engine_->busy());
  ASSERT_NO_FATAL_FAILURE(WriteAndLand(*g2));
  ASSERT_TRUE(check->done());
  ASSERT_TRUE(check->result->ok());
  const json reply = check->result->value();
  EXPECT_EQ(reply["recovery_available"], reply["session"]["state"] == "unclean")
      << "the reply mixes two moments: " << reply.dump();
  // A crash before that next group commits.
  ASSERT_NO_FATAL_FAILURE(Close());
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(reply["session"]["state"], Ok("session.status", {{"session_id", "s"}})["state"])
      << "the reply showed a state that a crash took back";
}

TEST_F(ReplyLaterSnapshotTest, SessionStatusShowsTheMomentItWasApplied) {
  Ok("session.open", {{"session_id", "s"}, {"heartbeat_ttl_ms", 200}});
  std::shared_ptr<ReplySlot> status;
  ASSERT_NO_FATAL_FAILURE(ExecuteBehindAWriteInFlight("session.status", &status));
  ASSERT_FALSE(status->done());
  std::unique_ptr<Group> g2 = engine_->Seal();
  clock_.Advance(300);
  engine_->RunTimers();  // the lapse goes into a group that is not durable
  ASSERT_NO_FATAL_FAILURE(WriteAndLand(*g2));
  ASSERT_TRUE(status->done());
  ASSERT_TRUE(status->result->ok());
  EXPECT_EQ(status->result->value()["state"], "open") << status->result->value().dump();
  EXPECT_EQ(status->result->value()["session"]["state"], "open");
}

TEST_F(ReplyLaterSnapshotTest, CheckpointGetDoesNotSeeACheckpointSavedAfterIt) {
  Ok("session.open", {{"session_id", "s"}});
  Ok("checkpoint.save", {{"session_id", "s"}, {"data", "one"}});
  std::shared_ptr<ReplySlot> get;
  ASSERT_NO_FATAL_FAILURE(ExecuteBehindAWriteInFlight("checkpoint.get", &get));
  std::unique_ptr<Group> g2 = engine_->Seal();
  // A second checkpoint, applied after the get, not yet durable.
  auto save = Execute("checkpoint.save", {{"session_id", "s"}, {"data", "two"}});
  ASSERT_NO_FATAL_FAILURE(WriteAndLand(*g2));
  ASSERT_TRUE(get->done());
  ASSERT_TRUE(get->result->ok()) << get->result->status().ToString();
  EXPECT_EQ(get->result->value()["data"], "one");
  EXPECT_EQ(get->result->value()["corrupted_checkpoints"], json::array())
      << "a checkpoint not yet written is not corrupted";
}

}  // namespace
}  // namespace shim::engine::test
