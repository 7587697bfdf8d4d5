// A Jepsen "lock + set" style check against a real `shim serve`: 8 client
// threads, each on its own connection, loop
//
//   lock.acquire (short TTL, waiting) -> state.get counter
//     -> [some turns stall past the TTL] -> state.set counter = v + 1
//        fenced with {lock, token} -> lock.release
//
// A plain TTL lock loses updates here: the stalled holder writes v + 1 over
// a newer holder's write. With fencing, the stalled write is FENCED, so the
// counter ends equal to the number of successful writes, and the successful
// writes, in revision order, carried the token current at the time and wrote
// 1, 2, 3, ... with no gap and no repeat.
//
// Nothing here depends on how fast the machine is. The run lasts until
// each of the 4 stalling threads has stalled once and kMinWrites writes
// succeeded (bounded by kGiveUpAfter, a hang guard). A stall of twice the
// TTL, started after the grant was received, always outlasts the lock: the
// server checks a fence against its clock, so the stalled write is FENCED
// whatever the load. The TTL itself follows the load measured at the start
// (tests/support/load_baseline.h), so that a holder that does not stall
// usually writes in time and the run makes progress.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "net/line_client.h"
#include "tests/support/load_baseline.h"
#include "tests/support/server_process.h"
#include "tests/support/test_util.h"

namespace shim::testing {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

constexpr int kThreads = 8;
constexpr int kStallingThreads = 4;  // threads 0..3 stall on their second grant
constexpr size_t kMinWrites = 16;
constexpr auto kGiveUpAfter = std::chrono::seconds(120);
const char kLock[] = "counter-lock";
const char kKey[] = "counter";

struct Write {
  int thread;
  uint64_t token;     // the fencing token it carried
  uint64_t revision;  // the revision of the write (from state.set)
  int64_t value;      // the value written
};

struct History {
  // The run's timing: the lock's TTL and the stall, twice as long.
  int64_t ttl_ms = 0;
  int64_t stall_ms = 0;
  std::mutex mu;
  std::vector<uint64_t> grants;  // every token any thread was granted
  std::vector<Write> writes;     // every fenced write that succeeded
  int fenced = 0;
  int stalled = 0;
  int stalled_fenced = 0;
  int timeouts = 0;
  std::vector<std::string> errors;  // anything unexpected

  // Every stalling thread stalled once and enough writes succeeded.
  bool Enough() {
    std::lock_guard lock(mu);
    return stalled == kStallingThreads && writes.size() >= kMinWrites;
  }
};

void Worker(const std::string& socket, int id, SteadyClock::time_point give_up, History* h) {
  auto connected = net::LineClient::ConnectUnix(socket);
  if (!connected.ok()) {
    std::lock_guard lock(h->mu);
    h->errors.push_back("connect: " + connected.status().ToString());
    return;
  }
  auto& c = *connected.value();
  auto fail = [&](const std::string& what, const Status& s) {
    std::lock_guard lock(h->mu);
    h->errors.push_back("thread " + std::to_string(id) + " " + what + ": " + s.ToString());
  };
  const std::string owner = "t" + std::to_string(id);
  // Waiting for 7 other holders, each holding at most a stall.
  const int64_t wait_ms = kThreads * h->stall_ms;
  for (int grants = 0; !h->Enough() && SteadyClock::now() < give_up;) {
    auto acq =
        c.Call("lock.acquire",
               {{"name", kLock}, {"owner", owner}, {"ttl_ms", h->ttl_ms}, {"wait_ms", wait_ms}},
               static_cast<int>(wait_ms) + 10'000);
    if (!acq.ok()) {
      if (acq.status().code() == StatusCode::kTimeout) {
        std::lock_guard lock(h->mu);
        ++h->timeouts;
        continue;
      }
      return fail("acquire", acq.status());
    }
    const uint64_t token = acq.value()["token"].get<uint64_t>();
    ++grants;
    {
      std::lock_guard lock(h->mu);
      h->grants.push_back(token);
    }
    auto got = c.Call("state.get", {{"key", kKey}}, 10'000);
    if (!got.ok()) return fail("get", got.status());
    const int64_t v = got.value().is_null() ? 0 : got.value()["value"].get<int64_t>();

    // Threads 0..3 stall once each (on their second grant), like a GC pause.
    const bool stall = id < kStallingThreads && grants == 2;
    if (stall) std::this_thread::sleep_for(std::chrono::milliseconds(h->stall_ms));

    auto set = c.Call(
        "state.set",
        {{"key", kKey}, {"value", v + 1}, {"fence", {{"lock", kLock}, {"token", token}}}}, 10'000);
    {
      std::lock_guard lock(h->mu);
      h->stalled += stall;
      if (set.ok()) {
        h->writes.push_back({id, token, set.value()["revision"].get<uint64_t>(), v + 1});
      } else if (set.status().code() == StatusCode::kFenced) {
        ++h->fenced;
        h->stalled_fenced += stall;
      } else {
        h->errors.push_back("thread " + std::to_string(id) + " set: " + set.status().ToString());
        return;
      }
    }
    auto rel = c.Call("lock.release", {{"name", kLock}, {"token", token}}, 10'000);
    // A holder that lost the lock cannot release it: NOT_OWNER is expected then.
    if (!rel.ok() && rel.status().code() != StatusCode::kNotOwner)
      return fail("release", rel.status());
  }
}

TEST(LostUpdateTest, FencedCounterLosesNoUpdateWhenHoldersStallPastTheirTtl) {
  ServerProcess server;
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto admin, server.Connect());
  ASSERT_OK(admin->Call("state.set", {{"key", kKey}, {"value", 0}}));

  History h;
  // A turn (get + fenced set) is two durable round trips; the TTL absorbs 10 slow steps.
  h.ttl_ms = MeasureLoad(*admin).Window(150, 10);
  h.stall_ms = 2 * h.ttl_ms;
  const auto give_up = SteadyClock::now() + kGiveUpAfter;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back(Worker, server.socket_path(), i, give_up, &h);
  for (auto& t : threads) t.join();
  ASSERT_TRUE(h.Enough()) << "after " << kGiveUpAfter.count() << " s: " << h.stalled << " of "
                          << kStallingThreads << " threads stalled, " << h.writes.size()
                          << " writes";

  for (const auto& e : h.errors) ADD_FAILURE() << e;
  ASSERT_OK_AND_ASSIGN(json final_get, admin->Call("state.get", {{"key", kKey}}));
  const int64_t counter = final_get["value"].get<int64_t>();
  std::cout << "[ lost-update ] grants=" << h.grants.size()
            << " fenced writes ok=" << h.writes.size() << " FENCED=" << h.fenced << " (stalled "
            << h.stalled << ", of which FENCED " << h.stalled_fenced
            << ") acquire timeouts=" << h.timeouts << " final counter=" << counter << " (TTL "
            << h.ttl_ms << " ms, stall " << h.stall_ms << " ms)\n";

  // No lost update: the counter counts exactly the writes that were acknowledged.
  EXPECT_EQ(counter, static_cast<int64_t>(h.writes.size()));

  // In revision order the acknowledged writes wrote 1, 2, 3, ...: each read
  // the previous one's value, so none overwrote another.
  std::sort(h.writes.begin(), h.writes.end(),
            [](const Write& a, const Write& b) { return a.revision < b.revision; });
  for (size_t i = 0; i < h.writes.size(); ++i) {
    EXPECT_EQ(h.writes[i].value, static_cast<int64_t>(i + 1))
        << "write #" << i << " by thread " << h.writes[i].thread;
  }

  // Each acknowledged write carried the then-current token: granted before
  // the write, and no other grant of the lock came between its grant and its
  // write. (Tokens are the revisions of the grants, so they order with the
  // writes' revisions.)
  std::sort(h.grants.begin(), h.grants.end());
  EXPECT_TRUE(std::adjacent_find(h.grants.begin(), h.grants.end()) == h.grants.end())
      << "a token granted twice";
  uint64_t previous_token = 0;
  for (const Write& w : h.writes) {
    EXPECT_TRUE(std::binary_search(h.grants.begin(), h.grants.end(), w.token))
        << "token never granted: " << w.token;
    EXPECT_LT(w.token, w.revision);
    auto next_grant = std::upper_bound(h.grants.begin(), h.grants.end(), w.token);
    if (next_grant != h.grants.end()) {
      EXPECT_GT(*next_grant, w.revision)
          << "write at revision " << w.revision << " carried token " << w.token
          << " after the lock was granted again with token " << *next_grant;
    }
    EXPECT_GT(w.token, previous_token)
        << "two acknowledged writes under one grant, or out of order";
    previous_token = w.token;
  }

  // The stalled holders lost their locks, and their writes were refused.
  EXPECT_GE(h.fenced, 1);
  EXPECT_EQ(h.stalled, kStallingThreads);
  EXPECT_EQ(h.stalled_fenced, h.stalled) << "a holder that stalled past its TTL wrote anyway";
}

}  // namespace
}  // namespace shim::testing
