// Limits under abuse, against a real `shim serve`: a thousand connections at
// once, ten thousand subscriptions, a flood of large messages. Each case
// checks that every request is answered correctly, that the server's memory
// stays bounded (RSS from /proc), and that a bystander client keeps getting
// prompt answers. (A client that never reads, and one that trickles bytes,
// are in bad_input_test.cc and access_test.cc.)
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/server_process.h"
#include "tests/support/test_util.h"

namespace shim {
namespace {

using nlohmann::json;
using testing::RssKiB;
using testing::ServerProcess;
using Clock = std::chrono::steady_clock;

using testing::kLoadedCallTimeoutMs;

// This process holds one descriptor per client connection too.
bool RaiseOwnFileLimit(rlim_t wanted) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return false;
  if (limit.rlim_cur >= wanted) return true;
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < wanted) return false;
  limit.rlim_cur = wanted;
  return ::setrlimit(RLIMIT_NOFILE, &limit) == 0;
}

// A bystander's state.set + state.get round trips, each of which must stay
// prompt while the abuse goes on.
void ExpectPromptService(net::LineClient& client, const std::string& tag, int rounds = 10) {
  for (int i = 0; i < rounds; ++i) {
    const auto start = Clock::now();
    const std::string key = "bystander/" + tag + "/" + std::to_string(i);
    ASSERT_OK_AND_ASSIGN(
        json w, client.Call("state.set", {{"key", key}, {"value", i}}, kLoadedCallTimeoutMs));
    EXPECT_EQ(w["version"], 1);
    ASSERT_OK_AND_ASSIGN(json r, client.Call("state.get", {{"key", key}}, kLoadedCallTimeoutMs));
    EXPECT_EQ(r["value"], i);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    EXPECT_LT(ms, testing::LatencyBoundMs(2000))
        << tag << ": bystander round trip " << i << " took " << ms << " ms";
  }
}

TEST(AbuseTest, ThousandConcurrentConnectionsAreServedAndTheNextIsRefusedClearly) {
  constexpr int kConnections = 1000;
  if (!RaiseOwnFileLimit(2 * kConnections + 256)) {
    SHIM_SKIP_OR_FAIL("the open-file hard limit is below " << 2 * kConnections + 256
                                                           << " (ulimit -Hn)");
  }
  // Room for exactly the crowd and the bystander.
  ServerProcess server({.extra_args = {"--max-connections", std::to_string(kConnections + 1)}});
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto bystander, server.Connect());
  ASSERT_OK(bystander->Call("sys.ping", json::object(), kLoadedCallTimeoutMs).status());
  const long rss_before = RssKiB(server.pid());

  std::vector<std::unique_ptr<net::LineClient>> crowd;
  std::vector<uint64_t> ids;
  for (int i = 0; i < kConnections; ++i) {
    ASSERT_OK_AND_ASSIGN(auto c, server.Connect());
    ASSERT_OK_AND_ASSIGN(
        uint64_t id,
        c->SendRequest("state.set", {{"key", "crowd/" + std::to_string(i)}, {"value", i}}));
    crowd.push_back(std::move(c));
    ids.push_back(id);
  }
  ExpectPromptService(*bystander, "crowd");
  for (int i = 0; i < kConnections; ++i) {
    ASSERT_OK_AND_ASSIGN(json envelope, crowd[i]->ReadResponse(ids[i], kLoadedCallTimeoutMs));
    ASSERT_OK_AND_ASSIGN(json r, net::LineClient::Unwrap(envelope));
    ASSERT_EQ(r["version"], 1) << "connection " << i;
  }
  const long rss_with_crowd = RssKiB(server.pid());
  std::printf("[ info ] server RSS %ld KiB idle, %ld KiB with %d connections (%.1f KiB each)\n",
              rss_before, rss_with_crowd, kConnections,
              double(rss_with_crowd - rss_before) / kConnections);
  EXPECT_LT(rss_with_crowd - rss_before, testing::MemoryBoundKiB(128 * 1024))
      << "KiB for " << kConnections << " connections";

  // One more is told why, then closed; everyone already in is unaffected.
  ASSERT_OK_AND_ASSIGN(auto extra, server.Connect());
  ASSERT_OK_AND_ASSIGN(json refusal, extra->ReadMessage(kLoadedCallTimeoutMs));
  EXPECT_EQ(refusal["error"]["data"]["reason"], "OVERLOADED") << refusal.dump();
  EXPECT_FALSE(extra->ReadLine(kLoadedCallTimeoutMs).ok())
      << "the refused connection must be closed";
  ASSERT_OK_AND_ASSIGN(
      json last, crowd.back()->Call("state.get", {{"key", "crowd/999"}}, kLoadedCallTimeoutMs));
  EXPECT_EQ(last["value"], kConnections - 1);

  // Once the crowd leaves, its slots are free again.
  crowd.clear();
  bool admitted = false;
  for (int attempt = 0; attempt < 50 && !admitted; ++attempt) {
    auto again = server.Connect();
    admitted = again.ok() && (*again)->Call("sys.ping", json::object(), 2000).ok();
    if (!admitted) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(admitted);
}

TEST(AbuseTest, TenThousandSubscriptionsEachGetEveryMessage) {
  constexpr int kClients = 10;
  constexpr int kPerClient = 1000;  // 10,000 subscriptions in all
  constexpr int kMessages = 5;
  ServerProcess server;
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto bystander, server.Connect());
  const long rss_before = RssKiB(server.pid());

  std::vector<std::unique_ptr<net::LineClient>> subscribers;
  for (int c = 0; c < kClients; ++c) {
    ASSERT_OK_AND_ASSIGN(auto client, server.Connect());
    std::vector<uint64_t> ids;
    for (int s = 0; s < kPerClient; ++s) {
      // Half by name, half by pattern: both paths fan out.
      json params = s % 2 ? json{{"pattern", "fan/*"}} : json{{"channel", "fan/out"}};
      ASSERT_OK_AND_ASSIGN(uint64_t id, client->SendRequest("pubsub.subscribe", params));
      ids.push_back(id);
    }
    for (uint64_t id : ids) {
      ASSERT_OK_AND_ASSIGN(json envelope, client->ReadResponse(id, kLoadedCallTimeoutMs));
      ASSERT_OK(net::LineClient::Unwrap(envelope).status());
    }
    subscribers.push_back(std::move(client));
  }
  ASSERT_OK_AND_ASSIGN(json stats,
                       bystander->Call("sys.stats", json::object(), kLoadedCallTimeoutMs));
  EXPECT_GE(stats["engine"]["subscriptions"].get<int64_t>(), kClients * kPerClient);

  for (int m = 1; m <= kMessages; ++m) {
    ASSERT_OK_AND_ASSIGN(
        json pub, bystander->Call("pubsub.publish", {{"channel", "fan/out"}, {"data", {{"m", m}}}},
                                  kLoadedCallTimeoutMs));
    EXPECT_EQ(pub["delivered"], kClients * kPerClient) << "message " << m;
  }
  ExpectPromptService(*bystander, "fan");
  // Every subscription of every client gets every message, in order.
  for (int c = 0; c < kClients; ++c) {
    std::vector<int> next_m(kPerClient, 1);
    std::map<uint64_t, int> index_of;
    int received = 0;
    while (received < kPerClient * kMessages) {
      ASSERT_OK_AND_ASSIGN(json n, subscribers[c]->NextNotification(kLoadedCallTimeoutMs));
      ASSERT_EQ(n["method"], "pubsub.message") << n.dump();
      const uint64_t sub = n["params"]["subscription"];
      auto [it, fresh] = index_of.emplace(sub, static_cast<int>(index_of.size()));
      ASSERT_LT(it->second, kPerClient);
      EXPECT_EQ(n["params"]["data"]["m"], next_m[it->second]++)
          << "client " << c << " subscription " << sub;
      ++received;
    }
  }
  const long rss_after = RssKiB(server.pid());
  std::printf("[ info ] server RSS %ld KiB before, %ld KiB with %d subscriptions\n", rss_before,
              rss_after, kClients * kPerClient);
  EXPECT_LT(rss_after - rss_before, testing::MemoryBoundKiB(128 * 1024));
}

TEST(AbuseTest, FloodOfLargeMessagesKeepsMemoryBoundedAndOthersServed) {
  constexpr int kFlooders = 4;
  constexpr int kPerFlooder = testing::SanitizedLoad(24, 12);  // multiples of 4: see i % 4
  const std::string big(900 << 10, 'x');                       // just under the 1 MiB line limit
  const std::string too_big((2 << 20) + 7, 'y');               // over it: TOO_LARGE, discarded
  ServerProcess server({.durability = "async"});
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto bystander, server.Connect());
  const long rss_before = RssKiB(server.pid());

  std::vector<std::thread> threads;
  std::vector<int> accepted(kFlooders, 0), refused(kFlooders, 0);
  for (int f = 0; f < kFlooders; ++f) {
    threads.emplace_back([&, f] {
      auto client = server.Connect();
      if (!client.ok()) return;
      for (int i = 0; i < kPerFlooder; ++i) {
        if (i % 4 == 3) {
          // An over-long request line, sent whole.
          json oversized = {{"jsonrpc", "2.0"},
                            {"id", 1'000'000 + i},
                            {"method", "state.set"},
                            {"params", {{"key", "flood/no"}, {"value", too_big}}}};
          if (!(*client)->SendRaw(oversized.dump() + "\n").ok()) return;
          auto r = (*client)->ReadMessage(kLoadedCallTimeoutMs);
          if (r.ok() && (*r)["error"]["data"]["reason"] == "TOO_LARGE") ++refused[f];
          continue;
        }
        auto r =
            (*client)->Call("state.set", {{"key", "flood/" + std::to_string(f)}, {"value", big}},
                            kLoadedCallTimeoutMs);
        if (r.ok()) ++accepted[f];
      }
    });
  }
  long rss_peak = rss_before;
  for (int i = 0; i < 20; ++i) {
    ExpectPromptService(*bystander, "flood" + std::to_string(i), 1);
    rss_peak = std::max(rss_peak, RssKiB(server.pid()));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (auto& t : threads) t.join();
  rss_peak = std::max(rss_peak, RssKiB(server.pid()));
  std::printf(
      "[ info ] server RSS %ld KiB before, peak %ld KiB during a flood of %d x %d ~1 MiB lines\n",
      rss_before, rss_peak, kFlooders, kPerFlooder);
  for (int f = 0; f < kFlooders; ++f) {
    EXPECT_EQ(accepted[f], kPerFlooder - kPerFlooder / 4) << "flooder " << f;
    EXPECT_EQ(refused[f], kPerFlooder / 4) << "flooder " << f;
    ASSERT_OK_AND_ASSIGN(json r,
                         bystander->Call("state.get", {{"key", "flood/" + std::to_string(f)}},
                                         kLoadedCallTimeoutMs));
    EXPECT_EQ(r["value"].get_ref<const std::string&>().size(), big.size());
    EXPECT_EQ(r["version"], kPerFlooder - kPerFlooder / 4);
  }
  ASSERT_OK_AND_ASSIGN(json none,
                       bystander->Call("state.get", {{"key", "flood/no"}}, kLoadedCallTimeoutMs));
  EXPECT_TRUE(none.is_null()) << "a discarded over-long line must not be applied: " << none.dump();
  // ~72 MiB went in; the server holds the 4 live values plus buffers, not
  // the whole flood.
  EXPECT_LT(rss_peak - rss_before, testing::MemoryBoundKiB(256 * 1024)) << "KiB";
}

}  // namespace
}  // namespace shim
