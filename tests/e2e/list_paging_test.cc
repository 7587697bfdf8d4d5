// Replies bounded in bytes, against a real `shim serve`: a list read over
// large values comes in pages of --max-reply-bytes (4 MiB by default)
// however large its `limit`, so clients that ask for many such pages and
// never read them pin a bounded amount of server memory, and everyone else
// keeps being served. (pubsub.history is paged the same way: pubsub tests.)
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/rpc_expect.h"
#include "tests/support/server_process.h"
#include "tests/support/test_util.h"

namespace shim {
namespace {

using nlohmann::json;
using testing::JsonLine;
using testing::kLoadedCallTimeoutMs;
using testing::RssKiB;
using testing::ServerProcess;
using Clock = std::chrono::steady_clock;

// 60 MiB of values (24 under a sanitizer): many reply budgets either way.
constexpr int kKeys = testing::SanitizedLoad(60, 24);
constexpr size_t kValueBytes = 1'000'000;  // each value just under the 1 MiB limit
constexpr size_t kDefaultReplyBudget = 4 << 20;

std::string KeyOf(int i) { return "big/" + std::to_string(100 + i); }

void FillBigValues(net::LineClient& client) {
  const std::string value(kValueBytes, 'v');
  for (int i = 0; i < kKeys; ++i) {
    ASSERT_OK(client.Call("state.set", {{"key", KeyOf(i)}, {"value", value}}, kLoadedCallTimeoutMs)
                  .status());
  }
}

// Pages through state.list {prefix: "big/", limit: 1000}; checks each page's
// size against `budget` (plus one item) and returns the keys in order.
std::vector<std::string> ReadAllPages(net::LineClient& client, size_t budget, int* pages) {
  std::vector<std::string> keys;
  json params = {{"prefix", "big/"}, {"limit", 1000}};
  for (*pages = 0; *pages < 1000; ++*pages) {
    auto line = client.Call("state.list", params, kLoadedCallTimeoutMs);
    EXPECT_TRUE(line.ok()) << line.status().ToString();
    if (!line.ok()) break;
    const json& r = line.value();
    EXPECT_FALSE(r["items"].empty());
    EXPECT_LE(r.dump().size(), budget + kValueBytes + 4096)
        << "page " << *pages << " is over the budget";
    for (const json& item : r["items"]) {
      keys.push_back(item["key"].get<std::string>());
      EXPECT_EQ(item["value"].get_ref<const std::string&>().size(), kValueBytes);
    }
    if (r["next"].is_null()) {
      ++*pages;
      break;
    }
    params["after"] = r["next"];
  }
  return keys;
}

TEST(ListPagingTest, StateListOverBigValuesComesInPagesOfTheBudgetAndReachesEveryKeyOnce) {
  ServerProcess server;
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto client, server.Connect());
  ASSERT_NO_FATAL_FAILURE(FillBigValues(*client));
  int pages = 0;
  std::vector<std::string> keys = ReadAllPages(*client, kDefaultReplyBudget, &pages);
  ASSERT_EQ(keys.size(), size_t{kKeys});
  for (int i = 0; i < kKeys; ++i) EXPECT_EQ(keys[i], KeyOf(i));
  // 60 MB (24 MB) in pages of 4 MiB (plus at most one value): at least 12 (4) pages.
  EXPECT_GE(pages, kKeys / 5);
  std::printf("[ info ] %d keys of %zu bytes in %d pages\n", kKeys, kValueBytes, pages);
}

TEST(ListPagingTest, MaxReplyBytesOptionSetsThePageSize) {
  ServerProcess server({.extra_args = {"--max-reply-bytes", "1500000"}});
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto client, server.Connect());
  const std::string value(kValueBytes, 'v');
  for (int i = 0; i < 6; ++i) {
    ASSERT_OK(client->Call("state.set", {{"key", KeyOf(i)}, {"value", value}}, kLoadedCallTimeoutMs)
                  .status());
  }
  ASSERT_OK_AND_ASSIGN(json page, client->Call("state.list", {{"prefix", "big/"}, {"limit", 1000}},
                                               kLoadedCallTimeoutMs));
  // Under 1.5 MB after one value, reached with the second: two per page.
  EXPECT_EQ(page["items"].size(), 2u);
  EXPECT_EQ(page["next"], KeyOf(1));
}

TEST(ListPagingTest, NeverReadingClientsAskingForBigListsKeepServerMemoryBoundedAndOthersServed) {
  ServerProcess server;
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto bystander, server.Connect());
  ASSERT_NO_FATAL_FAILURE(FillBigValues(*bystander));
  ASSERT_OK(bystander->Call("sys.ping", json::object(), kLoadedCallTimeoutMs).status());
  const long rss_before = RssKiB(server.pid());
  ASSERT_GT(rss_before, 0);

  // Four clients each ask for 50 lists of 1000 big values (before: a reply
  // of all kKeys MB each) and never read. Under sanitizers 12 each: reading
  // back 50 pages of 4 MiB took 40 of the test's 52 s there, and the bound
  // below holds from the first few requests on.
  constexpr int kHogs = 4;
  constexpr int kRequestsEach = testing::SanitizedLoad(50, 12);
  std::vector<std::unique_ptr<net::LineClient>> hogs;
  std::string lines;
  for (int i = 1; i <= kRequestsEach; ++i) {
    lines += JsonLine({{"jsonrpc", "2.0"},
                       {"id", i},
                       {"method", "state.list"},
                       {"params", {{"prefix", "big/"}, {"limit", 1000}}}});
  }
  for (int h = 0; h < kHogs; ++h) {
    ASSERT_OK_AND_ASSIGN(auto hog, server.Connect());
    ASSERT_OK(hog->SendRaw(lines));
    hogs.push_back(std::move(hog));
  }

  // Meanwhile the bystander is served promptly, and the server stays small.
  long rss_peak = rss_before;
  for (int i = 0; i < 20; ++i) {
    const auto start = Clock::now();
    ASSERT_OK_AND_ASSIGN(json pong,
                         bystander->Call("sys.ping", json::object(), kLoadedCallTimeoutMs));
    EXPECT_EQ(pong["pong"], true);
    ASSERT_OK_AND_ASSIGN(
        json small,
        bystander->Call("state.list", {{"prefix", "big/"}, {"limit", 1}}, kLoadedCallTimeoutMs));
    EXPECT_EQ(small["items"].size(), 1u);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    EXPECT_LT(ms, testing::LatencyBoundMs(2000))
        << "bystander round trip " << i << " took " << ms << " ms";
    rss_peak = std::max(rss_peak, RssKiB(server.pid()));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::printf(
      "[ info ] server RSS %ld KiB before, peak %ld KiB with %d clients not reading their lists\n",
      rss_before, rss_peak, kHogs);
  // Each hog: its 8 MiB outbound limit plus one page (4 MiB + a value) in
  // flight; before, each held one 60 MB reply and its document.
  EXPECT_LT(rss_peak - rss_before, testing::MemoryBoundKiB(96 * 1024))
      << "server RSS grew by " << (rss_peak - rss_before) << " KiB";

  // A hog that starts reading gets every answer, each a page.
  for (int i = 1; i <= kRequestsEach; ++i) {
    ASSERT_OK_AND_ASSIGN(std::string line, hogs[0]->ReadLine(kLoadedCallTimeoutMs));
    json r = json::parse(line, nullptr, false);
    ASSERT_EQ(r["id"], i);
    EXPECT_LE(line.size(), kDefaultReplyBudget + kValueBytes + 4096);
    EXPECT_EQ(r["result"]["next"].is_null(), false);
  }
}

}  // namespace
}  // namespace shim
