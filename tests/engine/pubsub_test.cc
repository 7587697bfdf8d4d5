// pubsub.* through the engine, with FakeClient connections that record
// notifications and can refuse them (a full outbound buffer).
#include "engine/pubsub.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "storage/key_codec.h"
#include "tests/engine/engine_fixture.h"

namespace shim::engine::test {
namespace {

using Seqs = std::vector<uint64_t>;

// The notice's params hold each member of `want` with its value (a
// notice may hold more).
void ExpectMembers(const json& notice, const json& want) {
  for (const auto& [member, value] : want.items()) EXPECT_EQ(notice[member], value) << member;
}

class PubSubTest : public EngineTest {
 protected:
  uint64_t Publish(const std::string& channel, json data = "m") {
    json r = Ok("pubsub.publish", {{"channel", channel}, {"data", std::move(data)}});
    return r.value("seq", uint64_t{0});
  }
  uint64_t Subscribe(const std::shared_ptr<FakeClient>& client, json params) {
    json r = Ok("pubsub.subscribe", std::move(params), client);
    return r.value("subscription", uint64_t{0});
  }
  Seqs HistorySeqs(const std::string& channel, json extra = json::object()) {
    extra["channel"] = channel;
    json r = Ok("pubsub.history", extra);
    Seqs out;
    for (const json& m : r["messages"]) out.push_back(m["seq"].get<uint64_t>());
    return out;
  }
  size_t Subscriptions() { return engine_->Describe()["subscriptions"].get<size_t>(); }
  // Messages of `channel` in the store, trimmed or not.
  uint64_t StoredMessages(const std::string& channel) {
    const std::string prefix =
        storage::KeyEncoder(storage::KeyTag::kChannelMessage).Str(channel).key();
    uint64_t n = 0;
    EXPECT_OK(store_->Scan(storage::Family::kChannelLog, prefix, storage::PrefixSuccessor(prefix),
                           [&](std::string_view, std::string_view) {
                             ++n;
                             return true;
                           }));
    return n;
  }
};

TEST_F(PubSubTest, PublishSeqStartsAtOneAndCountsPerChannel) {
  EXPECT_EQ(Publish("a"), 1u);
  EXPECT_EQ(Publish("a"), 2u);
  EXPECT_EQ(Publish("b"), 1u);
  EXPECT_EQ(Publish("a"), 3u);
  EXPECT_EQ(Publish("b"), 2u);
}

TEST_F(PubSubTest, HistoryPagesWithFromSeqLimitAndNextSeq) {
  for (int i = 1; i <= 5; ++i) Publish("h", {{"i", i}});

  json all = Ok("pubsub.history", {{"channel", "h"}});
  ASSERT_EQ(all["messages"].size(), 5u);
  EXPECT_EQ(all["next_seq"], 6);
  const json& first = all["messages"][0];
  EXPECT_EQ(first["channel"], "h");
  EXPECT_EQ(first["seq"], 1);
  EXPECT_EQ(first["data"], json({{"i", 1}}));
  EXPECT_EQ(first["published_at_ms"], clock_.NowMs());

  json p1 = Ok("pubsub.history", {{"channel", "h"}, {"from_seq", 2}, {"limit", 2}});
  EXPECT_EQ(p1["messages"].size(), 2u);
  EXPECT_EQ(p1["messages"][0]["seq"], 2);
  EXPECT_EQ(p1["messages"][1]["seq"], 3);
  EXPECT_EQ(p1["next_seq"], 4);
  json p2 = Ok("pubsub.history", {{"channel", "h"}, {"from_seq", p1["next_seq"]}, {"limit", 2}});
  EXPECT_EQ(p2["messages"].size(), 2u);
  EXPECT_EQ(p2["messages"][0]["seq"], 4);
  EXPECT_EQ(p2["next_seq"], 6);
  json p3 = Ok("pubsub.history", {{"channel", "h"}, {"from_seq", p2["next_seq"]}, {"limit", 2}});
  EXPECT_TRUE(p3["messages"].empty());
  EXPECT_EQ(p3["next_seq"], 6);

  json none = Ok("pubsub.history", {{"channel", "never"}});
  EXPECT_TRUE(none["messages"].empty());
  EXPECT_EQ(none["next_seq"], 1);
}

// A page stops before the message that would take its encoded size past
// max_reply_bytes, holds at least one message however large, and says with
// `more` whether the log goes on; paging with next_seq reads every message
// once.
TEST_F(PubSubTest, HistoryPagesStayWithinTheReplyByteBudget) {
  limits_.max_reply_bytes = 10'000;
  ASSERT_NO_FATAL_FAILURE(Reopen());
  const std::string pad(3000, 'x');
  for (int i = 1; i <= 10; ++i) Publish("big", {{"i", i}, {"pad", pad}});
  Publish("big", {{"i", 11}, {"pad", std::string(25'000, 'y')}});  // over the budget alone
  Publish("big", {{"i", 12}});

  std::vector<Seqs> pages;
  std::vector<bool> more;
  uint64_t from = 1;
  for (int guard = 0; guard < 20; ++guard) {
    json r = Ok("pubsub.history", {{"channel", "big"}, {"from_seq", from}, {"limit", 1000}});
    Seqs page;
    for (const json& m : r["messages"]) {
      page.push_back(m["seq"]);
      EXPECT_EQ(m["data"]["i"], m["seq"]) << "data intact";
    }
    EXPECT_LE(r.dump().size(), page.size() == 1 ? 26'000u : 10'000u) << "page of " << page.size();
    pages.push_back(page);
    more.push_back(r["more"]);
    from = r["next_seq"];
    if (!r["more"]) break;
  }
  EXPECT_EQ(pages, (std::vector<Seqs>{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}, {10}, {11}, {12}}));
  EXPECT_EQ(more, (std::vector<bool>{true, true, true, true, true, false}));
  EXPECT_EQ(from, 13u);

  // The message limit ends a page too, with `more` when the log goes on.
  json r = Ok("pubsub.history", {{"channel", "big"}, {"from_seq", 12}, {"limit", 1}});
  EXPECT_EQ(r["messages"].size(), 1u);
  EXPECT_EQ(r["more"], false) << "seq 12 is the last";
  r = Ok("pubsub.history", {{"channel", "big"}, {"from_seq", 11}, {"limit", 1}});
  EXPECT_EQ(r["more"], true);
  EXPECT_EQ(Ok("pubsub.history", {{"channel", "none"}})["more"], false);
}

TEST_F(PubSubTest, LiveMessageCarriesSubscriptionChannelSeqDataAndTime) {
  auto c = NewClient();
  const uint64_t sub = Subscribe(c, {{"channel", "ch"}});
  ASSERT_NE(sub, 0u);
  clock_.Advance(1234);
  json r = Ok("pubsub.publish", {{"channel", "ch"}, {"data", {{"x", 1}}}});
  EXPECT_EQ(r["delivered"], 1);
  auto msgs = c->Of("pubsub.message");
  ASSERT_EQ(msgs.size(), 1u);
  ExpectMembers(msgs[0], {{"subscription", sub},
                          {"channel", "ch"},
                          {"seq", 1},
                          {"data", {{"x", 1}}},
                          {"published_at_ms", clock_.NowMs()}});
}

// Live and replayed messages reach the connection as params text spliced
// from the stored data; it must be the very text json::dump writes (sorted
// keys, escapes), whatever the channel name and data hold.
TEST_F(PubSubTest, MessageParamsTextIsExactlyTheirJsonEncodingLiveAndReplayed) {
  const std::string channel = "we\"ird/ch\u00e9\\n";
  const json data = {{"z", "quote \" backslash \\ newline \n tab \t ctl \x01"},
                     {"a", json::array({1, 2.5, nullptr, true})},
                     {"m", {{"b", "caf\xc3\xa9"}, {"a", json::object()}}}};
  auto live = NewClient();
  Subscribe(live, {{"channel", channel}});
  clock_.Advance(77);
  Ok("pubsub.publish", {{"channel", channel}, {"data", data}});
  auto replayed = NewClient();
  Subscribe(replayed, {{"channel", channel}, {"from_seq", 1}});

  for (const auto& c : {live, replayed}) {
    ASSERT_EQ(c->encoded().size(), 1u);
    const json params = json::parse(c->encoded()[0]);
    EXPECT_EQ(params["channel"], channel);
    EXPECT_EQ(params["data"], data);
    EXPECT_EQ(params["seq"], 1);
    EXPECT_EQ(params["published_at_ms"], clock_.NowMs());
    EXPECT_EQ(c->encoded()[0], params.dump());
  }
}

TEST_F(PubSubTest, SubscribeWithoutFromSeqGetsOnlyLaterMessages) {
  Publish("ch");
  Publish("ch");
  auto c = NewClient();
  Subscribe(c, {{"channel", "ch"}});
  EXPECT_TRUE(c->Seqs().empty());
  Publish("ch");
  Publish("other");
  EXPECT_EQ(c->Seqs(), (Seqs{3}));
}

TEST_F(PubSubTest, SubscribeFromSeqReplaysStoredThenLiveWithNoGapOrDuplicate) {
  for (int i = 0; i < 4; ++i) Publish("ch");
  auto c = NewClient();
  Subscribe(c, {{"channel", "ch"}, {"from_seq", 2}});
  EXPECT_EQ(c->Seqs(), (Seqs{2, 3, 4}));
  Publish("ch");
  Publish("ch");
  EXPECT_EQ(c->Seqs(), (Seqs{2, 3, 4, 5, 6}));

  // from_seq 0 and 1 both mean "from the oldest retained".
  auto d = NewClient();
  Subscribe(d, {{"channel", "ch"}, {"from_seq", 0}});
  EXPECT_EQ(d->Seqs(), (Seqs{1, 2, 3, 4, 5, 6}));
  // from_seq past the end: nothing stored to replay, live from there.
  auto e = NewClient();
  Subscribe(e, {{"channel", "ch"}, {"from_seq", 7}});
  EXPECT_TRUE(e->Seqs().empty());
  Publish("ch");
  EXPECT_EQ(e->Seqs(), (Seqs{7}));
}

TEST_F(PubSubTest, SubscribeReplyPrecedesItsReplay) {
  Publish("ch");
  Publish("ch");
  auto c = NewClient();
  engine_->Execute("pubsub.subscribe", {{"channel", "ch"}, {"from_seq", 1}}, c,
                   [c](Result<json> r) { c->Mark(r.ok() ? "reply" : "error"); });
  Pump();
  std::vector<std::string> order;
  for (const auto& n : c->notes()) order.push_back(n.method);
  EXPECT_EQ(order, (std::vector<std::string>{"reply", "pubsub.message", "pubsub.message"}));
}

TEST_F(PubSubTest, SubscribeInTheSameGroupAsPublishesHasNoGapOrDuplicate) {
  Publish("ch");
  Publish("ch");
  auto before = NewClient(), middle = NewClient(), after = NewClient(), live = NewClient();
  // One group: a write (so nothing after it may answer before the commit),
  // then subscribe, publish 3, subscribe, publish 4, subscribe.
  auto w = Execute("state.set", {{"key", "k"}, {"value", 1}});
  auto r1 = Execute("pubsub.subscribe", {{"channel", "ch"}, {"from_seq", 1}}, before);
  auto r2 = Execute("pubsub.subscribe", {{"channel", "ch"}}, live);
  auto p3 = Execute("pubsub.publish", {{"channel", "ch"}, {"data", 3}});
  auto r3 = Execute("pubsub.subscribe", {{"channel", "ch"}, {"from_seq", 1}}, middle);
  auto p4 = Execute("pubsub.publish", {{"channel", "ch"}, {"data", 4}});
  auto r4 = Execute("pubsub.subscribe", {{"channel", "ch"}, {"from_seq", 3}}, after);
  EXPECT_FALSE(w->done() || r1->done() || r2->done() || p3->done() || r3->done() || p4->done() ||
               r4->done());
  EXPECT_TRUE(before->notes().empty()) << "nothing leaves before the group is durable";
  ASSERT_TRUE(CommitGroup());
  for (auto* r : {&r1, &r2, &p3, &r3, &p4, &r4}) ASSERT_TRUE((*r)->done() && (*r)->result->ok());

  EXPECT_EQ(before->Seqs(), (Seqs{1, 2, 3, 4}));
  EXPECT_EQ(middle->Seqs(), (Seqs{1, 2, 3, 4}));
  EXPECT_EQ(after->Seqs(), (Seqs{3, 4}));
  EXPECT_EQ(live->Seqs(), (Seqs{3, 4}));
  EXPECT_EQ(p3->result->value()["delivered"], 2);  // before, live
  EXPECT_EQ(p4->result->value()["delivered"], 3);  // before, live, middle

  Publish("ch");
  EXPECT_EQ(before->Seqs(), (Seqs{1, 2, 3, 4, 5}));
  EXPECT_EQ(after->Seqs(), (Seqs{3, 4, 5}));
}

TEST_F(PubSubTest, SubscribeWhileAPublishIsInFlightHasNoGapOrDuplicate) {
  Publish("ch");
  Publish("ch");
  auto c = NewClient();
  auto p3 = Execute("pubsub.publish", {{"channel", "ch"}, {"data", 3}});
  std::unique_ptr<Group> in_flight = engine_->Seal();
  // Applied while seq 3 is being written: the replay must still include it.
  auto sub = Execute("pubsub.subscribe", {{"channel", "ch"}, {"from_seq", 1}}, c);
  auto p4 = Execute("pubsub.publish", {{"channel", "ch"}, {"data", 4}});
  EXPECT_FALSE(engine_->ReadyToSeal()) << "one group in flight at a time";
  ASSERT_OK(in_flight->Write());
  engine_->Land(*in_flight, Status::Ok());
  EXPECT_TRUE(p3->done());
  EXPECT_FALSE(sub->done());
  EXPECT_TRUE(c->Seqs().empty());
  ASSERT_TRUE(CommitGroup());
  ASSERT_TRUE(sub->done() && p4->done());
  EXPECT_EQ(c->Seqs(), (Seqs{1, 2, 3, 4}));
}

TEST_F(PubSubTest, PatternSubscriptionsMatchGlobs) {
  auto star = NewClient(), question = NewClient(), klass = NewClient();
  Subscribe(star, {{"pattern", "jobs.*"}});
  Subscribe(question, {{"pattern", "log.?"}});
  Subscribe(klass, {{"pattern", "m[ab]x"}});
  for (const char* ch :
       {"jobs.a", "jobs.", "job", "log.1", "log.12", "log.", "max", "mbx", "mcx"}) {
    Publish(ch);
  }
  auto channels = [](const FakeClient& c) {
    std::vector<std::string> out;
    for (const json& m : c.Of("pubsub.message")) out.push_back(m["channel"]);
    return out;
  };
  EXPECT_EQ(channels(*star), (std::vector<std::string>{"jobs.a", "jobs."}));
  EXPECT_EQ(channels(*question), (std::vector<std::string>{"log.1"}));
  EXPECT_EQ(channels(*klass), (std::vector<std::string>{"max", "mbx"}));
}

// Through the engine, the pattern index delivers what trying every pattern
// delivered: each subscription gets exactly the channels its glob matches,
// `delivered` counts them, and several on one connection arrive in
// subscription order. (tests/engine/pattern_index_test.cc compares the
// index with the old matcher on random input.)
TEST_F(PubSubTest, PatternSubscriptionsGetExactlyTheChannelsTheirGlobMatches) {
  const std::vector<std::string> patterns = {"events.*",   "*.errors", "*fail*",   "events.q?",
                                             "team/[ab]*", "*",        "[^e]*",    "events.q1",
                                             "e*s.q*",     "\\*",      "x[",       "*.q1",
                                             "?vents.*",   "*s.q1*x",  "events.[", "tea*m/a"};
  const std::vector<std::string> channels = {
      "events.q1", "events.q12", "app.errors", "job.failed", "team/a",
      "team/c",    "\\x",        "x[",         "events.[",   "team/a.errors"};
  auto one = NewClient();  // holds every pattern, to check the order
  std::vector<std::shared_ptr<FakeClient>> each;
  for (const std::string& p : patterns) {
    Subscribe(one, {{"pattern", p}});
    each.push_back(NewClient());
    Subscribe(each.back(), {{"pattern", p}});
  }
  for (const std::string& channel : channels) {
    json r = Ok("pubsub.publish", {{"channel", channel}, {"data", 1}});
    std::vector<uint64_t> want_subs;  // on `one`: ids 1, 3, 5, ... in pattern order
    for (size_t i = 0; i < patterns.size(); ++i) {
      if (GlobMatch(patterns[i], channel)) want_subs.push_back(1 + 2 * i);
    }
    EXPECT_EQ(r["delivered"], 2 * want_subs.size()) << channel;
    std::vector<uint64_t> got_subs;
    for (const json& m : one->Of("pubsub.message")) got_subs.push_back(m["subscription"]);
    EXPECT_EQ(got_subs, want_subs) << channel;
    one->clear();
  }
  for (size_t i = 0; i < patterns.size(); ++i) {
    std::vector<std::string> want, got;
    for (const std::string& channel : channels) {
      if (GlobMatch(patterns[i], channel)) want.push_back(channel);
    }
    for (const json& m : each[i]->Of("pubsub.message")) got.push_back(m["channel"]);
    EXPECT_EQ(got, want) << patterns[i];
  }
}

TEST_F(PubSubTest, PatternSubscribeFromSeqReplaysEveryMatchingChannel) {
  Publish("ev.b");
  Publish("ev.a");
  Publish("ev.a");
  Publish("other");
  auto c = NewClient();
  Subscribe(c, {{"pattern", "ev.*"}, {"from_seq", 2}});
  EXPECT_EQ(c->Seqs("ev.a"), (Seqs{2}));
  EXPECT_TRUE(c->Seqs("ev.b").empty());
  EXPECT_TRUE(c->Seqs("other").empty());
  Publish("ev.b");
  EXPECT_EQ(c->Seqs("ev.b"), (Seqs{2}));
}

TEST_F(PubSubTest, RetentionByCountKeepsTheNewestMessages) {
  for (int i = 0; i < 5; ++i) Publish("r");
  json cfg = Ok("pubsub.configure", {{"channel", "r"}, {"max_messages", 3}});
  EXPECT_EQ(cfg["max_messages"], 3);
  EXPECT_EQ(HistorySeqs("r"), (Seqs{3, 4, 5}));
  EXPECT_EQ(Publish("r"), 6u);
  EXPECT_EQ(HistorySeqs("r"), (Seqs{4, 5, 6}));
  // A replay starts at the oldest retained message.
  auto c = NewClient();
  Subscribe(c, {{"channel", "r"}, {"from_seq", 1}});
  EXPECT_EQ(c->Seqs(), (Seqs{4, 5, 6}));
  // History from a trimmed seq also starts at the oldest retained.
  EXPECT_EQ(HistorySeqs("r", {{"from_seq", 2}, {"limit", 1}}), (Seqs{4}));
  // And the trim is on disk.
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(HistorySeqs("r"), (Seqs{4, 5, 6}));
  EXPECT_EQ(Publish("r"), 7u);
  EXPECT_EQ(HistorySeqs("r"), (Seqs{5, 6, 7}));
}

// Keys of trimmed messages, which readers no longer see, leave the store in
// batches of max_messages / 8 (at most 1024): point deletes for a small
// batch, one range delete for a large one.
TEST_F(PubSubTest, TrimmedMessagesLeaveTheStoreInBatchesOfAnEighthOfTheCapacity) {
  for (const int64_t max : {80, 800}) {
    const std::string ch = "batch" + std::to_string(max);
    const uint64_t batch = max / 8;
    Ok("pubsub.configure", {{"channel", ch}, {"max_messages", max}});
    for (uint64_t i = 0; i < max + batch - 1; ++i) Publish(ch);
    Pump();
    EXPECT_EQ(StoredMessages(ch), max + batch - 1)
        << max << ": fewer than a batch trimmed, none deleted";
    Seqs history = HistorySeqs(ch, {{"limit", 1}});
    EXPECT_EQ(history, (Seqs{batch})) << max << ": readers start at the oldest retained";

    Publish(ch);
    Pump();
    EXPECT_EQ(StoredMessages(ch), static_cast<uint64_t>(max)) << max << ": a full batch is deleted";
    EXPECT_EQ(HistorySeqs(ch, {{"limit", 1}}), (Seqs{batch + 1}));

    // The next batch starts where that one ended.
    for (uint64_t i = 0; i < batch - 1; ++i) Publish(ch);
    Pump();
    EXPECT_EQ(StoredMessages(ch), max + batch - 1) << max << ": the second batch is not due yet";
    Publish(ch);
    Pump();
    EXPECT_EQ(StoredMessages(ch), static_cast<uint64_t>(max))
        << max << ": the second batch is deleted";
    EXPECT_EQ(HistorySeqs(ch, {{"limit", 1}}), (Seqs{2 * batch + 1}));
  }
}

// A configure that trims nothing writes only the channel's head: it is
// still answered only once that is durable, and a crash right after the
// answer keeps the setting.
TEST_F(PubSubTest, ConfigureIsAnsweredOnlyOnceItsRetentionIsDurable) {
  auto cfg = Execute("pubsub.configure", {{"channel", "c"}, {"max_messages", 3}});
  EXPECT_FALSE(cfg->done()) << "answered before the new retention was durable";
  Pump();
  ASSERT_TRUE(cfg->ok());
  ASSERT_NO_FATAL_FAILURE(Close());
  ASSERT_NO_FATAL_FAILURE(Open());
  for (int i = 0; i < 5; ++i) Publish("c");
  EXPECT_EQ(HistorySeqs("c"), (Seqs{3, 4, 5}));
}

// pubsub.configure deletes the dead keys at once, even when the new limit
// trims nothing more: a channel lowered to 10 must not keep 99 dead ones.
TEST_F(PubSubTest, ConfigureDeletesDeadKeysAtOnce) {
  Ok("pubsub.configure", {{"channel", "c"}, {"max_messages", 800}});
  for (int i = 0; i < 899; ++i) Publish("c");  // 99 trimmed, under the batch of 100
  Pump();
  EXPECT_EQ(StoredMessages("c"), 899u);
  Ok("pubsub.configure", {{"channel", "c"}, {"max_messages", 800}});
  Pump();
  EXPECT_EQ(StoredMessages("c"), 800u) << "unchanged limit, dead keys deleted";
  Ok("pubsub.configure", {{"channel", "c"}, {"max_messages", 10}});
  Pump();
  EXPECT_EQ(StoredMessages("c"), 10u);
  EXPECT_EQ(HistorySeqs("c"), (Seqs{890, 891, 892, 893, 894, 895, 896, 897, 898, 899}));
}

// The age sweep deletes what it trims at once, even fewer than a batch (100
// here): a channel that goes quiet and expires keeps nothing on disk.
TEST_F(PubSubTest, AgeSweepDeletesWhatItTrimsAtOnce) {
  Ok("pubsub.configure", {{"channel", "a"}, {"max_messages", 800}, {"max_age_ms", 5000}});
  for (int i = 0; i < 5; ++i) Publish("a");
  Pump();
  EXPECT_EQ(StoredMessages("a"), 5u);
  clock_.Advance(6000);
  RunTimers();
  Pump();
  EXPECT_TRUE(HistorySeqs("a").empty());
  EXPECT_EQ(StoredMessages("a"), 0u);
}

// A restart does not remember which trimmed keys are still stored; the
// first batch after it deletes every one of them.
TEST_F(PubSubTest, TrimmedKeysLeftBeforeARestartGoWithTheNextBatch) {
  Ok("pubsub.configure", {{"channel", "r"}, {"max_messages", 800}});
  for (int i = 0; i < 850; ++i) Publish("r");
  Pump();
  EXPECT_EQ(StoredMessages("r"), 850u);
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(HistorySeqs("r", {{"limit", 1}}), (Seqs{51}));
  for (int i = 0; i < 49; ++i) Publish("r");  // seqs 851..899: 99 trimmed
  Pump();
  EXPECT_EQ(StoredMessages("r"), 899u);
  Publish("r");  // 100 trimmed: a batch, from seq 1
  Pump();
  EXPECT_EQ(StoredMessages("r"), 800u);
  EXPECT_EQ(HistorySeqs("r", {{"limit", 1}}), (Seqs{101}));
}

TEST_F(PubSubTest, RetentionByAgeTrimsOldMessagesOnTheSweep) {
  Ok("pubsub.configure", {{"channel", "age"}, {"max_age_ms", 5000}});
  Publish("age");  // t0
  clock_.Advance(3000);
  Publish("age");        // t0 + 3000
  clock_.Advance(1999);  // t0 + 4999: seq 1 is not yet too old
  RunTimers();
  EXPECT_EQ(HistorySeqs("age"), (Seqs{1, 2}));

  clock_.Advance(1000);  // t0 + 5999: seq 1 is; the sweep runs at least once a second
  RunTimers();
  EXPECT_EQ(HistorySeqs("age"), (Seqs{2}));

  clock_.Advance(3000);  // t0 + 8999: seq 2 too
  RunTimers();
  EXPECT_TRUE(HistorySeqs("age").empty());
  EXPECT_EQ(Ok("pubsub.history", {{"channel", "age"}})["next_seq"], 3) << "seqs do not restart";
  EXPECT_EQ(Publish("age"), 3u);

  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(HistorySeqs("age"), (Seqs{3}));
}

TEST_F(PubSubTest, RefusingClientIsDroppedWithLastSeqAndResumesWithoutLoss) {
  auto c = NewClient();
  const uint64_t sub = Subscribe(c, {{"channel", "ch"}});
  Publish("ch");
  EXPECT_EQ(c->Seqs(), (Seqs{1}));

  c->set_refuse(true);
  json r2 = Ok("pubsub.publish", {{"channel", "ch"}, {"data", 2}});
  EXPECT_EQ(r2["delivered"], 0);
  auto dropped = c->Of("pubsub.dropped");
  ASSERT_EQ(dropped.size(), 1u);
  ExpectMembers(
      dropped[0],
      {{"subscription", sub}, {"channel", "ch"}, {"last_seq", 1}, {"reason", "slow_consumer"}});
  EXPECT_TRUE(c->notes().back().forced) << "the drop notice must get through a full buffer";

  // Unsubscribed: no further attempts, no second notice.
  Publish("ch");
  EXPECT_EQ(c->refused(), 1);
  EXPECT_EQ(c->Of("pubsub.dropped").size(), 1u);
  EXPECT_EQ(Subscriptions(), 0u);
  EXPECT_TRUE(
      FailedWith(Call("pubsub.unsubscribe", {{"subscription", sub}}, c), StatusCode::kNotFound));

  c->set_refuse(false);
  const uint64_t last_seq = dropped[0]["last_seq"];
  Subscribe(c, {{"channel", "ch"}, {"from_seq", last_seq + 1}});
  Publish("ch");
  EXPECT_EQ(c->Seqs(), (Seqs{1, 2, 3, 4}));
}

// A replay is paced by the connection: a refusal pauses it (no drop), the
// connection's OnClientWritable resumes it where it stopped, and live
// messages published meanwhile come after the backlog, each seq once.
TEST_F(PubSubTest, ReplayPausesWhenTheClientRefusesAndResumesWhenItIsWritable) {
  for (int i = 0; i < 5; ++i) Publish("ch");
  auto c = NewClient();
  c->set_budget(2);
  Subscribe(c, {{"channel", "ch"}, {"from_seq", 1}});
  EXPECT_EQ(c->Seqs(), (Seqs{1, 2}));
  EXPECT_TRUE(c->Of("pubsub.dropped").empty()) << "a replay is never dropped for its own backlog";
  EXPECT_EQ(Subscriptions(), 1u);

  json r = Ok("pubsub.publish", {{"channel", "ch"}, {"data", 6}});
  EXPECT_EQ(r["delivered"], 1) << "held for the replay counts as delivered";
  EXPECT_EQ(c->Seqs(), (Seqs{1, 2})) << "a live message waits behind the replay";

  c->set_budget(1);
  engine_->OnClientWritable(c->id());
  EXPECT_EQ(c->Seqs(), (Seqs{1, 2, 3}));
  engine_->OnClientWritable(c->id() + 1);  // another connection: nothing
  EXPECT_EQ(c->Seqs(), (Seqs{1, 2, 3}));
  c->set_budget(std::nullopt);
  engine_->OnClientWritable(c->id());
  EXPECT_EQ(c->Seqs(), (Seqs{1, 2, 3, 4, 5, 6}));
  Publish("ch");
  EXPECT_EQ(c->Seqs(), (Seqs{1, 2, 3, 4, 5, 6, 7})) << "caught up: live";
  engine_->OnClientWritable(c->id());
  EXPECT_EQ(c->Seqs(), (Seqs{1, 2, 3, 4, 5, 6, 7})) << "nothing sent twice";
  EXPECT_TRUE(c->Of("pubsub.dropped").empty());
}

// While replaying, live messages held back count against the connection's
// outbound limit: a client that stops reading is dropped once they pass it,
// told the last seq it was given, and resumes from there without loss.
TEST_F(PubSubTest, ReplayingClientIsDroppedOnceHeldLiveTrafficPassesItsLimit) {
  for (int i = 0; i < 5; ++i) Publish("ch", std::string(100, 'x'));
  auto c = NewClient();
  c->set_budget(2);
  c->set_outbound_limit(1000);  // room for about four held messages
  Subscribe(c, {{"channel", "ch"}, {"from_seq", 1}});
  EXPECT_EQ(c->Seqs(), (Seqs{1, 2}));
  int held = 0;
  while (c->Of("pubsub.dropped").empty() && held < 100) {
    Publish("ch", std::string(100, 'y'));
    ++held;
  }
  EXPECT_GE(held, 3);
  EXPECT_LE(held, 5);
  auto dropped = c->Of("pubsub.dropped");
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_EQ(dropped[0]["last_seq"], 2);
  EXPECT_EQ(dropped[0]["channel"], "ch");
  EXPECT_EQ(Subscriptions(), 0u);
  engine_->OnClientWritable(c->id());  // a late callback finds nothing
  EXPECT_EQ(c->Seqs(), (Seqs{1, 2}));

  c->set_budget(std::nullopt);
  Subscribe(c, {{"channel", "ch"}, {"from_seq", 3}});
  Seqs want;
  for (uint64_t s = 1; s <= 5u + held; ++s) want.push_back(s);
  EXPECT_EQ(c->Seqs(), want);
}

// A replay yields to other work: at most 1000 messages per turn, the rest on
// the next millisecond's timers, and live messages still after the backlog.
TEST_F(PubSubTest, LongReplayRunsInSlicesOnTheTimers) {
  Ok("pubsub.configure", {{"channel", "ch"}, {"max_messages", 5000}});
  for (int i = 0; i < 2500; ++i) Execute("pubsub.publish", {{"channel", "ch"}, {"data", i}});
  Pump();
  auto c = NewClient();
  Subscribe(c, {{"channel", "ch"}, {"from_seq", 1}});
  EXPECT_EQ(c->Seqs().size(), 1000u);
  Publish("ch");  // seq 2501, held
  RunTimers();
  EXPECT_EQ(c->Seqs().size(), 1000u) << "the next slice waits for the next millisecond";
  for (int turn = 0; turn < 3; ++turn) {
    clock_.Advance(1);
    RunTimers();
  }
  Seqs want;
  for (uint64_t s = 1; s <= 2501; ++s) want.push_back(s);
  EXPECT_EQ(c->Seqs(), want);
  Publish("ch");
  EXPECT_EQ(c->Seqs().back(), 2502u);
}

// A pattern replay goes channel by channel in name order; a live message on a
// matching channel (also a new one) waits for the replay and comes once.
TEST_F(PubSubTest, PatternReplayHoldsLiveMessagesOfEveryMatchingChannel) {
  Publish("ev.b");
  Publish("ev.a");
  Publish("ev.a");
  auto c = NewClient();
  c->set_budget(1);
  Subscribe(c, {{"pattern", "ev.*"}, {"from_seq", 1}});
  Publish("ev.c");  // new channel, live
  Publish("ev.a");
  Publish("other");
  c->set_budget(std::nullopt);
  engine_->OnClientWritable(c->id());
  std::vector<std::pair<std::string, uint64_t>> got;
  for (const json& m : c->Of("pubsub.message")) got.emplace_back(m["channel"], m["seq"]);
  EXPECT_EQ(got, (std::vector<std::pair<std::string, uint64_t>>{
                     {"ev.a", 1}, {"ev.a", 2}, {"ev.a", 3}, {"ev.b", 1}, {"ev.c", 1}}));
  Publish("ev.b");
  EXPECT_EQ(c->Seqs("ev.b"), (Seqs{1, 2}));
}

// Retention that trims messages a paused replay still owed drops the
// subscription with the last seq it was given, instead of a silent gap.
TEST_F(PubSubTest, ReplayOverTakenByRetentionIsDroppedNotSkipped) {
  for (int i = 0; i < 5; ++i) Publish("ch");
  auto c = NewClient();
  c->set_budget(2);
  Subscribe(c, {{"channel", "ch"}, {"from_seq", 1}});
  Ok("pubsub.configure", {{"channel", "ch"}, {"max_messages", 2}});  // keeps 4, 5
  c->set_budget(std::nullopt);
  engine_->OnClientWritable(c->id());
  EXPECT_EQ(c->Seqs(), (Seqs{1, 2}));
  auto dropped = c->Of("pubsub.dropped");
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_EQ(dropped[0]["last_seq"], 2);
  EXPECT_EQ(Subscriptions(), 0u);
}

TEST_F(PubSubTest, UnsubscribingOrClosingDuringAReplayEndsIt) {
  Ok("pubsub.configure", {{"channel", "ch"}, {"max_messages", 5000}});
  for (int i = 0; i < 1500; ++i) Execute("pubsub.publish", {{"channel", "ch"}, {"data", i}});
  Pump();
  auto a = NewClient(), b = NewClient();
  const uint64_t sub = Subscribe(a, {{"channel", "ch"}, {"from_seq", 1}});  // a slice is pending
  b->set_budget(3);
  Subscribe(b, {{"channel", "ch"}, {"from_seq", 1}});  // waits for writable
  Ok("pubsub.unsubscribe", {{"subscription", sub}}, a);
  b->set_closed(true);
  engine_->OnClientClosed(b->id());
  clock_.Advance(1);
  RunTimers();
  engine_->OnClientWritable(b->id());
  EXPECT_EQ(a->Seqs().size(), 1000u);
  EXPECT_EQ(b->Seqs().size(), 3u);
  EXPECT_EQ(Subscriptions(), 0u);
}

TEST_F(PubSubTest, UnsubscribeStopsDeliveryAndOnlyTheOwnerMayDoIt) {
  auto c = NewClient(), other = NewClient();
  const uint64_t sub = Subscribe(c, {{"channel", "ch"}});
  EXPECT_TRUE(FailedWith(Call("pubsub.unsubscribe", {{"subscription", sub}}, other),
                         StatusCode::kNotFound));
  Publish("ch");
  EXPECT_EQ(c->Seqs(), (Seqs{1}));

  EXPECT_EQ(Ok("pubsub.unsubscribe", {{"subscription", sub}}, c)["ok"], true);
  json r = Ok("pubsub.publish", {{"channel", "ch"}, {"data", 2}});
  EXPECT_EQ(r["delivered"], 0);
  EXPECT_EQ(c->Seqs(), (Seqs{1}));
  EXPECT_EQ(Subscriptions(), 0u);
  EXPECT_TRUE(
      FailedWith(Call("pubsub.unsubscribe", {{"subscription", sub}}, c), StatusCode::kNotFound));
}

TEST_F(PubSubTest, ClosedClientLosesItsSubscriptions) {
  auto gone = NewClient(), stays = NewClient();
  Subscribe(gone, {{"channel", "ch"}});
  Subscribe(gone, {{"pattern", "c*"}});
  Subscribe(stays, {{"channel", "ch"}});
  EXPECT_EQ(Subscriptions(), 3u);

  gone->set_closed(true);
  engine_->OnClientClosed(gone->id());
  EXPECT_EQ(Subscriptions(), 1u);
  json r = Ok("pubsub.publish", {{"channel", "ch"}, {"data", 1}});
  EXPECT_EQ(r["delivered"], 1);
  EXPECT_TRUE(gone->notes().empty());
  EXPECT_EQ(stays->Seqs(), (Seqs{1}));
}

TEST_F(PubSubTest, SubscribeStillPendingWhenItsClientClosesIsNotRegistered) {
  auto c = NewClient();
  Execute("pubsub.publish", {{"channel", "ch"}, {"data", 1}});
  auto sub = Execute("pubsub.subscribe", {{"channel", "ch"}}, c);
  c->set_closed(true);
  engine_->OnClientClosed(c->id());
  ASSERT_TRUE(CommitGroup());
  ASSERT_TRUE(sub->done());
  EXPECT_FALSE(sub->result->ok());
  EXPECT_EQ(Subscriptions(), 0u);
}

TEST_F(PubSubTest, ReopenKeepsChannelSeqsAndRetention) {
  for (int i = 0; i < 3; ++i) Publish("a");
  Publish("b");
  Ok("pubsub.configure", {{"channel", "a"}, {"max_messages", 2}});
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(HistorySeqs("a"), (Seqs{2, 3}));
  EXPECT_EQ(Publish("a"), 4u);
  EXPECT_EQ(Publish("b"), 2u);
  EXPECT_EQ(HistorySeqs("a"), (Seqs{3, 4})) << "max_messages survived the restart";
  EXPECT_EQ(HistorySeqs("b"), (Seqs{1, 2}));
  auto c = NewClient();
  Subscribe(c, {{"channel", "a"}, {"from_seq", 1}});
  EXPECT_EQ(c->Seqs(), (Seqs{3, 4}));
}

TEST_F(PubSubTest, ManyPublishesInOneGroupWriteEachChannelHeadOnceAndSurviveReopen) {
  Publish("a");
  std::vector<std::shared_ptr<ReplySlot>> slots;
  for (int i = 0; i < 50; ++i)
    slots.push_back(Execute("pubsub.publish", {{"channel", "a"}, {"data", i}}));
  for (int i = 0; i < 3; ++i)
    slots.push_back(Execute("pubsub.publish", {{"channel", "b"}, {"data", i}}));
  std::unique_ptr<Group> group = engine_->Seal();
  // 53 log entries, one head per channel, one revision record.
  EXPECT_EQ(group->batch().count(), 53u + 2u + 1u);
  Status s = group->Write();
  ASSERT_OK(s);
  engine_->Land(*group, s);
  for (const auto& slot : slots) ASSERT_TRUE(slot->done() && slot->result->ok());
  Pump();

  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(Publish("a"), 52u) << "the head written at the seal carried seq 51";
  EXPECT_EQ(Publish("b"), 4u);
  EXPECT_EQ(HistorySeqs("b"), (Seqs{1, 2, 3, 4}));
}

TEST_F(PubSubTest, BadParams) {
  Result<json> no_channel = Call("pubsub.publish", {{"data", 1}});
  ASSERT_TRUE(FailedWith(no_channel, StatusCode::kInvalidParams));
  EXPECT_EQ(no_channel.status().details()["field"], "channel");
  EXPECT_TRUE(FailedWith(Call("pubsub.publish", {{"channel", ""}, {"data", 1}}),
                         StatusCode::kInvalidParams));
  EXPECT_TRUE(FailedWith(Call("pubsub.publish", {{"channel", std::string(257, 'c')}, {"data", 1}}),
                         StatusCode::kTooLarge));
  EXPECT_EQ(Publish(std::string(256, 'c')), 1u);
  auto c = NewClient();
  EXPECT_TRUE(FailedWith(Call("pubsub.subscribe", {{"channel", "x"}, {"pattern", "x*"}}, c),
                         StatusCode::kInvalidParams));
  EXPECT_TRUE(FailedWith(Call("pubsub.subscribe", json::object(), c), StatusCode::kInvalidParams));
  EXPECT_EQ(Subscriptions(), 0u);
}

// ------------------------------------------------------------ GlobMatch

// `pattern` matches every text of `matches` and none of `misses`.
void ExpectGlob(std::string_view pattern, std::initializer_list<std::string_view> matches,
                std::initializer_list<std::string_view> misses) {
  for (std::string_view text : matches) {
    EXPECT_TRUE(GlobMatch(pattern, text)) << pattern << " ~ " << text;
  }
  for (std::string_view text : misses) {
    EXPECT_FALSE(GlobMatch(pattern, text)) << pattern << " ~ " << text;
  }
}

TEST(GlobMatchTest, StarMatchesAnyRunIncludingEmpty) {
  ExpectGlob("*", {"", "anything"}, {});
  ExpectGlob("a*", {"a", "abc"}, {"ba"});
  ExpectGlob("*c", {"abc"}, {"cab"});
  ExpectGlob("a*b*c", {"aXXbYYc", "abbbc"}, {"aXXbYY"});
  ExpectGlob("**", {"x"}, {});
}

TEST(GlobMatchTest, QuestionMarkMatchesExactlyOneByte) {
  ExpectGlob("h?llo", {"hello", "hallo"}, {"hllo", "heello"});
  ExpectGlob("?", {}, {""});
}

TEST(GlobMatchTest, BracketsMatchSetsRangesAndNegations) {
  ExpectGlob("h[ae]llo", {"hello", "hallo"}, {"hillo"});
  ExpectGlob("h[a-c]llo", {"hbllo"}, {"hdllo"});
  ExpectGlob("h[^e]llo", {"hallo"}, {"hello"});
  ExpectGlob("v[0-9][0-9]", {"v42"}, {"v4x"});
  ExpectGlob("*[xy]", {"aaay"}, {});
}

TEST(GlobMatchTest, BackslashEscapesAMetacharacter) {
  ExpectGlob("a\\*b", {"a*b"}, {"axb"});
  ExpectGlob("a\\?", {"a?"}, {"ab"});
}

TEST(GlobMatchTest, LiteralsMustMatchWhole) {
  ExpectGlob("events.q1", {"events.q1"}, {"events.q10", "events.q"});
  ExpectGlob("", {""}, {"a"});
}

}  // namespace
}  // namespace shim::engine::test
