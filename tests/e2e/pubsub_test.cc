// End-to-end: durable pub/sub over a real `shim serve` — replay plus live
// delivery with no gap or duplicate, pattern subscriptions, the
// slow-consumer policy (pubsub.dropped, then resume from last_seq + 1), a
// replay paced by the outbound limit, and history paged by the reply budget.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/server_process.h"
#include "tests/support/test_util.h"

namespace shim {
namespace {

using nlohmann::json;
using testing::ServerProcess;
using testing::ServerProcessOptions;

using testing::kCallTimeoutMs;
using testing::RssKiB;

json Data(int n) { return json{{"n", n}, {"text", "message " + std::to_string(n)}}; }

// Reads notifications until `count` pubsub.message arrived for `sub`.
// Fails on anything else (another method, another subscription).
void ReadMessages(net::LineClient& client, uint64_t sub, size_t count, std::vector<json>* out) {
  while (out->size() < count) {
    ASSERT_OK_AND_ASSIGN(json n, client.NextNotification(kCallTimeoutMs));
    ASSERT_EQ(n.value("method", ""), "pubsub.message") << n.dump();
    ASSERT_EQ(n["params"]["subscription"], sub) << n.dump();
    out->push_back(n["params"]);
  }
}

// Publishes data(1..count) on `channel`, pipelined in windows, and checks
// that they got seqs first_seq.. in order.
void PublishMany(net::LineClient& publisher, const std::string& channel, int count,
                 const std::function<json(int)>& data, uint64_t first_seq = 1) {
  constexpr int kWindow = 200;
  for (int start = 1; start <= count; start += kWindow) {
    std::vector<uint64_t> ids;
    for (int n = start; n < start + kWindow && n <= count; ++n) {
      ASSERT_OK_AND_ASSIGN(
          uint64_t id,
          publisher.SendRequest("pubsub.publish", {{"channel", channel}, {"data", data(n)}}));
      ids.push_back(id);
    }
    for (size_t i = 0; i < ids.size(); ++i) {
      ASSERT_OK_AND_ASSIGN(json response,
                           publisher.ReadResponse(ids[i], testing::kLoadedCallTimeoutMs));
      ASSERT_OK_AND_ASSIGN(json r, net::LineClient::Unwrap(response));
      ASSERT_EQ(r["seq"], first_seq + start - 1 + i);
    }
  }
}

// Subscriptions the server holds (sys.stats), asked on `client`.
uint64_t ServerSubscriptions(net::LineClient& client) {
  auto r = client.Call("sys.stats", json::object(), kCallTimeoutMs);
  return r.ok() ? r.value()["engine"]["subscriptions"].get<uint64_t>() : ~uint64_t{0};
}

void ExpectNoNotification(net::LineClient& client, int ms) {
  auto n = client.NextNotification(ms);
  EXPECT_FALSE(n.ok()) << "unexpected notification: " << n.value().dump();
}

// The outbound limit of the servers the replay-pacing tests start, and the
// backlog they replay: ~2 MiB of ~1 KiB messages, 30x the limit and more
// than it plus the socket buffers.
constexpr size_t kMaxOutbound = 65536;
constexpr int kBacklog = 2000;

ServerProcessOptions OutboundLimited() {
  return ServerProcessOptions{.extra_args = {"--max-outbound-bytes", std::to_string(kMaxOutbound)}};
}

// Publishes data(1..kBacklog) on `channel`, then subscribes `subscriber`
// from seq 1 and sets *sub_id to the subscription.
void PublishBacklogThenSubscribe(net::LineClient& publisher, net::LineClient& subscriber,
                                 const std::string& channel, const std::function<json(int)>& data,
                                 uint64_t* sub_id) {
  ASSERT_NO_FATAL_FAILURE(PublishMany(publisher, channel, kBacklog, data));
  ASSERT_OK_AND_ASSIGN(
      json sub,
      subscriber.Call("pubsub.subscribe", {{"channel", channel}, {"from_seq", 1}}, kCallTimeoutMs));
  *sub_id = sub["subscription"].get<uint64_t>();
}

// Publishes data(first..last) on `channel` one at a time, each delivered to
// exactly one subscription.
void PublishEachToOne(net::LineClient& publisher, const std::string& channel, int first, int last,
                      const std::function<json(int)>& data) {
  for (int n = first; n <= last; ++n) {
    ASSERT_OK_AND_ASSIGN(json r,
                         publisher.Call("pubsub.publish", {{"channel", channel}, {"data", data(n)}},
                                        kCallTimeoutMs));
    EXPECT_EQ(r["delivered"], 1);
  }
}

TEST(PubSubTest, ReplayingSubscriberGetsEverythingOnceLiveSubscriberOnlyLaterOnes) {
  ServerProcess server;
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto publisher, server.Connect());
  ASSERT_OK_AND_ASSIGN(auto live, server.Connect());
  ASSERT_OK_AND_ASSIGN(auto replay, server.Connect());
  const std::string channel = "news";

  constexpr int kBefore = 5;
  for (int n = 1; n <= kBefore; ++n) {
    ASSERT_OK_AND_ASSIGN(
        json r, publisher->Call("pubsub.publish", {{"channel", channel}, {"data", Data(n)}}));
    ASSERT_EQ(r["seq"], n);
    EXPECT_EQ(r["delivered"], 0);
  }
  ASSERT_OK_AND_ASSIGN(json live_sub,
                       live->Call("pubsub.subscribe", {{"channel", channel}}, kCallTimeoutMs));
  const uint64_t live_id = live_sub["subscription"].get<uint64_t>();

  // The replaying subscriber subscribes while publishes are in flight, so its
  // replay races live delivery: it must still see each seq exactly once.
  constexpr int kInFlight = 100, kAfter = 100;
  constexpr int kTotal = kBefore + kInFlight + kAfter;
  std::vector<uint64_t> ids;
  for (int n = kBefore + 1; n <= kBefore + kInFlight; ++n) {
    ASSERT_OK_AND_ASSIGN(
        uint64_t id,
        publisher->SendRequest("pubsub.publish", {{"channel", channel}, {"data", Data(n)}}));
    ids.push_back(id);
  }
  ASSERT_OK_AND_ASSIGN(
      json replay_sub,
      replay->Call("pubsub.subscribe", {{"channel", channel}, {"from_seq", 1}}, kCallTimeoutMs));
  const uint64_t replay_id = replay_sub["subscription"].get<uint64_t>();
  EXPECT_NE(replay_id, live_id);
  for (int n = kBefore + kInFlight + 1; n <= kTotal; ++n) {
    ASSERT_OK_AND_ASSIGN(
        uint64_t id,
        publisher->SendRequest("pubsub.publish", {{"channel", channel}, {"data", Data(n)}}));
    ids.push_back(id);
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_OK_AND_ASSIGN(json response, publisher->ReadResponse(ids[i], kCallTimeoutMs));
    ASSERT_OK_AND_ASSIGN(json r, net::LineClient::Unwrap(response));
    EXPECT_EQ(r["seq"], kBefore + 1 + static_cast<int>(i));
  }

  std::vector<json> got;
  ASSERT_NO_FATAL_FAILURE(ReadMessages(*replay, replay_id, kTotal, &got));
  for (int i = 0; i < kTotal; ++i) {
    EXPECT_EQ(got[i]["seq"], i + 1) << "gap or duplicate at position " << i;
    EXPECT_EQ(got[i]["channel"], channel);
    EXPECT_EQ(got[i]["data"], Data(i + 1));
    EXPECT_TRUE(got[i]["published_at_ms"].is_number_integer());
  }
  ExpectNoNotification(*replay, 300);

  std::vector<json> live_got;
  ASSERT_NO_FATAL_FAILURE(ReadMessages(*live, live_id, kInFlight + kAfter, &live_got));
  for (int i = 0; i < kInFlight + kAfter; ++i) {
    EXPECT_EQ(live_got[i]["seq"], kBefore + 1 + i) << "position " << i;
    EXPECT_EQ(live_got[i]["data"], Data(kBefore + 1 + i));
  }
  ExpectNoNotification(*live, 300);

  // After unsubscribing, nothing more arrives.
  ASSERT_OK_AND_ASSIGN(
      json unsub, live->Call("pubsub.unsubscribe", {{"subscription", live_id}}, kCallTimeoutMs));
  EXPECT_EQ(unsub["ok"], true);
  ASSERT_OK_AND_ASSIGN(json last, publisher->Call("pubsub.publish", {{"channel", channel},
                                                                     {"data", Data(kTotal + 1)}}));
  EXPECT_EQ(last["seq"], kTotal + 1);
  EXPECT_EQ(last["delivered"], 1);  // the replaying subscriber only
  ExpectNoNotification(*live, 200);
}

TEST(PubSubTest, PatternSubscriptionGetsMatchingChannelsOnly) {
  ServerProcess server;
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto publisher, server.Connect());
  ASSERT_OK_AND_ASSIGN(auto sub_client, server.Connect());
  ASSERT_OK_AND_ASSIGN(
      json sub, sub_client->Call("pubsub.subscribe", {{"pattern", "jobs.*"}}, kCallTimeoutMs));
  const uint64_t sub_id = sub["subscription"].get<uint64_t>();

  struct Pub {
    std::string channel;
    bool matches;
  };
  const std::vector<Pub> pubs = {{"jobs.a", true},   {"other", false}, {"jobs.b", true},
                                 {"jobsx", false},   {"jobs", false},  {"jobs.a.b", true},
                                 {"xjobs.a", false}, {"jobs.a", true}};
  std::vector<json> expected;
  for (size_t i = 0; i < pubs.size(); ++i) {
    ASSERT_OK_AND_ASSIGN(json r, publisher->Call("pubsub.publish", {{"channel", pubs[i].channel},
                                                                    {"data", Data(int(i))}}));
    EXPECT_EQ(r["delivered"], pubs[i].matches ? 1 : 0) << pubs[i].channel;
    if (pubs[i].matches)
      expected.push_back({{"channel", pubs[i].channel}, {"seq", r["seq"]}, {"data", Data(int(i))}});
  }
  std::vector<json> got;
  ASSERT_NO_FATAL_FAILURE(ReadMessages(*sub_client, sub_id, expected.size(), &got));
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(got[i]["channel"], expected[i]["channel"]) << i;
    EXPECT_EQ(got[i]["seq"], expected[i]["seq"]) << i;
    EXPECT_EQ(got[i]["data"], expected[i]["data"]) << i;
  }
  ExpectNoNotification(*sub_client, 300);

  // A pattern subscription with from_seq replays the matching channels'
  // stored messages (channel by channel, in name order), nothing else.
  ASSERT_OK_AND_ASSIGN(auto replayer, server.Connect());
  ASSERT_OK_AND_ASSIGN(
      json rsub,
      replayer->Call("pubsub.subscribe", {{"pattern", "jobs.*"}, {"from_seq", 1}}, kCallTimeoutMs));
  std::vector<json> replayed;
  ASSERT_NO_FATAL_FAILURE(
      ReadMessages(*replayer, rsub["subscription"].get<uint64_t>(), 4, &replayed));
  std::vector<std::pair<std::string, int>> want = {
      {"jobs.a", 1}, {"jobs.a", 2}, {"jobs.a.b", 1}, {"jobs.b", 1}};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(replayed[i]["channel"], want[i].first) << i;
    EXPECT_EQ(replayed[i]["seq"], want[i].second) << i;
  }
  ExpectNoNotification(*replayer, 300);
}

TEST(PubSubTest, SlowConsumerIsDroppedAndResumesFromLastSeqWithoutLoss) {
  ServerProcess server(OutboundLimited());
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto publisher, server.Connect());
  ASSERT_OK_AND_ASSIGN(auto slow, server.Connect());
  const std::string channel = "firehose";
  ASSERT_OK_AND_ASSIGN(json sub,
                       slow->Call("pubsub.subscribe", {{"channel", channel}}, kCallTimeoutMs));
  const uint64_t first_sub = sub["subscription"].get<uint64_t>();

  // ~2 MiB of ~1 KiB messages: far more than the socket buffers plus the
  // 64 KiB outbound limit, while `slow` reads nothing.
  constexpr int kMessages = kBacklog;
  const std::string filler(1000, 'x');
  auto data = [&](int n) { return json{{"n", n}, {"pad", filler}}; };
  ASSERT_NO_FATAL_FAILURE(PublishMany(*publisher, channel, kMessages, data));

  // The slow client now reads: a contiguous prefix 1..k, then the drop notice.
  uint64_t next = 1;
  uint64_t sub_id = first_sub;
  json dropped;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (dropped.is_null()) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline);
    ASSERT_OK_AND_ASSIGN(json n, slow->NextNotification(kCallTimeoutMs));
    const json& p = n["params"];
    if (n["method"] == "pubsub.dropped") {
      dropped = p;
      break;
    }
    ASSERT_EQ(n["method"], "pubsub.message") << n.dump();
    ASSERT_EQ(p["seq"], next) << "gap or duplicate before the drop";
    ASSERT_EQ(p["data"], data(static_cast<int>(next)));
    ++next;
  }
  EXPECT_EQ(dropped["subscription"], first_sub);
  EXPECT_EQ(dropped["channel"], channel);
  EXPECT_EQ(dropped["reason"], "slow_consumer");
  ASSERT_EQ(dropped["last_seq"], next - 1) << "last_seq must be the last message delivered";
  ASSERT_LT(next - 1, static_cast<uint64_t>(kMessages)) << "the slow consumer was never dropped";

  // Resume from last_seq + 1 until everything published has arrived,
  // exactly where the drop stopped (nothing lost, nothing repeated). The
  // replay is paced by the drain, so one resume catches up with a backlog
  // far larger than the outbound limit.
  int resumes = 0;
  while (next <= static_cast<uint64_t>(kMessages)) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline)
        << "stuck at seq " << next << " after " << resumes << " resumes";
    ASSERT_LT(resumes, 500);
    ++resumes;
    ASSERT_OK_AND_ASSIGN(
        json resub,
        slow->Call("pubsub.subscribe", {{"channel", channel}, {"from_seq", next}}, kCallTimeoutMs));
    sub_id = resub["subscription"].get<uint64_t>();
    const uint64_t round_start = next;
    for (;;) {
      ASSERT_OK_AND_ASSIGN(json n, slow->NextNotification(kCallTimeoutMs));
      const json& p = n["params"];
      ASSERT_EQ(p["subscription"], sub_id) << n.dump();
      if (n["method"] == "pubsub.dropped") {
        ASSERT_EQ(p["last_seq"], next - 1);
        ASSERT_GT(next, round_start) << "a resume made no progress";
        break;
      }
      ASSERT_EQ(n["method"], "pubsub.message") << n.dump();
      ASSERT_EQ(p["seq"], next) << "gap or duplicate after resuming";
      ASSERT_EQ(p["data"], data(static_cast<int>(next)));
      if (++next > static_cast<uint64_t>(kMessages)) break;
    }
  }
  EXPECT_EQ(next, static_cast<uint64_t>(kMessages) + 1);
  ExpectNoNotification(*slow, 300);
  EXPECT_EQ(resumes, 1) << "a replay must not be dropped for its own backlog";
  std::cout << "[ info ] slow consumer dropped after seq " << dropped["last_seq"]
            << "; caught up with " << resumes << " resume(s)" << std::endl;

  // The live subscription still works after catching up.
  ASSERT_OK_AND_ASSIGN(json r, publisher->Call("pubsub.publish", {{"channel", channel},
                                                                  {"data", data(kMessages + 1)}}));
  EXPECT_EQ(r["delivered"], 1);
  std::vector<json> tail;
  ASSERT_NO_FATAL_FAILURE(ReadMessages(*slow, sub_id, 1, &tail));
  EXPECT_EQ(tail[0]["seq"], kMessages + 1);
}

// A backlog several times --max-outbound-bytes is replayed whole, paced by
// the drain: every message once and in order, then the live ones published
// while the replay waited, and no pubsub.dropped. (Before, the replay itself
// overflowed the queue and ended in pubsub.dropped after about 64 KiB.)
TEST(PubSubTest, ReplayOfABacklogLargerThanTheOutboundLimitArrivesWholeThenLive) {
  ServerProcess server(OutboundLimited());
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto publisher, server.Connect());
  ASSERT_OK_AND_ASSIGN(auto subscriber, server.Connect());
  const std::string channel = "backlog";
  const std::string filler(1000, 'x');
  auto data = [&](int n) {
    return json{{"n", n}, {"pad", n <= kBacklog ? filler : std::string("live")}};
  };
  uint64_t sub_id = 0;
  ASSERT_NO_FATAL_FAILURE(
      PublishBacklogThenSubscribe(*publisher, *subscriber, channel, data, &sub_id));
  // Published while the replay waits for the subscriber to read: small
  // enough together (~8 KiB) to stay under the limit, so they wait too.
  constexpr int kLive = 40;
  ASSERT_NO_FATAL_FAILURE(
      PublishEachToOne(*publisher, channel, kBacklog + 1, kBacklog + kLive, data));
  std::vector<json> got;
  ASSERT_NO_FATAL_FAILURE(ReadMessages(*subscriber, sub_id, kBacklog + kLive, &got));
  for (int i = 0; i < kBacklog + kLive; ++i) {
    ASSERT_EQ(got[i]["seq"], i + 1) << "gap or duplicate at position " << i;
    ASSERT_EQ(got[i]["data"], data(i + 1));
  }
  ExpectNoNotification(*subscriber, 300);
  // Caught up: live from here.
  ASSERT_OK_AND_ASSIGN(
      json r, publisher->Call("pubsub.publish", {{"channel", channel}, {"data", data(9999)}},
                              kCallTimeoutMs));
  std::vector<json> tail;
  ASSERT_NO_FATAL_FAILURE(ReadMessages(*subscriber, sub_id, 1, &tail));
  EXPECT_EQ(tail[0]["seq"], kBacklog + kLive + 1);
  EXPECT_EQ(ServerSubscriptions(*publisher), 1u);
}

// Only the replay is paced: a replaying client that never reads keeps its
// subscription while nothing new is published, and is dropped by the usual
// slow-consumer rule once live traffic passes --max-outbound-bytes, told the
// last seq it was given.
TEST(PubSubTest, NeverReadingReplayerIsDroppedOnceLiveTrafficPassesTheOutboundLimit) {
  ServerProcess server(OutboundLimited());
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto publisher, server.Connect());
  ASSERT_OK_AND_ASSIGN(auto stuck, server.Connect());
  const std::string channel = "stuck";
  const std::string filler(1000, 'x');
  auto data = [&](int n) { return json{{"n", n}, {"pad", filler}}; };
  uint64_t sub_id = 0;
  ASSERT_NO_FATAL_FAILURE(PublishBacklogThenSubscribe(*publisher, *stuck, channel, data, &sub_id));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(ServerSubscriptions(*publisher), 1u) << "dropped for its own backlog";

  // ~24 KiB of live traffic: under the limit, still subscribed.
  constexpr int kUnder = 20;
  ASSERT_NO_FATAL_FAILURE(
      PublishEachToOne(*publisher, channel, kBacklog + 1, kBacklog + kUnder, data));
  EXPECT_EQ(ServerSubscriptions(*publisher), 1u) << "dropped under the limit";
  // Past it: dropped.
  int live = kUnder;
  while (ServerSubscriptions(*publisher) == 1u && live < 200) {
    ++live;
    ASSERT_OK(publisher->Call(
        "pubsub.publish", {{"channel", channel}, {"data", data(kBacklog + live)}}, kCallTimeoutMs));
  }
  EXPECT_EQ(ServerSubscriptions(*publisher), 0u);
  const int live_bytes = live * static_cast<int>(data(0).dump().size());
  EXPECT_GT(live_bytes, static_cast<int>(kMaxOutbound) * 3 / 4) << "dropped well before the limit";
  EXPECT_LT(live_bytes, static_cast<int>(kMaxOutbound) * 2) << "not dropped at the limit";

  // What it was sent is a contiguous prefix, then the notice.
  uint64_t next = 1;
  for (;;) {
    ASSERT_OK_AND_ASSIGN(json n, stuck->NextNotification(kCallTimeoutMs));
    const json& p = n["params"];
    ASSERT_EQ(p["subscription"], sub_id) << n.dump();
    if (n["method"] == "pubsub.dropped") {
      EXPECT_EQ(p["last_seq"], next - 1);
      EXPECT_EQ(p["reason"], "slow_consumer");
      break;
    }
    ASSERT_EQ(p["seq"], next) << "gap or duplicate";
    ++next;
  }
  EXPECT_GT(next - 1, 0u);
  EXPECT_LT(next - 1, static_cast<uint64_t>(kBacklog)) << "the replay was not paced";
  std::printf("[ info ] replay paused after seq %lu; dropped after %d live messages (~%d bytes)\n",
              static_cast<unsigned long>(next - 1), live, live_bytes);
}

// pubsub.history over 1 MiB-ish messages: four clients that ask for
// everything and never read hold the server to a few pages of memory (a
// reply used to be the whole `limit`: 1000 x 1 MiB in one line), each page
// is at most the 4 MiB reply budget, and paging with next_seq / more reads
// every message once.
TEST(PubSubTest, HistoryOfBigMessagesPagesWithinTheReplyBudgetAndBoundsMemory) {
  constexpr size_t kBudget = 4 << 20;  // EngineLimits::max_reply_bytes
  ServerProcess server({.durability = "async"});
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto publisher, server.Connect());
  const std::string channel = "big";
  const std::string big(900 << 10, 'x');  // just under the 1 MiB line limit
  // ~43 MiB (~14 MiB under a sanitizer): many reply budgets either way.
  constexpr int kMessages = testing::SanitizedLoad(48, 16);
  ASSERT_NO_FATAL_FAILURE(PublishMany(*publisher, channel, kMessages, [&](int n) {
    return json{{"n", n}, {"pad", big}};
  }));

  // Four clients ask for everything and never read.
  const long rss_before = RssKiB(server.pid());
  std::vector<std::unique_ptr<net::LineClient>> hoarders;
  for (int i = 0; i < 4; ++i) {
    ASSERT_OK_AND_ASSIGN(auto c, server.Connect());
    ASSERT_OK(c->SendRequest("pubsub.history", {{"channel", channel}, {"limit", 1000}}));
    hoarders.push_back(std::move(c));
  }
  long rss_peak = rss_before;
  for (int i = 0; i < 30; ++i) {
    rss_peak = std::max(rss_peak, RssKiB(server.pid()));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_OK(publisher->Call("sys.ping", json::object(), kCallTimeoutMs));  // still answering
  rss_peak = std::max(rss_peak, RssKiB(server.pid()));
  std::printf(
      "[ info ] server RSS %ld KiB before, peak %ld KiB with 4 non-reading history readers\n",
      rss_before, rss_peak);
  // One page each in the outbound queue, plus the page being built: a few
  // budgets, against 4 x 43 MiB when a reply held the whole log.
  EXPECT_LT(rss_peak - rss_before, testing::MemoryBoundKiB(80 * 1024));

  ASSERT_OK_AND_ASSIGN(auto reader, server.Connect());
  uint64_t from = 1, next_expected = 1;
  int pages = 0;
  for (bool more = true; more; ++pages) {
    ASSERT_LT(pages, kMessages);
    ASSERT_OK(reader->SendRequest("pubsub.history",
                                  {{"channel", channel}, {"from_seq", from}, {"limit", 1000}}));
    ASSERT_OK_AND_ASSIGN(std::string line, reader->ReadLine(testing::kLoadedCallTimeoutMs));
    EXPECT_LE(line.size(), kBudget) << "page " << pages;
    json r = json::parse(line)["result"];
    ASSERT_FALSE(r["messages"].empty());
    for (const json& m : r["messages"]) {
      ASSERT_EQ(m["seq"], next_expected);
      ASSERT_EQ(m["data"]["n"], next_expected);
      ++next_expected;
    }
    from = r["next_seq"];
    more = r.value("more", false);
    EXPECT_EQ(more, from <= kMessages);
  }
  EXPECT_EQ(next_expected, static_cast<uint64_t>(kMessages) + 1);
  EXPECT_GE(pages, (kMessages - 1) / 4) << "pages of at most 4 messages";
}

}  // namespace
}  // namespace shim
