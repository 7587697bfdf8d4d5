// SIGKILL a real `shim serve` while locks are held. After the restart:
// - the held locks are still held, by the same owner with the same token,
//   and they get their full TTL again (they do not expire early, even though
//   more than their TTL has passed since they were granted);
// - then they expire, and a waiter gets the lock;
// - every grant after the restart has a token greater than every token
//   granted before the kill (tokens are revisions, and the revision is
//   persisted with the writes it counts).
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "net/line_client.h"
#include "tests/support/server_process.h"
#include "tests/support/test_util.h"

namespace shim::testing {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

int64_t ElapsedMs(SteadyClock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - since).count();
}

TEST(LockTokenCrashTest, HeldLocksSurviveSigkillWithFullTtlAndTokensKeepIncreasing) {
  constexpr int64_t kTtlMs = 1500;
  ServerProcess server;  // durability sync: every acknowledgement fsync'd
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto c, server.Connect());

  uint64_t max_token = 0;
  // Churn: many grants, released, so the revision is well past the held tokens.
  for (int i = 0; i < 20; ++i) {
    ASSERT_OK_AND_ASSIGN(json r, c->Call("lock.acquire", {{"name", "churn"}, {"owner", "c"}, {"ttl_ms", 1000}}));
    const uint64_t t = r["token"].get<uint64_t>();
    ASSERT_GT(t, max_token);
    max_token = t;
    ASSERT_OK(c->Call("lock.release", {{"name", "churn"}, {"token", t}}));
  }
  std::map<std::string, uint64_t> held;  // lock -> token
  for (const char* name : {"alpha", "beta", "gamma"}) {
    ASSERT_OK_AND_ASSIGN(json r,
                         c->Call("lock.acquire", {{"name", name}, {"owner", std::string("owner-") + name}, {"ttl_ms", kTtlMs}}));
    held[name] = r["token"].get<uint64_t>();
    max_token = std::max(max_token, held[name]);
  }
  // A fenced write under a held lock, acknowledged before the kill.
  ASSERT_OK(c->Call("state.set", {{"key", "k"}, {"value", 1}, {"fence", {{"lock", "alpha"}, {"token", held["alpha"]}}}}));
  const auto granted_at = SteadyClock::now();

  // Spend most of the TTL, then kill.
  std::this_thread::sleep_for(std::chrono::milliseconds(kTtlMs - 500));
  c.reset();
  server.Kill();
  ASSERT_OK(server.Start());
  const auto restarted_at = SteadyClock::now();
  ASSERT_OK_AND_ASSIGN(c, server.Connect());

  for (const auto& [name, token] : held) {
    ASSERT_OK_AND_ASSIGN(json st, c->Call("lock.status", {{"name", name}}));
    EXPECT_EQ(st["held"], true) << name;
    EXPECT_EQ(st["owner"], "owner-" + name);
    EXPECT_EQ(st["token"], token) << name;
  }
  EXPECT_EQ(c->Call("lock.acquire", {{"name", "beta"}, {"owner", "intruder"}, {"ttl_ms", 100}}).status().code(),
            StatusCode::kLockHeld);
  // The recovered holder's token still fences; an invented one does not.
  EXPECT_OK(c->Call("state.set", {{"key", "k"}, {"value", 2}, {"fence", {{"lock", "alpha"}, {"token", held["alpha"]}}}}));
  EXPECT_EQ(c->Call("state.set", {{"key", "k"}, {"value", 3}, {"fence", {{"lock", "alpha"}, {"token", max_token + 1}}}})
                .status()
                .code(),
            StatusCode::kFenced);

  // The first grant after the restart (a fresh lock) outranks every old token.
  ASSERT_OK_AND_ASSIGN(json fresh, c->Call("lock.acquire", {{"name", "fresh"}, {"owner", "new"}, {"ttl_ms", 10'000}}));
  EXPECT_GT(fresh["token"].get<uint64_t>(), max_token);

  // Past the original TTL (counted from the grant), but within the full TTL
  // granted again at the restart: still held.
  const int64_t wait_ms = kTtlMs + 100 - ElapsedMs(granted_at);
  if (wait_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
  if (ElapsedMs(restarted_at) < kTtlMs - 200) {
    ASSERT_OK_AND_ASSIGN(json st, c->Call("lock.status", {{"name", "gamma"}}));
    EXPECT_EQ(st["held"], true) << "expired early: " << ElapsedMs(granted_at) << " ms after its grant, "
                                << ElapsedMs(restarted_at) << " ms after the restart";
    EXPECT_EQ(st["token"], held["gamma"]);
  } else {
    GTEST_LOG_(WARNING) << "restart took too long to check early expiry";
  }

  // A waiter gets the old lock when its restored TTL runs out, with a newer token.
  ASSERT_OK_AND_ASSIGN(json taken, c->Call("lock.acquire", {{"name", "alpha"}, {"owner", "next"}, {"ttl_ms", 1000},
                                                            {"wait_ms", 5000}}, 10'000));
  // (restarted_at is taken once the server answers, a little after it
  // recovered and re-armed the TTLs.)
  EXPECT_GE(ElapsedMs(restarted_at), kTtlMs - 150) << "handed over before its restored TTL passed";
  EXPECT_GT(taken["token"].get<uint64_t>(), fresh["token"].get<uint64_t>());
  for (const char* name : {"beta", "gamma"}) {
    ASSERT_OK_AND_ASSIGN(json st, c->Call("lock.status", {{"name", name}}));
    EXPECT_EQ(st["held"], false) << name << " should have expired by now";
  }
  // The old alpha token is now fenced; the value written under it stands.
  EXPECT_EQ(c->Call("state.set", {{"key", "k"}, {"value", 4}, {"fence", {{"lock", "alpha"}, {"token", held["alpha"]}}}})
                .status()
                .code(),
            StatusCode::kFenced);
  ASSERT_OK_AND_ASSIGN(json k, c->Call("state.get", {{"key", "k"}}));
  EXPECT_EQ(k["value"], 2);
}

TEST(LockTokenCrashTest, AcknowledgedHandOffSurvivesSigkillAndTokensKeepIncreasing) {
  ServerProcess server;  // durability sync: every acknowledgement fsync'd
  ASSERT_OK(server.Start());
  uint64_t max_token = 0;
  for (int round = 0; round < 3; ++round) {
    ASSERT_OK_AND_ASSIGN(auto holder, server.Connect());
    ASSERT_OK_AND_ASSIGN(auto waiter, server.Connect());
    const std::string owner = "h" + std::to_string(round);
    // The lock from the previous round may still be held by its restored
    // holder: take it over with a wait.
    ASSERT_OK_AND_ASSIGN(json r, holder->Call("lock.acquire", {{"name", "L"}, {"owner", owner}, {"ttl_ms", 300},
                                                               {"wait_ms", 5000}}, 10'000));
    const uint64_t t = r["token"].get<uint64_t>();
    EXPECT_GT(t, max_token) << "round " << round;
    max_token = std::max(max_token, t);
    // A waiter queues; the holder's release hands the lock over in the same
    // write; then the server is killed.
    ASSERT_OK_AND_ASSIGN(uint64_t id, waiter->SendRequest("lock.acquire", {{"name", "L"}, {"owner", "w" + std::to_string(round)},
                                                                          {"ttl_ms", 300}, {"wait_ms", 5000}}));
    // Queued before the release, so the release hands it over.
    bool queued = false;
    for (int i = 0; i < 500 && !queued; ++i) {
      auto st = holder->Call("lock.status", {{"name", "L"}});
      ASSERT_OK(st);
      queued = st.value()["waiters"] == 1;
      if (!queued) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_TRUE(queued);
    ASSERT_OK(holder->Call("lock.release", {{"name", "L"}, {"token", t}}));
    // The release was acknowledged, so the hand-off write is durable.
    ASSERT_OK_AND_ASSIGN(json envelope, waiter->ReadResponse(id, 5000));
    auto granted = net::LineClient::Unwrap(envelope);
    ASSERT_OK(granted);
    max_token = std::max(max_token, granted.value()["token"].get<uint64_t>());
    EXPECT_GT(granted.value()["token"].get<uint64_t>(), t);
    holder.reset();
    waiter.reset();
    server.Kill();
    ASSERT_OK(server.Start());
    ASSERT_OK_AND_ASSIGN(auto c, server.Connect());
    ASSERT_OK_AND_ASSIGN(json st, c->Call("lock.status", {{"name", "L"}}));
    EXPECT_EQ(st["owner"], "w" + std::to_string(round)) << "the acknowledged hand-off survived the kill";
    EXPECT_EQ(st["token"], granted.value()["token"]);
  }
}

}  // namespace
}  // namespace shim::testing
