// SIGKILL a real `shim serve` while locks are held. After the restart:
// - the held locks are still held, by the same owner with the same token,
//   and they get their full TTL again (they do not expire early, even though
//   more than their TTL has passed since they were granted);
// - then they expire, and a waiter gets the lock;
// (the windows are checked against the expiry times the server reports and
// the moments the test saw, so a slow restart cannot fail them);
// - every grant after the restart has a token greater than every token
//   granted before the kill (tokens are revisions, and the revision is
//   persisted with the writes it counts).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "net/line_client.h"
#include "tests/support/load_baseline.h"
#include "tests/support/server_process.h"
#include "tests/support/test_util.h"

namespace shim::testing {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

// The wall clock in ms, as the server reports expires_at_ms (its wall
// clock now plus the monotonic time left): both ends of a window are
// events the test saw, so the checks hold however slow the restart is.
int64_t WallNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Polls `name` until it is free (bounded by `timeout_ms`).
bool WaitUntilFree(net::LineClient& c, const std::string& name, int64_t timeout_ms) {
  const auto deadline = SteadyClock::now() + std::chrono::milliseconds(timeout_ms);
  while (SteadyClock::now() < deadline) {
    auto st = c.Call("lock.status", {{"name", name}});
    if (st.ok() && st.value()["held"] == false) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

TEST(LockTokenCrashTest, HeldLocksSurviveSigkillWithFullTtlAndTokensKeepIncreasing) {
  constexpr int64_t kTtlMs = 1500;
  ServerProcess server;  // durability sync: every acknowledgement fsync'd
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto c, server.Connect());

  uint64_t max_token = 0;
  // Churn: many grants, released, so the revision is well past the held tokens.
  for (int i = 0; i < 20; ++i) {
    ASSERT_OK_AND_ASSIGN(
        json r, c->Call("lock.acquire", {{"name", "churn"}, {"owner", "c"}, {"ttl_ms", 1000}}));
    const uint64_t t = r["token"].get<uint64_t>();
    ASSERT_GT(t, max_token);
    max_token = t;
    ASSERT_OK(c->Call("lock.release", {{"name", "churn"}, {"token", t}}));
  }
  std::map<std::string, uint64_t> held;         // lock -> token
  std::map<std::string, int64_t> first_expiry;  // lock -> expires_at_ms of the grant
  for (const char* name : {"alpha", "beta", "gamma"}) {
    ASSERT_OK_AND_ASSIGN(json r, c->Call("lock.acquire", {{"name", name},
                                                          {"owner", std::string("owner-") + name},
                                                          {"ttl_ms", kTtlMs}}));
    held[name] = r["token"].get<uint64_t>();
    first_expiry[name] = r["expires_at_ms"].get<int64_t>();
    max_token = std::max(max_token, held[name]);
  }
  // A fenced write under a held lock, acknowledged before the kill.
  ASSERT_OK(c->Call(
      "state.set",
      {{"key", "k"}, {"value", 1}, {"fence", {{"lock", "alpha"}, {"token", held["alpha"]}}}}));

  // Spend most of the TTL, then kill.
  std::this_thread::sleep_for(std::chrono::milliseconds(kTtlMs - 500));
  c.reset();
  const int64_t killed_at = WallNowMs();
  server.Kill();
  ASSERT_OK(server.Start());
  const int64_t restarted_at = WallNowMs();  // recovered, TTLs re-armed, before this
  ASSERT_OK_AND_ASSIGN(c, server.Connect());

  // Held again, with the full TTL counted from the recovery: it expires a
  // full TTL after some moment between the kill and the restart (1 ms for
  // the server's millisecond clock).
  std::map<std::string, int64_t> restored_expiry;
  for (const auto& [name, token] : held) {
    ASSERT_OK_AND_ASSIGN(json st, c->Call("lock.status", {{"name", name}}));
    EXPECT_EQ(st["held"], true) << name;
    EXPECT_EQ(st["owner"], "owner-" + name);
    EXPECT_EQ(st["token"], token) << name;
    ASSERT_TRUE(st["expires_at_ms"].is_number_integer()) << st;
    restored_expiry[name] = st["expires_at_ms"].get<int64_t>();
    EXPECT_GE(restored_expiry[name], killed_at + kTtlMs - 1)
        << name << ": not a full TTL from the recovery";
    EXPECT_LE(restored_expiry[name], restarted_at + kTtlMs + 1) << name;
  }
  EXPECT_EQ(c->Call("lock.acquire", {{"name", "beta"}, {"owner", "intruder"}, {"ttl_ms", 100}})
                .status()
                .code(),
            StatusCode::kLockHeld);
  // The recovered holder's token still fences; an invented one does not.
  EXPECT_OK(c->Call(
      "state.set",
      {{"key", "k"}, {"value", 2}, {"fence", {{"lock", "alpha"}, {"token", held["alpha"]}}}}));
  EXPECT_EQ(c->Call("state.set", {{"key", "k"},
                                  {"value", 3},
                                  {"fence", {{"lock", "alpha"}, {"token", max_token + 1}}}})
                .status()
                .code(),
            StatusCode::kFenced);

  // The first grant after the restart (a fresh lock) outranks every old token.
  ASSERT_OK_AND_ASSIGN(
      json fresh,
      c->Call("lock.acquire", {{"name", "fresh"}, {"owner", "new"}, {"ttl_ms", 10'000}}));
  EXPECT_GT(fresh["token"].get<uint64_t>(), max_token);

  // Past the first expiry, before the restored one: still held. If it is
  // free, the server must have answered after the restored expiry (a
  // restart that took most of the TTL); an answer before it means the lock
  // expired early.
  const int64_t past_first = first_expiry["gamma"] + 10 - WallNowMs();
  if (past_first > 0) std::this_thread::sleep_for(std::chrono::milliseconds(past_first));
  ASSERT_OK_AND_ASSIGN(json st, c->Call("lock.status", {{"name", "gamma"}}));
  const int64_t answered_at = WallNowMs();
  if (st["held"] == true) {
    EXPECT_EQ(st["token"], held["gamma"]);
  } else {
    EXPECT_GE(answered_at, restored_expiry["gamma"] - 1)
        << "expired early: " << answered_at - first_expiry["gamma"]
        << " ms after its first expiry, " << restored_expiry["gamma"] - answered_at
        << " ms before its restored one";
  }

  // A waiter gets the old lock when its restored TTL runs out, with a newer token.
  const int64_t wait_ms = std::max<int64_t>(0, restored_expiry["alpha"] - WallNowMs()) + 10'000;
  ASSERT_OK_AND_ASSIGN(
      json taken,
      c->Call("lock.acquire",
              {{"name", "alpha"}, {"owner", "next"}, {"ttl_ms", 1000}, {"wait_ms", wait_ms}},
              static_cast<int>(wait_ms) + 10'000));
  EXPECT_GE(WallNowMs(), restored_expiry["alpha"] - 1)
      << "handed over before its restored TTL passed";
  EXPECT_GT(taken["token"].get<uint64_t>(), fresh["token"].get<uint64_t>());
  for (const char* name : {"beta", "gamma"}) {
    EXPECT_TRUE(WaitUntilFree(*c, name, 10'000)) << name << " never expired";
  }
  // The old alpha token is now fenced; the value written under it stands.
  EXPECT_EQ(c->Call("state.set", {{"key", "k"},
                                  {"value", 4},
                                  {"fence", {{"lock", "alpha"}, {"token", held["alpha"]}}}})
                .status()
                .code(),
            StatusCode::kFenced);
  ASSERT_OK_AND_ASSIGN(json k, c->Call("state.get", {{"key", "k"}}));
  EXPECT_EQ(k["value"], 2);
}

// Each holder must keep its lock while a waiter connects and queues (a few
// round trips): the TTL absorbs 30 slow steps of the load measured first.
TEST(LockTokenCrashTest, AcknowledgedHandOffSurvivesSigkillAndTokensKeepIncreasing) {
  ServerProcess server;  // durability sync: every acknowledgement fsync'd
  ASSERT_OK(server.Start());
  int64_t ttl_ms = 0;
  {
    ASSERT_OK_AND_ASSIGN(auto probe, server.Connect());
    ttl_ms = MeasureLoad(*probe).Window(300, 30);
  }
  const int64_t wait_ms =
      ttl_ms + 10'000;  // the previous round's restored holder lets go within a TTL
  uint64_t max_token = 0;
  for (int round = 0; round < 3; ++round) {
    ASSERT_OK_AND_ASSIGN(auto holder, server.Connect());
    ASSERT_OK_AND_ASSIGN(auto waiter, server.Connect());
    const std::string owner = "h" + std::to_string(round);
    // The lock from the previous round may still be held by its restored
    // holder: take it over with a wait.
    ASSERT_OK_AND_ASSIGN(
        json r,
        holder->Call("lock.acquire",
                     {{"name", "L"}, {"owner", owner}, {"ttl_ms", ttl_ms}, {"wait_ms", wait_ms}},
                     static_cast<int>(wait_ms) + 10'000));
    const uint64_t t = r["token"].get<uint64_t>();
    EXPECT_GT(t, max_token) << "round " << round;
    max_token = std::max(max_token, t);
    // A waiter queues; the holder's release hands the lock over in the same
    // write; then the server is killed.
    ASSERT_OK_AND_ASSIGN(
        uint64_t id, waiter->SendRequest("lock.acquire", {{"name", "L"},
                                                          {"owner", "w" + std::to_string(round)},
                                                          {"ttl_ms", ttl_ms},
                                                          {"wait_ms", wait_ms}}));
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
    ASSERT_OK_AND_ASSIGN(json envelope, waiter->ReadResponse(id, static_cast<int>(wait_ms)));
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
    EXPECT_EQ(st["owner"], "w" + std::to_string(round))
        << "the acknowledged hand-off survived the kill";
    EXPECT_EQ(st["token"], granted.value()["token"]);
  }
}

}  // namespace
}  // namespace shim::testing
