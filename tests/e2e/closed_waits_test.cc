// Server-side waits of a client that goes away, against a real `shim serve`
// (docs/design.md, style rule 13): a connection that closes takes its waits with it — a
// departed lock waiter is not granted the lock, a departed claimer is not
// handed a task, its connection slot and its place among the waiting
// claims are free at once — and one that only half-closes still gets the
// answers to what does not wait, while its waits end at once.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
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
using testing::kCallTimeoutMs;
using testing::kLoadedCallTimeoutMs;
using testing::ServerProcess;
using Clock = std::chrono::steady_clock;

// Far longer than any test: a wait still pending at the end was not ended.
constexpr int64_t kHourMs = 3'600'000;

// Polls `probe` until it returns true or `timeout_ms` passes; returns its last answer.
bool Eventually(const std::function<bool()>& probe, int timeout_ms = 10'000) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    if (probe()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

int Waiters(net::LineClient& observer, const std::string& lock) {
  auto st = observer.Call("lock.status", {{"name", lock}}, kLoadedCallTimeoutMs);
  return st.ok() ? st.value()["waiters"].get<int>() : -1;
}

// Workers serving `queue`: running its tasks or waiting on it.
int Serving(net::LineClient& observer, const std::string& queue) {
  auto st = observer.Call("queue.stats", {{"queue", queue}}, kLoadedCallTimeoutMs);
  return st.ok() ? st.value()["workers"].get<int>() : -1;
}

int Connections(net::LineClient& observer) {
  auto info = observer.Call("sys.info", json::object(), kLoadedCallTimeoutMs);
  return info.ok() ? info.value()["connections"].get<int>() : -1;
}

// A client sends `method` (a request that waits) and is seen waiting
// (`waiting` counts 1), then closes; its wait must end as soon as the server
// reads the close (`waiting` back at 0).
void ExpectWaitEndsWhenItsClientCloses(ServerProcess& server, const std::string& method,
                                       const json& params, const std::function<int()>& waiting) {
  {
    ASSERT_OK_AND_ASSIGN(auto departing, server.Connect());
    ASSERT_OK(departing->SendRequest(method, params).status());
    ASSERT_TRUE(Eventually([&] { return waiting() == 1; })) << "the " << method << " never waited";
  }  // closes
  EXPECT_TRUE(Eventually([&] { return waiting() == 0; }))
      << "a closed connection's " << method << " still waits";
}

json AcquireParams(const std::string& owner, int64_t wait_ms) {
  return {{"name", "L"}, {"owner", owner}, {"ttl_ms", kHourMs}, {"wait_ms", wait_ms}};
}

json ClaimParams(const std::string& worker, int64_t wait_ms) {
  return {{"queues", {"q"}}, {"worker_id", worker}, {"wait_ms", wait_ms}};
}

TEST(ClosedWaitsTest, LockWaiterThatClosesIsNotGrantedTheLockTheNextClientIs) {
  ServerProcess server;
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto holder, server.Connect());
  ASSERT_OK_AND_ASSIGN(json held,
                       holder->Call("lock.acquire", AcquireParams("holder", 0), kCallTimeoutMs));
  ASSERT_NO_FATAL_FAILURE(ExpectWaitEndsWhenItsClientCloses(server, "lock.acquire",
                                                            AcquireParams("departed", kHourMs),
                                                            [&] { return Waiters(*holder, "L"); }));
  ASSERT_OK(holder->Call("lock.release", {{"name", "L"}, {"token", held["token"]}}, kCallTimeoutMs)
                .status());

  ASSERT_OK_AND_ASSIGN(auto next, server.Connect());
  auto got = next->Call("lock.acquire", AcquireParams("next", 0), kCallTimeoutMs);
  ASSERT_TRUE(got.ok()) << "the lock went to the departed client: " << got.status().ToString();
  ASSERT_OK_AND_ASSIGN(json st, next->Call("lock.status", {{"name", "L"}}, kCallTimeoutMs));
  EXPECT_EQ(st["owner"], "next");
}

TEST(ClosedWaitsTest, ClaimerThatClosesIsNotHandedTheTaskTheNextClaimerIs) {
  ServerProcess server;
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto observer, server.Connect());
  ASSERT_OK(observer->Call("queue.configure", {{"queue", "q"}}, kCallTimeoutMs).status());
  ASSERT_NO_FATAL_FAILURE(
      ExpectWaitEndsWhenItsClientCloses(server, "task.claim", ClaimParams("departed", kHourMs),
                                        [&] { return Serving(*observer, "q"); }));
  ASSERT_OK_AND_ASSIGN(
      json submitted,
      observer->Call("task.submit", {{"queue", "q"}, {"payload", 1}}, kCallTimeoutMs));

  ASSERT_OK_AND_ASSIGN(auto next, server.Connect());
  ASSERT_OK_AND_ASSIGN(json claimed,
                       next->Call("task.claim", ClaimParams("next", 0), kCallTimeoutMs));
  ASSERT_EQ(claimed["tasks"].size(), 1u)
      << "the task went to the departed claimer: " << claimed.dump();
  EXPECT_EQ(claimed["tasks"][0]["task_id"], submitted["task_id"]);
  ASSERT_OK_AND_ASSIGN(
      json task, observer->Call("task.get", {{"task_id", submitted["task_id"]}}, kCallTimeoutMs));
  EXPECT_EQ(task["worker_id"], "next") << task.dump();
}

TEST(ClosedWaitsTest, HalfClosedClientGetsWhatDoesNotWaitAndItsWaitsEndAtOnce) {
  ServerProcess server;
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto holder, server.Connect());
  ASSERT_OK(holder->Call("lock.acquire", AcquireParams("holder", 0), kCallTimeoutMs).status());

  ASSERT_OK_AND_ASSIGN(auto half, server.Connect());
  std::string lines;
  auto request = [&](int id, const std::string& method, const json& params) {
    lines += JsonLine({{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}});
  };
  request(1, "sys.ping", json::object());
  request(2, "state.set", {{"key", "half/k"}, {"value", "v"}});
  request(3, "lock.acquire", AcquireParams("half", kHourMs));
  request(4, "task.claim", ClaimParams("half", kHourMs));
  request(5, "state.get", {{"key", "half/k"}});
  ASSERT_OK(half->SendRaw(lines));
  ASSERT_EQ(::shutdown(half->fd(), SHUT_WR), 0);

  const auto start = Clock::now();
  std::map<int, json> answers;
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK_AND_ASSIGN(json m, half->ReadMessage(kCallTimeoutMs));
    answers[m["id"].get<int>()] = m;
  }
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  EXPECT_EQ(answers[1]["result"]["pong"], true) << answers[1].dump();
  EXPECT_EQ(answers[2]["result"]["version"], 1) << answers[2].dump();
  EXPECT_EQ(answers[5]["result"]["value"], "v") << answers[5].dump();
  // The waits ended at once: TIMEOUT for the lock, no tasks for the claim.
  testing::ExpectError(answers[3], 1007, "TIMEOUT", 3);
  EXPECT_EQ(answers[4]["result"]["tasks"], json::array()) << answers[4].dump();
  std::printf("[ info ] five answers to a half-closed client in %lld ms\n",
              static_cast<long long>(ms));
  // Then the server closes: everything was answered.
  auto eof = half->ReadLine(kCallTimeoutMs);
  ASSERT_FALSE(eof.ok()) << "unexpected line: " << eof.value();
  EXPECT_NE(eof.status().code(), StatusCode::kTimeout)
      << "the half-closed connection was not closed";
  // Nobody waits for the lock any more.
  EXPECT_EQ(Waiters(*holder, "L"), 0);
}

TEST(ClosedWaitsTest, SendAndCloseClientsDoNotExhaustConnectionSlots) {
  constexpr int kSlots = 16;
  constexpr int kClients = 200;
  ServerProcess server({.extra_args = {"--max-connections", std::to_string(kSlots)}});
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto observer, server.Connect());
  ASSERT_OK(observer->Call("lock.acquire", AcquireParams("holder", 0), kCallTimeoutMs).status());
  ASSERT_OK(observer->Call("queue.configure", {{"queue", "q"}}, kCallTimeoutMs).status());

  // Each sends a request that would wait an hour, and closes at once.
  int refused = 0;
  for (int i = 0; i < kClients; ++i) {
    ASSERT_OK_AND_ASSIGN(auto c, server.Connect());
    const std::string who = "sender-" + std::to_string(i);
    const bool lock = i % 2 == 0;
    // A send to a connection the server refused (slots full) may fail: counted.
    if (!c->SendRequest(lock ? "lock.acquire" : "task.claim",
                        lock ? AcquireParams(who, kHourMs) : ClaimParams(who, kHourMs))
             .ok()) {
      ++refused;
    }
  }
  // Every slot comes back once the server has read the closes.
  EXPECT_TRUE(Eventually([&] { return Connections(*observer) == 1; }))
      << Connections(*observer) << " connections still open after " << kClients << " clients left";
  EXPECT_EQ(Waiters(*observer, "L"), 0);
  EXPECT_EQ(Serving(*observer, "q"), 0);
  // Nor do their hour-long wait timers stay behind.
  ASSERT_OK_AND_ASSIGN(json stats, observer->Call("sys.stats", json::object(), kCallTimeoutMs));
  EXPECT_LT(stats["engine"]["timers"].get<int>(), 20) << stats["engine"].dump();
  std::printf("[ info ] %d of %d send-and-close clients had a failed send\n", refused, kClients);
  // And a new client is served, here and now.
  ASSERT_OK_AND_ASSIGN(auto fresh, server.Connect());
  ASSERT_OK_AND_ASSIGN(json pong, fresh->Call("sys.ping", json::object(), kCallTimeoutMs));
  EXPECT_EQ(pong["pong"], true);
}

TEST(ClosedWaitsTest, WaitingClaimLimitIsFreedWhenClaimersClose) {
  // 10 connections x 1,000 waiting claims fill the server-wide limit of
  // 10,000 (docs/protocol.md, Limits), then close.
  constexpr int kConnections = 10;
  constexpr int kClaimsEach = 1000;
  ServerProcess server;
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto observer, server.Connect());
  ASSERT_OK(observer->Call("queue.configure", {{"queue", "q"}}, kCallTimeoutMs).status());
  for (int c = 0; c < kConnections; ++c) {
    ASSERT_OK_AND_ASSIGN(auto claimer, server.Connect());
    std::string lines;
    for (int i = 0; i < kClaimsEach; ++i) {
      lines += JsonLine({{"jsonrpc", "2.0"},
                         {"id", i},
                         {"method", "task.claim"},
                         {"params", ClaimParams("w" + std::to_string(c), kHourMs)}});
    }
    ASSERT_OK(claimer->SendRaw(lines));
    // Lines are handled in order: once this ping is answered, every claim
    // before it waits (and counts against the limit). Then the close.
    ASSERT_OK(claimer->Call("sys.ping", json::object(), kLoadedCallTimeoutMs).status());
  }
  ASSERT_TRUE(Eventually([&] { return Serving(*observer, "q") == 0; }))
      << "closed claimers still wait";

  // A new waiting claim is accepted (it waits, then gets no tasks), not OVERLOADED.
  ASSERT_OK_AND_ASSIGN(auto worker, server.Connect());
  auto claim = worker->Call("task.claim", ClaimParams("live", 200), kCallTimeoutMs);
  ASSERT_TRUE(claim.ok()) << "the closed clients still hold the waiting-claim limit: "
                          << claim.status().ToString();
  EXPECT_EQ(claim.value()["tasks"], json::array());
}

}  // namespace
}  // namespace shim
