// Group commit: replies leave only after the group holding what they
// observed is durable, in request order; a failed write fails the whole
// group and the open one, and the engine reloads its memory from the store.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/engine/engine_fixture.h"

namespace shim::engine::test {
namespace {

class GroupCommitTest : public EngineTest {
 protected:
  // Executes a request whose reply appends "<label>" or "<label>:<REASON>"
  // to log_, so tests can check what was released, when, and in what order.
  std::shared_ptr<ReplySlot> Logged(const std::string& label, const std::string& method,
                                    json params, std::shared_ptr<Client> client = nullptr) {
    auto pending = std::make_shared<ReplySlot>();
    host_->Execute(
        method, std::move(params), std::move(client), [this, label, pending](Result<json> r) {
          log_.push_back(r.ok() ? label
                                : label + ":" + std::string(StatusCodeReason(r.status().code())));
          ++pending->calls;
          pending->result = std::move(r);
        });
    return pending;
  }

  std::vector<std::string> log_;
};

TEST_F(GroupCommitTest, RepliesOfManyCommandsAreReleasedOnlyAtLandInOrder) {
  const uint64_t commits_before = store_->stats().commits;
  auto set_a = Logged("set a", "state.set", {{"key", "a"}, {"value", 1}});
  auto set_b = Logged("set b", "state.set", {{"key", "b"}, {"value", 2}});
  auto get_a = Logged("get a", "state.get", {{"key", "a"}});
  auto incr = Logged("incr c", "state.incr", {{"key", "c"}});
  auto pub = Logged("publish", "pubsub.publish", {{"channel", "ch"}, {"data", 1}});
  auto ping = Logged("ping", "sys.ping", json::object());
  auto del = Logged("del b", "state.del", {{"key", "b"}});
  EXPECT_TRUE(log_.empty()) << "nothing may be answered before the group is durable";
  ASSERT_TRUE(engine_->ReadyToSeal());

  std::unique_ptr<Group> group = engine_->Seal();
  EXPECT_TRUE(group->has_writes());
  EXPECT_TRUE(log_.empty());
  ASSERT_OK(group->Write());
  EXPECT_TRUE(log_.empty()) << "durable is not enough: replies leave at Land";
  EXPECT_EQ(store_->stats().commits, commits_before + 1) << "one write for the whole group";

  engine_->Land(*group, Status::Ok());
  EXPECT_EQ(log_, (std::vector<std::string>{"set a", "set b", "get a", "incr c", "publish", "ping",
                                            "del b"}));
  for (const auto& p : {set_a, set_b, get_a, incr, pub, ping, del}) EXPECT_EQ(p->calls, 1);
  // The read saw the write applied before it, and was held with it.
  EXPECT_EQ(get_a->result->value()["value"], 1);
  EXPECT_EQ(pub->result->value()["seq"], 1);
  EXPECT_EQ(engine_->stats().groups, 1u);
  EXPECT_EQ(engine_->stats().grouped_commands, 5u)
      << "the writes: set a, set b, incr c, publish, del b";
  EXPECT_FALSE(engine_->busy());

  // Every write of the group reached the store together.
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(Ok("state.get", {{"key", "a"}})["value"], 1);
  EXPECT_TRUE(Ok("state.get", {{"key", "b"}}).is_null());
  EXPECT_EQ(Ok("state.get", {{"key", "c"}})["value"], 1);
  EXPECT_EQ(Ok("pubsub.history", {{"channel", "ch"}})["messages"].size(), 1u);
}

TEST_F(GroupCommitTest, HeldReplyBytesCountWhatWaitsForTheCommitUntilItLands) {
  // The host bounds the replies waiting for a commit (reads behind a write
  // pipelined by the thousand): this is what it measures.
  const std::string big(100'000, 'b');
  ASSERT_OK(Call("state.set", {{"key", "big"}, {"value", big}}).status());
  EXPECT_EQ(engine_->held_reply_bytes(), 0u) << "nothing held while nothing is pending";
  auto write = Logged("set", "state.set", {{"key", "w"}, {"value", 1}});
  const size_t after_write = engine_->held_reply_bytes();
  EXPECT_GT(after_write, 0u) << "the write's own reply waits";
  std::vector<std::shared_ptr<ReplySlot>> reads;
  for (int i = 0; i < 10; ++i) reads.push_back(Logged("get", "state.get", {{"key", "big"}}));
  EXPECT_GE(engine_->held_reply_bytes(), after_write + 10 * big.size())
      << "ten copies of the value wait";
  EXPECT_LT(engine_->held_reply_bytes(), after_write + 10 * (big.size() + 1000));

  std::unique_ptr<Group> group = engine_->Seal();
  EXPECT_GE(engine_->held_reply_bytes(), 10 * big.size()) << "in flight, still held";
  ASSERT_OK(group->Write());
  engine_->Land(*group, Status::Ok());
  EXPECT_EQ(engine_->held_reply_bytes(), 0u) << "released at the land";
  for (const auto& r : reads) EXPECT_EQ(r->calls, 1);
}

TEST_F(GroupCommitTest, ReadWithNothingPendingIsAnsweredAtOnce) {
  Ok("state.set", {{"key", "a"}, {"value", 1}});
  auto get = Logged("get", "state.get", {{"key", "a"}});
  EXPECT_TRUE(get->done());
  EXPECT_FALSE(engine_->ReadyToSeal());
}

TEST_F(GroupCommitTest, ReadIssuedWhileAWriteIsInFlightWaitsForIt) {
  auto set = Logged("set", "state.set", {{"key", "a"}, {"value", 1}});
  std::unique_ptr<Group> in_flight = engine_->Seal();
  auto get = Logged("get", "state.get", {{"key", "a"}});
  EXPECT_FALSE(get->done()) << "it observed a write that is not durable yet";
  EXPECT_FALSE(engine_->ReadyToSeal()) << "at most one group in flight";
  ASSERT_OK(in_flight->Write());
  EXPECT_FALSE(get->done());
  engine_->Land(*in_flight, Status::Ok());
  Pump();
  EXPECT_EQ(log_, (std::vector<std::string>{"set", "get"}));
  EXPECT_EQ(get->result->value()["value"], 1);
}

TEST_F(GroupCommitTest, FailedWriteFailsItsGroupAndTheOpenGroupAndReloadsFromStore) {
  auto sub = std::make_shared<FakeClient>(1);
  Ok("pubsub.subscribe", {{"channel", "ch"}}, sub);
  Ok("state.set", {{"key", "base"}, {"value", 1}});
  Ok("pubsub.publish", {{"channel", "ch"}, {"data", "durable"}});
  const uint64_t durable_revision = engine_->revision();
  sub->clear();

  // Group A: will fail to write.
  Logged("A set", "state.set", {{"key", "only_failed"}, {"value", 1}});
  Logged("A incr", "state.incr", {{"key", "base"}});
  Logged("A publish", "pubsub.publish", {{"channel", "ch"}, {"data", "lost"}});
  auto late = std::make_shared<FakeClient>(2);
  Logged("A subscribe", "pubsub.subscribe", {{"channel", "ch"}, {"from_seq", 1}}, late);
  std::unique_ptr<Group> a = engine_->Seal();
  // Group B: open, built on top of A's memory.
  Logged("B set", "state.set", {{"key", "open_key"}, {"value", 2}});
  Logged("B get", "state.get", {{"key", "only_failed"}});
  Logged("B incr", "state.incr", {{"key", "base"}});
  EXPECT_TRUE(log_.empty());

  engine_->Land(*a, Status::Internal("injected write failure"));
  EXPECT_EQ(log_,
            (std::vector<std::string>{"A set:INTERNAL", "A incr:INTERNAL", "A publish:INTERNAL",
                                      "A subscribe:INTERNAL", "B set:INTERNAL", "B get:INTERNAL",
                                      "B incr:INTERNAL"}));
  EXPECT_EQ(engine_->stats().failed_groups, 1u);
  EXPECT_FALSE(engine_->busy()) << "the open group was failed too";
  EXPECT_FALSE(engine_->ReadyToSeal());

  // Memory is what the store holds: nothing of A or B.
  EXPECT_EQ(engine_->revision(), durable_revision);
  EXPECT_TRUE(Ok("state.get", {{"key", "only_failed"}}).is_null());
  EXPECT_TRUE(Ok("state.get", {{"key", "open_key"}}).is_null());
  json base = Ok("state.get", {{"key", "base"}});
  EXPECT_EQ(base["value"], 1);
  EXPECT_EQ(base["version"], 1);
  json history = Ok("pubsub.history", {{"channel", "ch"}});
  ASSERT_EQ(history["messages"].size(), 1u);
  EXPECT_EQ(history["messages"][0]["data"], "durable");
  // Nothing of the failed group was delivered or subscribed.
  EXPECT_TRUE(sub->notes().empty());
  EXPECT_TRUE(late->notes().empty());
  EXPECT_EQ(engine_->Describe()["subscriptions"], 1);

  // The engine goes on from the durable state: the unacknowledged seq and
  // revision are handed out again, and the old subscriber still works.
  json pub = Ok("pubsub.publish", {{"channel", "ch"}, {"data", "after"}});
  EXPECT_EQ(pub["seq"], 2);
  EXPECT_EQ(pub["delivered"], 1);
  EXPECT_EQ(sub->Seqs(), (std::vector<uint64_t>{2}));
  EXPECT_EQ(engine_->revision(), durable_revision + 1);
  EXPECT_EQ(Ok("state.incr", {{"key", "base"}})["value"], 2);

  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_TRUE(Ok("state.get", {{"key", "only_failed"}}).is_null());
  EXPECT_TRUE(Ok("state.get", {{"key", "open_key"}}).is_null());
  EXPECT_EQ(Ok("state.get", {{"key", "base"}})["value"], 2);
  EXPECT_EQ(engine_->revision(), durable_revision + 2);
}

TEST_F(GroupCommitTest, FailedWriteWithNothingOpenFailsOnlyItsGroup) {
  Logged("set", "state.set", {{"key", "k"}, {"value", 1}});
  std::unique_ptr<Group> a = engine_->Seal();
  engine_->Land(*a, Status::Internal("injected"));
  EXPECT_EQ(log_, (std::vector<std::string>{"set:INTERNAL"}));
  EXPECT_TRUE(Ok("state.get", {{"key", "k"}}).is_null());
  EXPECT_EQ(engine_->revision(), 0u);
  // Writes are accepted again afterwards.
  EXPECT_EQ(Ok("state.set", {{"key", "k"}, {"value", 2}})["version"], 1);
}

}  // namespace
}  // namespace shim::engine::test
