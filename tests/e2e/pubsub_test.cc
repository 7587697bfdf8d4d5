// End-to-end: durable pub/sub over a real `shim serve` — replay plus live
// delivery with no gap or duplicate, pattern subscriptions, and the
// slow-consumer policy (pubsub.dropped, then resume from last_seq + 1).
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/server_process.h"
#include "tests/support/test_util.h"

namespace shim {
namespace {

using nlohmann::json;
using testing::ServerProcess;
using testing::ServerProcessOptions;

using testing::kCallTimeoutMs;

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

void ExpectNoNotification(net::LineClient& client, int ms) {
  auto n = client.NextNotification(ms);
  EXPECT_FALSE(n.ok()) << "unexpected notification: " << n.value().dump();
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
    ASSERT_OK_AND_ASSIGN(json r, publisher->Call("pubsub.publish", {{"channel", channel}, {"data", Data(n)}}));
    ASSERT_EQ(r["seq"], n);
    EXPECT_EQ(r["delivered"], 0);
  }
  ASSERT_OK_AND_ASSIGN(json live_sub, live->Call("pubsub.subscribe", {{"channel", channel}}, kCallTimeoutMs));
  const uint64_t live_id = live_sub["subscription"].get<uint64_t>();

  // The replaying subscriber subscribes while publishes are in flight, so its
  // replay races live delivery: it must still see each seq exactly once.
  constexpr int kInFlight = 100, kAfter = 100;
  constexpr int kTotal = kBefore + kInFlight + kAfter;
  std::vector<uint64_t> ids;
  for (int n = kBefore + 1; n <= kBefore + kInFlight; ++n) {
    ASSERT_OK_AND_ASSIGN(uint64_t id, publisher->SendRequest("pubsub.publish", {{"channel", channel}, {"data", Data(n)}}));
    ids.push_back(id);
  }
  ASSERT_OK_AND_ASSIGN(json replay_sub,
                       replay->Call("pubsub.subscribe", {{"channel", channel}, {"from_seq", 1}}, kCallTimeoutMs));
  const uint64_t replay_id = replay_sub["subscription"].get<uint64_t>();
  EXPECT_NE(replay_id, live_id);
  for (int n = kBefore + kInFlight + 1; n <= kTotal; ++n) {
    ASSERT_OK_AND_ASSIGN(uint64_t id, publisher->SendRequest("pubsub.publish", {{"channel", channel}, {"data", Data(n)}}));
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
  ASSERT_OK_AND_ASSIGN(json unsub, live->Call("pubsub.unsubscribe", {{"subscription", live_id}}, kCallTimeoutMs));
  EXPECT_EQ(unsub["ok"], true);
  ASSERT_OK_AND_ASSIGN(json last, publisher->Call("pubsub.publish", {{"channel", channel}, {"data", Data(kTotal + 1)}}));
  EXPECT_EQ(last["seq"], kTotal + 1);
  EXPECT_EQ(last["delivered"], 1);  // the replaying subscriber only
  ExpectNoNotification(*live, 200);
}

TEST(PubSubTest, PatternSubscriptionGetsMatchingChannelsOnly) {
  ServerProcess server;
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto publisher, server.Connect());
  ASSERT_OK_AND_ASSIGN(auto sub_client, server.Connect());
  ASSERT_OK_AND_ASSIGN(json sub, sub_client->Call("pubsub.subscribe", {{"pattern", "jobs.*"}}, kCallTimeoutMs));
  const uint64_t sub_id = sub["subscription"].get<uint64_t>();

  struct Pub {
    std::string channel;
    bool matches;
  };
  const std::vector<Pub> pubs = {{"jobs.a", true},  {"other", false},   {"jobs.b", true},  {"jobsx", false},
                                 {"jobs", false},   {"jobs.a.b", true}, {"xjobs.a", false}, {"jobs.a", true}};
  std::vector<json> expected;
  for (size_t i = 0; i < pubs.size(); ++i) {
    ASSERT_OK_AND_ASSIGN(json r, publisher->Call("pubsub.publish", {{"channel", pubs[i].channel}, {"data", Data(int(i))}}));
    EXPECT_EQ(r["delivered"], pubs[i].matches ? 1 : 0) << pubs[i].channel;
    if (pubs[i].matches) expected.push_back({{"channel", pubs[i].channel}, {"seq", r["seq"]}, {"data", Data(int(i))}});
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
  ASSERT_OK_AND_ASSIGN(json rsub, replayer->Call("pubsub.subscribe", {{"pattern", "jobs.*"}, {"from_seq", 1}}, kCallTimeoutMs));
  std::vector<json> replayed;
  ASSERT_NO_FATAL_FAILURE(ReadMessages(*replayer, rsub["subscription"].get<uint64_t>(), 4, &replayed));
  std::vector<std::pair<std::string, int>> want = {{"jobs.a", 1}, {"jobs.a", 2}, {"jobs.a.b", 1}, {"jobs.b", 1}};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(replayed[i]["channel"], want[i].first) << i;
    EXPECT_EQ(replayed[i]["seq"], want[i].second) << i;
  }
  ExpectNoNotification(*replayer, 300);
}

TEST(PubSubTest, SlowConsumerIsDroppedAndResumesFromLastSeqWithoutLoss) {
  constexpr size_t kMaxOutbound = 65536;
  ServerProcess server(ServerProcessOptions{.extra_args = {"--max-outbound-bytes", std::to_string(kMaxOutbound)}});
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto publisher, server.Connect());
  ASSERT_OK_AND_ASSIGN(auto slow, server.Connect());
  const std::string channel = "firehose";
  ASSERT_OK_AND_ASSIGN(json sub, slow->Call("pubsub.subscribe", {{"channel", channel}}, kCallTimeoutMs));
  const uint64_t first_sub = sub["subscription"].get<uint64_t>();

  // ~2 MiB of ~1 KiB messages: far more than the socket buffers plus the
  // 64 KiB outbound limit, while `slow` reads nothing.
  constexpr int kMessages = 2000;
  const std::string filler(1000, 'x');
  auto data = [&](int n) { return json{{"n", n}, {"pad", filler}}; };
  constexpr int kWindow = 200;
  for (int start = 1; start <= kMessages; start += kWindow) {
    std::vector<uint64_t> ids;
    for (int n = start; n < start + kWindow && n <= kMessages; ++n) {
      ASSERT_OK_AND_ASSIGN(uint64_t id, publisher->SendRequest("pubsub.publish", {{"channel", channel}, {"data", data(n)}}));
      ids.push_back(id);
    }
    for (size_t i = 0; i < ids.size(); ++i) {
      ASSERT_OK_AND_ASSIGN(json response, publisher->ReadResponse(ids[i], kCallTimeoutMs));
      ASSERT_OK_AND_ASSIGN(json r, net::LineClient::Unwrap(response));
      ASSERT_EQ(r["seq"], start + static_cast<int>(i));
    }
  }

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

  // Resume from last_seq + 1 until everything published has arrived. A
  // replay is itself bounded by the outbound limit, so a backlog larger than
  // it can take several resumes; each must continue exactly where the last
  // stopped (nothing lost, nothing repeated).
  int resumes = 0;
  while (next <= static_cast<uint64_t>(kMessages)) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "stuck at seq " << next << " after " << resumes << " resumes";
    ASSERT_LT(resumes, 500);
    ++resumes;
    ASSERT_OK_AND_ASSIGN(json resub, slow->Call("pubsub.subscribe", {{"channel", channel}, {"from_seq", next}}, kCallTimeoutMs));
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
  std::cout << "[ info ] slow consumer dropped after seq " << dropped["last_seq"] << "; caught up with " << resumes
            << " resume(s)" << std::endl;

  // The live subscription still works after catching up.
  ASSERT_OK_AND_ASSIGN(json r, publisher->Call("pubsub.publish", {{"channel", channel}, {"data", data(kMessages + 1)}}));
  EXPECT_EQ(r["delivered"], 1);
  std::vector<json> tail;
  ASSERT_NO_FATAL_FAILURE(ReadMessages(*slow, sub_id, 1, &tail));
  EXPECT_EQ(tail[0]["seq"], kMessages + 1);
}

}  // namespace
}  // namespace shim
