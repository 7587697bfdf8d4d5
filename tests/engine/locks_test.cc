// Fenced locks (lock.*) and the fence check on state writes, at the engine
// level: FakeClock, a real store, no sockets.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/engine/engine_fixture.h"

namespace shim::engine::test {
namespace {

class LockTest : public EngineTest {
 protected:
  json Acquire(const std::string& name, const std::string& owner, int64_t ttl_ms) {
    return Ok("lock.acquire", {{"name", name}, {"owner", owner}, {"ttl_ms", ttl_ms}});
  }
  uint64_t Token(const std::string& name, const std::string& owner, int64_t ttl_ms) {
    json r = Acquire(name, owner, ttl_ms);
    return r.is_object() ? r["token"].get<uint64_t>() : 0;
  }
  // `name` is still held `ms` - 1 from now, and free at `ms`.
  void ExpectExpiresIn(const std::string& name, int64_t ms) {
    Advance(ms - 1);
    EXPECT_EQ(LockStatus(name)["held"], true) << name << " expired early";
    Advance(1);
    EXPECT_EQ(LockStatus(name)["held"], false) << name << " outlived its TTL";
  }
  // A waiting acquire; its slot fills when the lock is granted or the wait ends.
  std::shared_ptr<ReplySlot> Wait(const std::string& name, const std::string& owner, int64_t ttl_ms,
                                  int64_t wait_ms, std::shared_ptr<Client> client = nullptr) {
    return Start("lock.acquire",
                 {{"name", name}, {"owner", owner}, {"ttl_ms", ttl_ms}, {"wait_ms", wait_ms}},
                 std::move(client));
  }
};

TEST_F(LockTest, AcquireGrantsTokenAndStatusShowsHolder) {
  json r = Acquire("L", "alice", 1000);
  ASSERT_TRUE(r.is_object());
  EXPECT_GT(r["token"].get<uint64_t>(), 0u);
  EXPECT_EQ(r["expires_at_ms"], Now() + 1000);
  json st = LockStatus("L");
  EXPECT_EQ(st["held"], true);
  EXPECT_EQ(st["owner"], "alice");
  EXPECT_EQ(st["token"], r["token"]);
  EXPECT_EQ(st["expires_at_ms"], Now() + 1000);
  EXPECT_EQ(st["waiters"], 0);

  json free = LockStatus("never-taken");
  EXPECT_EQ(free["held"], false);
  EXPECT_TRUE(free["owner"].is_null());
  EXPECT_TRUE(free["token"].is_null());
}

TEST_F(LockTest, HeldLockWithoutWaitFailsLockHeldWithHolderAndExpiry) {
  Acquire("L", "alice", 1000);
  Advance(300);
  Result<json> r =
      Call("lock.acquire", {{"name", "L"}, {"owner", "bob"}, {"ttl_ms", 1000}, {"wait_ms", 0}});
  ASSERT_TRUE(FailedWith(r, StatusCode::kLockHeld));
  EXPECT_EQ(r.status().details()["holder"], "alice");
  EXPECT_EQ(r.status().details()["expires_at_ms"], Now() + 700);
  // wait_ms omitted means 0 too.
  EXPECT_TRUE(FailedWith(Call("lock.acquire", {{"name", "L"}, {"owner", "bob"}, {"ttl_ms", 10}}),
                         StatusCode::kLockHeld));
  EXPECT_EQ(LockStatus("L")["owner"], "alice");
}

TEST_F(LockTest, ReentrantAcquireReturnsSameTokenAndRefreshesTtl) {
  const uint64_t token = Token("L", "alice", 100);
  Advance(80);
  json again = Acquire("L", "alice", 100);
  EXPECT_EQ(again["token"], token);
  EXPECT_EQ(again["expires_at_ms"], Now() + 100);
  Advance(80);  // 160 ms after the first grant: past the original TTL
  json st = LockStatus("L");
  EXPECT_EQ(st["held"], true);
  EXPECT_EQ(st["owner"], "alice");
  EXPECT_EQ(st["token"], token);
  ExpectExpiresIn("L", 20);  // 100 ms after the re-entrant acquire
}

TEST_F(LockTest, ExpiresAfterTtlAndExtendPostponesIt) {
  const uint64_t a = Token("A", "alice", 100);
  Token("B", "bob", 100);
  Advance(60);
  json ext = Ok("lock.extend", {{"name", "A"}, {"token", a}, {"ttl_ms", 100}});
  EXPECT_EQ(ext["expires_at_ms"], Now() + 100);
  Advance(39);
  EXPECT_EQ(LockStatus("A")["held"], true);
  EXPECT_EQ(LockStatus("B")["held"], true);
  Advance(1);
  EXPECT_EQ(LockStatus("A")["held"], true) << "extended: must outlive its first TTL";
  EXPECT_EQ(LockStatus("B")["held"], false) << "not extended: expires at its TTL";
  ExpectExpiresIn("A", 60);
}

TEST_F(LockTest, ExtendAndReleaseWithWrongOrStaleTokenAreNotOwner) {
  const uint64_t old_token = Token("L", "alice", 100);
  EXPECT_TRUE(
      FailedWith(Call("lock.extend", {{"name", "L"}, {"token", old_token + 1}, {"ttl_ms", 100}}),
                 StatusCode::kNotOwner));
  EXPECT_TRUE(FailedWith(Call("lock.release", {{"name", "L"}, {"token", old_token + 1}}),
                         StatusCode::kNotOwner));
  EXPECT_TRUE(
      FailedWith(Call("lock.release", {{"name", "L"}, {"token", 0}}), StatusCode::kNotOwner));
  EXPECT_EQ(LockStatus("L")["owner"], "alice") << "a failed release must not free the lock";

  // alice stalls past her TTL; bob takes the lock; alice's token is stale.
  Advance(100);
  const uint64_t bob = Token("L", "bob", 1000);
  ASSERT_GT(bob, old_token);
  EXPECT_TRUE(
      FailedWith(Call("lock.extend", {{"name", "L"}, {"token", old_token}, {"ttl_ms", 100}}),
                 StatusCode::kNotOwner));
  EXPECT_TRUE(FailedWith(Call("lock.release", {{"name", "L"}, {"token", old_token}}),
                         StatusCode::kNotOwner));
  json st = LockStatus("L");
  EXPECT_EQ(st["owner"], "bob");
  EXPECT_EQ(st["token"], bob);

  // Released: the token no longer holds anything.
  Ok("lock.release", {{"name", "L"}, {"token", bob}});
  EXPECT_TRUE(
      FailedWith(Call("lock.release", {{"name", "L"}, {"token", bob}}), StatusCode::kNotOwner));
  EXPECT_TRUE(FailedWith(Call("lock.extend", {{"name", "L"}, {"token", bob}, {"ttl_ms", 100}}),
                         StatusCode::kNotOwner));
  EXPECT_TRUE(
      FailedWith(Call("lock.release", {{"name", "nope"}, {"token", 1}}), StatusCode::kNotOwner));
}

TEST_F(LockTest, WaitersGetTheLockInFifoOrderOnRelease) {
  uint64_t token = Token("L", "holder", 10'000);
  std::vector<std::shared_ptr<ReplySlot>> waiters;
  for (int i = 0; i < 4; ++i) waiters.push_back(Wait("L", "w" + std::to_string(i), 10'000, 60'000));
  for (auto& w : waiters) EXPECT_FALSE(w->done());
  EXPECT_EQ(LockStatus("L")["waiters"], 4);

  for (int i = 0; i < 4; ++i) {
    Ok("lock.release", {{"name", "L"}, {"token", token}});
    ASSERT_TRUE(waiters[i]->done()) << "waiter " << i << " must get the lock on release";
    ASSERT_TRUE(waiters[i]->ok()) << waiters[i]->result->status().ToString();
    const uint64_t next = waiters[i]->value()["token"].get<uint64_t>();
    EXPECT_GT(next, token);
    token = next;
    for (int j = i + 1; j < 4; ++j)
      EXPECT_FALSE(waiters[j]->done()) << "waiter " << j << " jumped the queue";
    json st = LockStatus("L");
    EXPECT_EQ(st["owner"], "w" + std::to_string(i));
    EXPECT_EQ(st["token"], token);
    EXPECT_EQ(st["waiters"], 3 - i);
  }
  Ok("lock.release", {{"name", "L"}, {"token", token}});
  EXPECT_EQ(LockStatus("L")["held"], false);
}

TEST_F(LockTest, WaitersGetTheLockInFifoOrderOnTtlExpiry) {
  uint64_t token = Token("L", "holder", 100);
  std::vector<std::shared_ptr<ReplySlot>> waiters;
  for (int i = 0; i < 3; ++i) waiters.push_back(Wait("L", "w" + std::to_string(i), 50, 60'000));
  Advance(99);
  for (auto& w : waiters) EXPECT_FALSE(w->done());
  Advance(1);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(waiters[i]->done()) << "waiter " << i;
    ASSERT_TRUE(waiters[i]->ok()) << waiters[i]->result->status().ToString();
    const uint64_t next = waiters[i]->value()["token"].get<uint64_t>();
    EXPECT_GT(next, token);
    token = next;
    EXPECT_EQ(waiters[i]->value()["expires_at_ms"], Now() + 50) << "the waiter's own TTL";
    for (int j = i + 1; j < 3; ++j)
      EXPECT_FALSE(waiters[j]->done()) << "waiter " << j << " jumped the queue";
    EXPECT_EQ(LockStatus("L")["owner"], "w" + std::to_string(i));
    Advance(49);
    EXPECT_EQ(LockStatus("L")["owner"], "w" + std::to_string(i));
    Advance(1);
  }
  EXPECT_EQ(LockStatus("L")["held"], false);
}

TEST_F(LockTest, WaiterWhoseWaitRunsOutGetsTimeoutAndLeavesTheQueue) {
  const uint64_t token = Token("L", "holder", 10'000);
  auto short_wait = Wait("L", "impatient", 1000, 50);
  auto long_wait = Wait("L", "patient", 1000, 5000);
  Advance(49);
  EXPECT_FALSE(short_wait->done());
  Advance(1);
  ASSERT_TRUE(short_wait->done());
  EXPECT_EQ(short_wait->code(), StatusCode::kTimeout);
  EXPECT_FALSE(long_wait->done());
  EXPECT_EQ(LockStatus("L")["waiters"], 1);
  Ok("lock.release", {{"name", "L"}, {"token", token}});
  ASSERT_TRUE(long_wait->ok());
  EXPECT_EQ(LockStatus("L")["owner"], "patient") << "the timed-out waiter must not be granted";
  EXPECT_EQ(short_wait->calls, 1) << "answered exactly once";

  // A waiter alone in the queue of a lock that stays held.
  auto alone = Wait("M", "x", 10, 0);  // free lock: granted at once
  ASSERT_TRUE(alone->ok());
  auto lonely = Wait("M", "y", 10'000, 30);
  Advance(9);  // M's TTL is 10 ms; y gets it when it expires, before its wait ends
  EXPECT_FALSE(lonely->done());
  Advance(1);
  ASSERT_TRUE(lonely->ok());
  auto late = Wait("M", "z", 10, 20);
  Advance(20);
  EXPECT_EQ(late->code(), StatusCode::kTimeout);
  EXPECT_EQ(LockStatus("M")["owner"], "y");
  EXPECT_EQ(LockStatus("M")["waiters"], 0);
}

TEST_F(LockTest, FencingTokensStrictlyIncreaseAcrossGrants) {
  std::vector<uint64_t> tokens;
  auto record = [&](uint64_t t) {
    if (!tokens.empty()) {
      EXPECT_GT(t, tokens.back()) << "grant #" << tokens.size();
    }
    tokens.push_back(t);
  };
  // Plain acquire / release.
  for (int i = 0; i < 5; ++i) {
    uint64_t t = Token("L", "o" + std::to_string(i), 100);
    record(t);
    Ok("lock.release", {{"name", "L"}, {"token", t}});
  }
  // Expiry, then a new holder; unrelated writes in between.
  record(Token("L", "a", 10));
  Ok("state.set", {{"key", "k"}, {"value", 1}});
  Advance(10);
  record(Token("L", "b", 10));
  // Hand-off on release and on expiry.
  auto w1 = Wait("L", "c", 10, 1000);
  auto w2 = Wait("L", "d", 10, 1000);
  Ok("lock.release", {{"name", "L"}, {"token", tokens.back()}});
  ASSERT_TRUE(w1->ok());
  record(w1->value()["token"].get<uint64_t>());
  Advance(10);
  ASSERT_TRUE(w2->ok());
  record(w2->value()["token"].get<uint64_t>());
  // Another lock's grant also moves the shared counter forward.
  record(Token("Other", "e", 10));
  // Re-entrant acquire is not a new grant: same token.
  EXPECT_EQ(Token("Other", "e", 10), tokens.back());
  // Across a restart.
  Advance(10);
  ASSERT_NO_FATAL_FAILURE(Reopen());
  record(Token("L", "f", 10));
  record(Token("Other", "g", 10));
}

TEST_F(LockTest, FencedStateWritesAcceptOnlyTheCurrentToken) {
  const uint64_t old_token = Token("L", "alice", 100);
  json fence_old = {{"lock", "L"}, {"token", old_token}};
  Ok("state.set", {{"key", "k"}, {"value", 1}, {"fence", fence_old}});
  Ok("state.patch", {{"key", "doc"}, {"merge", {{"a", 1}}}, {"fence", fence_old}});
  Ok("state.set", {{"key", "gone"}, {"value", true}, {"fence", fence_old}});
  Ok("state.del", {{"key", "gone"}, {"fence", fence_old}});
  EXPECT_TRUE(Get("gone").is_null());
  Ok("state.set", {{"key", "victim"}, {"value", "keep"}});

  // alice stalls; the lock expires and bob gets it.
  Advance(100);
  const uint64_t bob = Token("L", "bob", 1000);
  ASSERT_GT(bob, old_token);
  const uint64_t rev = engine_->revision();
  Result<json> set = Call("state.set", {{"key", "k"}, {"value", 2}, {"fence", fence_old}});
  ASSERT_TRUE(FailedWith(set, StatusCode::kFenced));
  EXPECT_EQ(set.status().details()["current_token"], bob);
  EXPECT_TRUE(
      FailedWith(Call("state.patch", {{"key", "doc"}, {"merge", {{"a", 2}}}, {"fence", fence_old}}),
                 StatusCode::kFenced));
  EXPECT_TRUE(FailedWith(Call("state.del", {{"key", "victim"}, {"fence", fence_old}}),
                         StatusCode::kFenced));
  // A token from the future is not current either.
  EXPECT_TRUE(
      FailedWith(Call("state.set",
                      {{"key", "k"}, {"value", 3}, {"fence", {{"lock", "L"}, {"token", bob + 1}}}}),
                 StatusCode::kFenced));
  // Nothing was applied.
  EXPECT_EQ(engine_->revision(), rev);
  EXPECT_EQ(Get("k")["value"], 1);
  EXPECT_EQ(Get("doc")["value"], json({{"a", 1}}));
  EXPECT_EQ(Get("victim")["value"], "keep");

  // The current token works.
  json fence_new = {{"lock", "L"}, {"token", bob}};
  EXPECT_EQ(Ok("state.set", {{"key", "k"}, {"value", 2}, {"fence", fence_new}})["version"], 2);
  EXPECT_EQ(
      Ok("state.patch", {{"key", "doc"}, {"merge", {{"a", 2}}}, {"fence", fence_new}})["value"],
      json({{"a", 2}}));
  EXPECT_EQ(Ok("state.del", {{"key", "victim"}, {"fence", fence_new}})["deleted"], true);

  // A released lock fences everyone, its last holder included.
  Ok("lock.release", {{"name", "L"}, {"token", bob}});
  Result<json> after = Call("state.set", {{"key", "k"}, {"value", 9}, {"fence", fence_new}});
  ASSERT_TRUE(FailedWith(after, StatusCode::kFenced));
  EXPECT_TRUE(after.status().details()["current_token"].is_null());
  EXPECT_EQ(Get("k")["value"], 2);

  // A malformed fence is a parameter error, not a fence failure.
  EXPECT_TRUE(
      FailedWith(Call("state.set", {{"key", "k"}, {"value", 1}, {"fence", {{"lock", "L"}}}}),
                 StatusCode::kInvalidParams));
  EXPECT_TRUE(FailedWith(Call("state.set", {{"key", "k"}, {"value", 1}, {"fence", "L"}}),
                         StatusCode::kInvalidParams));
}

TEST_F(LockTest, FencedTxnOpsAreAllOrNothing) {
  const uint64_t old_token = Token("L", "alice", 100);
  json fence_old = {{"lock", "L"}, {"token", old_token}};
  json ok_txn = {{"success",
                  {{{"set", {{"key", "a"}, {"value", 1}}}},
                   {{"set", {{"key", "b"}, {"value", 1}, {"fence", fence_old}}}},
                   {{"incr", {{"key", "n"}, {"fence", fence_old}}}}}}};
  json r = Ok("state.txn", ok_txn);
  EXPECT_EQ(r["succeeded"], true);
  EXPECT_EQ(Get("b")["value"], 1);
  EXPECT_EQ(Get("n")["value"], 1);

  Advance(100);
  const uint64_t bob = Token("L", "bob", 1000);
  const uint64_t rev = engine_->revision();
  // The unfenced first op would succeed alone; the stale fence on a later op
  // rejects the whole transaction.
  json stale = {{"success",
                 {{{"set", {{"key", "a"}, {"value", 2}}}},
                  {{"incr", {{"key", "n"}}}},
                  {{"set", {{"key", "b"}, {"value", 2}, {"fence", fence_old}}}}}}};
  Result<json> fenced = Call("state.txn", stale);
  ASSERT_TRUE(FailedWith(fenced, StatusCode::kFenced));
  EXPECT_EQ(fenced.status().details()["op_index"], 2);
  for (const char* op : {"del", "incr", "patch"}) {
    json args = {{"key", "a"}, {"fence", fence_old}};
    if (std::string(op) == "patch") args["merge"] = {{"x", 1}};
    json txn = {{"success", {{{"set", {{"key", "c"}, {"value", 1}}}}, {{op, args}}}}};
    EXPECT_TRUE(FailedWith(Call("state.txn", txn), StatusCode::kFenced)) << op;
  }
  // The failure branch is fenced the same way.
  json failure_branch = {
      {"compare", {{{"key", "a"}, {"version", 99}}}},
      {"success", json::array()},
      {"failure", {{{"set", {{"key", "a"}, {"value", 3}, {"fence", fence_old}}}}}}};
  EXPECT_TRUE(FailedWith(Call("state.txn", failure_branch), StatusCode::kFenced));

  EXPECT_EQ(engine_->revision(), rev) << "a fenced txn must write nothing";
  EXPECT_EQ(Get("a")["value"], 1);
  EXPECT_EQ(Get("b")["value"], 1);
  EXPECT_EQ(Get("n")["value"], 1);
  EXPECT_TRUE(Get("c").is_null());

  json fresh = {
      {"success",
       {{{"set", {{"key", "a"}, {"value", 2}}}},
        {{"set", {{"key", "b"}, {"value", 2}, {"fence", {{"lock", "L"}, {"token", bob}}}}}}}}};
  EXPECT_EQ(Ok("state.txn", fresh)["succeeded"], true);
  EXPECT_EQ(Get("a")["value"], 2);
  EXPECT_EQ(Get("b")["value"], 2);
}

TEST_F(LockTest, WaiterWhoseClientClosesLeavesTheQueue) {
  auto c1 = std::make_shared<FakeClient>(101);
  auto c2 = std::make_shared<FakeClient>(102);
  auto c3 = std::make_shared<FakeClient>(103);
  const uint64_t token = Token("L", "holder", 10'000);
  auto gone = Wait("L", "one", 1000, 60'000, c1);
  auto gone_too = Wait("L", "one-again", 1000, 60'000, c1);
  auto stays = Wait("L", "two", 1000, 60'000, c2);
  auto other = Wait("Other", "x", 1000, 0, c3);  // c3 holds "Other"
  ASSERT_TRUE(other->ok());
  EXPECT_EQ(LockStatus("L")["waiters"], 3);

  c1->set_closed();
  engine_->OnClientClosed(101);
  Pump();
  EXPECT_EQ(LockStatus("L")["waiters"], 1);

  Ok("lock.release", {{"name", "L"}, {"token", token}});
  ASSERT_TRUE(stays->ok()) << "the live waiter is next once the closed one left";
  EXPECT_EQ(LockStatus("L")["owner"], "two");
  EXPECT_FALSE(gone->ok());
  EXPECT_FALSE(gone_too->ok());
  EXPECT_LE(gone->calls, 1);
  // A held lock is not tied to its connection: only waits end.
  engine_->OnClientClosed(103);
  EXPECT_EQ(LockStatus("Other")["owner"], "x");
  // The closed waiters' wait timers fire harmlessly.
  Advance(60'000);
  EXPECT_FALSE(gone->ok());
}

TEST_F(LockTest, EndWaitsAnswersTheConnectionsWaitersTimeoutAtOnceAndFreesTheirPlaces) {
  // A connection that stops sending (a half-close) keeps its answers to
  // requests that do not wait, but its waits end now: docs/design.md, style rule 13.
  auto quitting = std::make_shared<FakeClient>(201);
  auto staying = std::make_shared<FakeClient>(202);
  const uint64_t token = Token("L", "holder", 100'000);
  auto ended = Wait("L", "quitter", 1000, 60'000, quitting);
  auto stays = Wait("L", "stayer", 1000, 60'000, staying);
  ASSERT_FALSE(ended->done());
  EXPECT_EQ(LockStatus("L")["waiters"], 2);

  engine_->EndWaits(201);
  Pump();
  ASSERT_EQ(ended->calls, 1) << "answered at once, not when wait_ms runs out";
  EXPECT_EQ(ended->code(), StatusCode::kTimeout);
  EXPECT_NE(ended->result->status().message().find("half-closed"), std::string::npos)
      << ended->result->status().message();
  EXPECT_FALSE(stays->done());
  EXPECT_EQ(LockStatus("L")["waiters"], 1);

  // The ended wait's timer is gone too: the next timer is the other wait's.
  Advance(59'999);
  EXPECT_FALSE(stays->done());
  Ok("lock.release", {{"name", "L"}, {"token", token}});
  ASSERT_TRUE(stays->ok()) << "the lock goes to the waiter still there";
  EXPECT_EQ(LockStatus("L")["owner"], "stayer");
  EXPECT_EQ(ended->calls, 1);
  // Nothing but the new holder's TTL is left to run.
  ASSERT_TRUE(engine_->NextTimerInMs().has_value());
  EXPECT_EQ(*engine_->NextTimerInMs(), 1000);
}

TEST_F(LockTest, HandedOffOrEndedWaitsLeaveNoTimerBehind) {
  // Thousands of send-and-close clients must not leave thousands of
  // hour-long timers behind: a wait's timer goes with the wait.
  const uint64_t token = Token("L", "holder", 5000);
  for (uint64_t c = 1; c <= 500; ++c) {
    auto client = std::make_shared<FakeClient>(1000 + c);
    Wait("L", "w" + std::to_string(c), 1000, 3'600'000, client);
    client->set_closed();
    engine_->OnClientClosed(1000 + c);
  }
  Pump();
  EXPECT_EQ(LockStatus("L")["waiters"], 0);
  auto next = Wait("L", "next", 1000, 3'600'000);
  Ok("lock.release", {{"name", "L"}, {"token", token}});
  ASSERT_TRUE(next->ok());
  Advance(5000);  // the new holder's TTL and the old one's (stale) timer run
  EXPECT_EQ(LockStatus("L")["held"], false);
  // No wait_ms timer is left: not of the 500 ended waits, not of the one
  // handed the lock (what is left is the engine's own periodic work).
  EXPECT_LT(engine_->Describe()["timers"].get<size_t>(), 10u);
}

TEST_F(LockTest, WaiterLimitGivesOverloadedAndEverythingStaysBounded) {
  const size_t limit = EngineLimits{}.max_waiters_per_lock;
  ASSERT_EQ(limit, 1000u);
  const uint64_t token = Token("L", "holder", 100'000);
  auto client = std::make_shared<FakeClient>(7);
  std::vector<std::shared_ptr<ReplySlot>> slots;
  slots.reserve(10'000);
  size_t overloaded = 0, waiting = 0, other = 0;
  for (int i = 0; i < 10'000; ++i) {
    // Each waiter would hold the lock longer than anyone waits.
    slots.push_back(Wait("L", "w" + std::to_string(i), 100'000, 10'000, client));
    const auto& s = slots.back();
    if (!s->done()) {
      ++waiting;
    } else if (s->code() == StatusCode::kOverloaded) {
      ++overloaded;
      if (overloaded == 1) {
        EXPECT_EQ(s->result->status().details()["limit"], limit);
      }
    } else {
      ++other;
    }
  }
  EXPECT_EQ(waiting, limit);
  EXPECT_EQ(overloaded, 10'000 - limit);
  EXPECT_EQ(other, 0u);
  for (size_t i = 0; i < limit; ++i)
    EXPECT_FALSE(slots[i]->done()) << "the first " << limit << " queue";
  EXPECT_EQ(LockStatus("L")["waiters"], limit);

  // Room again once one leaves: the queue is first come, first served.
  Ok("lock.release", {{"name", "L"}, {"token", token}});
  ASSERT_TRUE(slots[0]->ok());
  auto extra = Wait("L", "late", 1000, 10'000, client);
  EXPECT_FALSE(extra->done());
  EXPECT_EQ(Wait("L", "later", 1000, 10'000, client)->code(), StatusCode::kOverloaded);

  // Every wait ends: those whose wait_ms ran out with TIMEOUT, each answered once.
  Advance(10'000);
  size_t timeouts = 0;
  for (size_t i = 1; i < limit; ++i) {
    EXPECT_EQ(slots[i]->calls, 1) << i;
    timeouts += slots[i]->code() == StatusCode::kTimeout;
  }
  EXPECT_EQ(timeouts, limit - 1);
  EXPECT_EQ(LockStatus("L")["waiters"], 0);
  EXPECT_EQ(LockStatus("L")["owner"], "w0");
}

TEST_F(LockTest, SmallerConfiguredWaiterLimitIsEnforced) {
  Close();
  limits_.max_waiters_per_lock = 2;
  ASSERT_NO_FATAL_FAILURE(Open());
  Token("L", "holder", 1000);
  EXPECT_FALSE(Wait("L", "a", 10, 100)->done());
  EXPECT_FALSE(Wait("L", "b", 10, 100)->done());
  EXPECT_EQ(Wait("L", "c", 10, 100)->code(), StatusCode::kOverloaded);
  // The limit is per lock.
  Token("M", "holder", 1000);
  EXPECT_FALSE(Wait("M", "a", 10, 100)->done());
}

TEST_F(LockTest, BadInputIsRejected) {
  const int64_t max_ttl = EngineLimits{}.max_ttl_ms;
  for (json ttl : {json(0), json(-1), json(-1000), json(max_ttl + 1), json(INT64_MAX), json(1e300),
                   json(1.5), json("100"), json(nullptr)}) {
    EXPECT_TRUE(FailedWith(Call("lock.acquire", {{"name", "L"}, {"owner", "o"}, {"ttl_ms", ttl}}),
                           StatusCode::kInvalidParams))
        << "ttl_ms " << ttl.dump();
  }
  Result<json> missing = Call("lock.acquire", {{"name", "L"}, {"owner", "o"}});
  ASSERT_TRUE(FailedWith(missing, StatusCode::kInvalidParams));
  EXPECT_EQ(missing.status().details()["field"], "ttl_ms");
  EXPECT_TRUE(FailedWith(Call("lock.acquire", {{"owner", "o"}, {"ttl_ms", 10}}),
                         StatusCode::kInvalidParams));
  EXPECT_TRUE(FailedWith(Call("lock.acquire", {{"name", ""}, {"owner", "o"}, {"ttl_ms", 10}}),
                         StatusCode::kInvalidParams));
  EXPECT_TRUE(FailedWith(Call("lock.acquire", {{"name", "L"}, {"ttl_ms", 10}}),
                         StatusCode::kInvalidParams));
  EXPECT_TRUE(FailedWith(
      Call("lock.acquire", {{"name", "L"}, {"owner", "o"}, {"ttl_ms", 10}, {"wait_ms", -1}}),
      StatusCode::kInvalidParams));
  EXPECT_TRUE(FailedWith(Call("lock.acquire", {{"name", "L"},
                                               {"owner", "o"},
                                               {"ttl_ms", 10},
                                               {"wait_ms", EngineLimits{}.max_wait_ms + 1}}),
                         StatusCode::kInvalidParams));
  EXPECT_TRUE(FailedWith(
      Call("lock.acquire", {{"name", std::string(300, 'n')}, {"owner", "o"}, {"ttl_ms", 10}}),
      StatusCode::kTooLarge));
  EXPECT_TRUE(FailedWith(
      Call("lock.acquire", {{"name", "L"}, {"owner", "o"}, {"ttl_ms", 10}, {"lease_id", 424242}}),
      StatusCode::kNotFound));
  EXPECT_TRUE(FailedWith(Call("lock.acquire", json::array()), StatusCode::kInvalidParams));
  EXPECT_EQ(LockStatus("L")["held"], false) << "no failed acquire may take the lock";

  const uint64_t t = Token("L", "o", 100);
  for (json ttl : {json(0), json(-5), json(max_ttl + 1)}) {
    EXPECT_TRUE(FailedWith(Call("lock.extend", {{"name", "L"}, {"token", t}, {"ttl_ms", ttl}}),
                           StatusCode::kInvalidParams))
        << ttl.dump();
  }
  EXPECT_TRUE(
      FailedWith(Call("lock.extend", {{"name", "L"}, {"ttl_ms", 10}}), StatusCode::kInvalidParams));
  EXPECT_TRUE(FailedWith(Call("lock.release", {{"name", "L"}}), StatusCode::kInvalidParams));
  EXPECT_TRUE(FailedWith(Call("lock.release", {{"name", "L"}, {"token", "x"}}),
                         StatusCode::kInvalidParams));
  EXPECT_TRUE(FailedWith(Call("lock.status", json::object()), StatusCode::kInvalidParams));
  // The largest allowed TTL is fine and does not overflow the expiry.
  json big = Ok("lock.acquire", {{"name", "Big"}, {"owner", "o"}, {"ttl_ms", max_ttl}});
  EXPECT_EQ(big["expires_at_ms"], Now() + max_ttl);
}

TEST_F(LockTest, RestartKeepsHeldLocksWithFullTtlAndTokensKeepIncreasing) {
  const uint64_t a = Token("A", "alice", 1000);
  const uint64_t b = Token("B", "bob", 500);
  uint64_t max_token = b;
  for (int i = 0; i < 3; ++i) {  // more grants, released
    uint64_t t = Token("C", "carol", 100);
    max_token = std::max(max_token, t);
    Ok("lock.release", {{"name", "C"}, {"token", t}});
  }
  Advance(400);  // B has 100 ms left, A 600
  ASSERT_NO_FATAL_FAILURE(Reopen());

  json sa = LockStatus("A");
  EXPECT_EQ(sa["held"], true);
  EXPECT_EQ(sa["owner"], "alice");
  EXPECT_EQ(sa["token"], a);
  EXPECT_EQ(sa["expires_at_ms"], Now() + 1000) << "full TTL again after a restart";
  json sb = LockStatus("B");
  EXPECT_EQ(sb["owner"], "bob");
  EXPECT_EQ(sb["token"], b);
  EXPECT_EQ(LockStatus("C")["held"], false);
  EXPECT_TRUE(
      FailedWith(Call("lock.acquire", {{"name", "B"}, {"owner", "mallory"}, {"ttl_ms", 10}}),
                 StatusCode::kLockHeld));
  // The held token still fences, and still extends.
  Ok("state.set", {{"key", "k"}, {"value", 1}, {"fence", {{"lock", "A"}, {"token", a}}}});

  ExpectExpiresIn("B", 500);  // past its original expiry, but it got 500 ms again
  ExpectExpiresIn("A", 500);

  const uint64_t next = Token("A", "dave", 100);
  EXPECT_GT(next, max_token);
  EXPECT_GT(next, a);
}

TEST_F(LockTest, RestartAfterReentrantAcquireKeepsTheRefreshedTtl) {
  const uint64_t t = Token("L", "alice", 100);
  EXPECT_EQ(Token("L", "alice", 5000), t);
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(LockStatus("L")["token"], t);
  ExpectExpiresIn("L", 5000);
}

// The host serves requests between a lock's due time and the moment its
// expiry timer runs. A holder that stalled past its TTL has lost the lock
// from the due time on: its writes are fenced, it cannot extend the lock back
// to life, and the lock is free for others. Time moves here without
// RunTimers to open exactly that window.
TEST_F(LockTest, LockPastItsTtlIsLostEvenBeforeItsExpiryTimerRuns) {
  const uint64_t t = Token("L", "alice", 100);
  Ok("state.set", {{"key", "k"}, {"value", 1}, {"fence", {{"lock", "L"}, {"token", t}}}});
  clock_.Advance(100);  // due; the expiry timer has not run
  EXPECT_TRUE(FailedWith(
      Call("state.set", {{"key", "k"}, {"value", 2}, {"fence", {{"lock", "L"}, {"token", t}}}}),
      StatusCode::kFenced));
  EXPECT_TRUE(FailedWith(Call("lock.extend", {{"name", "L"}, {"token", t}, {"ttl_ms", 100}}),
                         StatusCode::kNotOwner));
  EXPECT_EQ(LockStatus("L")["held"], false);
  const uint64_t bob = Token("L", "bob", 100);
  EXPECT_GT(bob, t);
  Advance(0);  // the old timer runs now, harmlessly
  EXPECT_EQ(LockStatus("L")["owner"], "bob");
  EXPECT_EQ(Get("k")["value"], 1);

  // With a waiter queued, the lapsed lock goes to the waiter (FIFO), not to
  // a newcomer that happens to ask first.
  auto waiter = Wait("L", "carol", 100, 10'000);
  clock_.Advance(100);
  EXPECT_TRUE(FailedWith(Call("lock.acquire", {{"name", "L"}, {"owner", "dave"}, {"ttl_ms", 100}}),
                         StatusCode::kLockHeld));
  ASSERT_TRUE(waiter->ok());
  EXPECT_EQ(LockStatus("L")["owner"], "carol");
  EXPECT_TRUE(
      FailedWith(Call("lock.release", {{"name", "L"}, {"token", bob}}), StatusCode::kNotOwner));
}

TEST_F(LockTest, LockTakenWithALapsedLeaseIsLostEvenBeforeTheLeaseTimerRuns) {
  const uint64_t lease = Ok("lease.grant", {{"ttl_ms", 100}})["lease_id"].get<uint64_t>();
  const uint64_t t =
      Ok("lock.acquire",
         {{"name", "L"}, {"owner", "alice"}, {"ttl_ms", 60'000}, {"lease_id", lease}})["token"]
          .get<uint64_t>();
  clock_.Advance(100);  // the lease is due; its timer has not run
  EXPECT_TRUE(FailedWith(
      Call("state.set", {{"key", "k"}, {"value", 2}, {"fence", {{"lock", "L"}, {"token", t}}}}),
      StatusCode::kFenced));
  Advance(0);
  EXPECT_EQ(LockStatus("L")["held"], false);
}

TEST_F(LockTest, ListShowsHeldAndWaitedLocks) {
  Token("A", "alice", 1000);
  Token("B", "bob", 1000);
  Wait("B", "carol", 1000, 5000);
  json list = Ok("lock.list", json::object())["locks"];
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0]["name"], "A");
  EXPECT_EQ(list[1]["name"], "B");
  EXPECT_EQ(list[1]["waiters"], 1);
}

}  // namespace
}  // namespace shim::engine::test
