// Leases (lease.*): expiry, keepalive, and what a lease's end takes with it
// (keys set with its lease_id, locks taken with it). Engine level, FakeClock.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/engine/engine_fixture.h"

namespace shim::engine::test {
namespace {

class LeaseTest : public EngineTest {
 protected:
  uint64_t Grant(int64_t ttl_ms, const std::string& owner = "") {
    json p = {{"ttl_ms", ttl_ms}};
    if (!owner.empty()) p["owner"] = owner;
    json r = Ok("lease.grant", p);
    return r.is_object() ? r["lease_id"].get<uint64_t>() : 0;
  }
  std::vector<uint64_t> Alive() {
    std::vector<uint64_t> out;
    const json list = Ok("lease.list", json::object());
    for (const json& l : list["leases"]) out.push_back(l["lease_id"].get<uint64_t>());
    return out;
  }
  // An ended lease cannot be kept alive, and neither a key nor a lock can
  // attach to it.
  void ExpectNothingAttachesTo(uint64_t lease) {
    EXPECT_TRUE(FailedWith(Call("lease.keepalive", {{"lease_id", lease}}), StatusCode::kNotFound));
    EXPECT_TRUE(
        FailedWith(Call("state.set", {{"key", "ended/key"}, {"value", 1}, {"lease_id", lease}}),
                   StatusCode::kNotFound));
    EXPECT_TRUE(FailedWith(
        Call("lock.acquire",
             {{"name", "ended/lock"}, {"owner", "o"}, {"ttl_ms", 10}, {"lease_id", lease}}),
        StatusCode::kNotFound));
  }
};

TEST_F(LeaseTest, GrantReturnsIdAndExpiryAndIsListed) {
  json r = Ok("lease.grant", {{"ttl_ms", 500}, {"owner", "agent-1"}});
  ASSERT_TRUE(r.is_object());
  const uint64_t id = r["lease_id"].get<uint64_t>();
  EXPECT_GT(id, 0u);
  EXPECT_EQ(r["expires_at_ms"], Now() + 500);
  json list = Ok("lease.list", json::object())["leases"];
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["lease_id"], id);
  EXPECT_EQ(list[0]["owner"], "agent-1");
  EXPECT_EQ(list[0]["ttl_ms"], 500);
  EXPECT_EQ(list[0]["expires_at_ms"], Now() + 500);
  // Ids are unique.
  EXPECT_NE(Grant(500), id);
}

TEST_F(LeaseTest, LeasesExpireInTtlOrder) {
  const uint64_t a = Grant(300);
  const uint64_t b = Grant(100);
  const uint64_t c = Grant(200);
  const uint64_t d = Grant(100);
  Advance(99);
  EXPECT_EQ(Alive(), (std::vector<uint64_t>{a, b, c, d}));
  Advance(1);
  EXPECT_EQ(Alive(), (std::vector<uint64_t>{a, c}));
  Advance(99);
  EXPECT_EQ(Alive(), (std::vector<uint64_t>{a, c}));
  Advance(1);
  EXPECT_EQ(Alive(), (std::vector<uint64_t>{a}));
  Advance(100);
  EXPECT_TRUE(Alive().empty());
  for (uint64_t id : {a, b, c, d}) {
    EXPECT_TRUE(FailedWith(Call("lease.keepalive", {{"lease_id", id}}), StatusCode::kNotFound))
        << id;
  }
}

TEST_F(LeaseTest, OneBigTimeJumpEndsLeasesInExpiryOrder) {
  // One jump past both TTLs: both end in the same RunTimers, with their keys.
  const uint64_t late = Grant(300);
  const uint64_t early = Grant(100);
  Ok("state.set", {{"key", "late"}, {"value", 1}, {"lease_id", late}});
  Ok("state.set", {{"key", "early"}, {"value", 1}, {"lease_id", early}});
  Advance(1000);
  EXPECT_TRUE(Alive().empty());
  EXPECT_TRUE(Get("late").is_null());
  EXPECT_TRUE(Get("early").is_null());
}

TEST_F(LeaseTest, KeepalivePostponesExpiry) {
  const uint64_t id = Grant(100);
  const uint64_t other = Grant(100);
  Advance(80);
  json r = Ok("lease.keepalive", {{"lease_id", id}});
  EXPECT_EQ(r["expires_at_ms"], Now() + 100);
  Advance(20);
  EXPECT_TRUE(LeaseAlive(id)) << "kept alive past its first TTL";
  EXPECT_FALSE(LeaseAlive(other));
  // Keep it alive for ten more keepalives, each 1 ms before it would end.
  Advance(79);
  Ok("lease.keepalive", {{"lease_id", id}});
  for (int i = 0; i < 10; ++i) {
    Advance(99);
    Ok("lease.keepalive", {{"lease_id", id}});
  }
  Advance(99);
  EXPECT_TRUE(LeaseAlive(id));
  Advance(1);
  EXPECT_FALSE(LeaseAlive(id));
  EXPECT_TRUE(FailedWith(Call("lease.keepalive", {{"lease_id", id}}), StatusCode::kNotFound));
}

TEST_F(LeaseTest, RevokeDeletesItsKeysAndReleasesItsLocks) {
  const uint64_t lease = Grant(10'000);
  const uint64_t other = Grant(10'000);
  Ok("state.set", {{"key", "mine/1"}, {"value", 1}, {"lease_id", lease}});
  Ok("state.set", {{"key", "mine/2"}, {"value", 2}, {"lease_id", lease}});
  Ok("state.set", {{"key", "theirs"}, {"value", 3}, {"lease_id", other}});
  Ok("state.set", {{"key", "plain"}, {"value", 4}});
  // A key re-set without lease_id is detached from the lease.
  Ok("state.set", {{"key", "detached"}, {"value", 5}, {"lease_id", lease}});
  Ok("state.set", {{"key", "detached"}, {"value", 6}});
  EXPECT_EQ(Get("mine/1")["lease_id"], lease);

  json held = Ok("lock.acquire",
                 {{"name", "L1"}, {"owner", "me"}, {"ttl_ms", 60'000}, {"lease_id", lease}});
  json l2 = Ok("lock.acquire",
               {{"name", "L2"}, {"owner", "me"}, {"ttl_ms", 60'000}, {"lease_id", lease}});
  Ok("lock.acquire", {{"name", "L3"}, {"owner", "me"}, {"ttl_ms", 60'000}, {"lease_id", other}});
  Ok("lock.acquire", {{"name", "L4"}, {"owner", "me"}, {"ttl_ms", 60'000}});
  EXPECT_EQ(LockStatus("L1")["lease_id"], lease);
  auto waiter = Start("lock.acquire",
                      {{"name", "L1"}, {"owner", "next"}, {"ttl_ms", 1000}, {"wait_ms", 60'000}});
  EXPECT_FALSE(waiter->done());

  EXPECT_EQ(Ok("lease.revoke", {{"lease_id", lease}})["ok"], true);

  EXPECT_TRUE(Get("mine/1").is_null());
  EXPECT_TRUE(Get("mine/2").is_null());
  EXPECT_EQ(Get("theirs")["value"], 3);
  EXPECT_EQ(Get("plain")["value"], 4);
  EXPECT_EQ(Get("detached")["value"], 6);
  // L1 went to its waiter with a newer token, L2 is free, the others held.
  ASSERT_TRUE(waiter->ok()) << (waiter->done() ? waiter->result->status().ToString()
                                               : "still waiting");
  EXPECT_GT(waiter->value()["token"].get<uint64_t>(), held["token"].get<uint64_t>());
  EXPECT_EQ(LockStatus("L1")["owner"], "next");
  EXPECT_TRUE(LockStatus("L1")["lease_id"].is_null());
  EXPECT_EQ(LockStatus("L2")["held"], false);
  EXPECT_EQ(LockStatus("L3")["held"], true);
  EXPECT_EQ(LockStatus("L4")["held"], true);
  // The old holder's token is fenced.
  EXPECT_TRUE(FailedWith(
      Call("state.set",
           {{"key", "x"}, {"value", 1}, {"fence", {{"lock", "L2"}, {"token", l2["token"]}}}}),
      StatusCode::kFenced));

  EXPECT_FALSE(LeaseAlive(lease));
  EXPECT_TRUE(LeaseAlive(other));
  EXPECT_TRUE(FailedWith(Call("lease.revoke", {{"lease_id", lease}}), StatusCode::kNotFound));
  ExpectNothingAttachesTo(lease);

  // The deletions are durable: they survive a restart.
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_TRUE(Get("mine/1").is_null());
  EXPECT_EQ(LockStatus("L2")["held"], false);
  EXPECT_EQ(LockStatus("L1")["owner"], "next");
  EXPECT_FALSE(LeaseAlive(lease));
}

TEST_F(LeaseTest, ExpiryDeletesItsKeysAndReleasesItsLocks) {
  const uint64_t lease = Grant(200);
  const uint64_t kept = Grant(10'000);
  Ok("state.set", {{"key", "a"}, {"value", 1}, {"lease_id", lease}});
  Ok("state.patch", {{"key", "a"}, {"merge", {{"x", 1}}}});  // a patch keeps the lease
  Ok("state.set", {{"key", "b"}, {"value", 2}, {"lease_id", kept}});
  json t1 =
      Ok("lock.acquire", {{"name", "L"}, {"owner", "me"}, {"ttl_ms", 60'000}, {"lease_id", lease}});
  Ok("lock.acquire", {{"name", "Solo"}, {"owner", "me"}, {"ttl_ms", 60'000}, {"lease_id", lease}});
  auto w1 = Start("lock.acquire",
                  {{"name", "L"}, {"owner", "w1"}, {"ttl_ms", 1000}, {"wait_ms", 60'000}});
  auto w2 = Start("lock.acquire",
                  {{"name", "L"}, {"owner", "w2"}, {"ttl_ms", 1000}, {"wait_ms", 60'000}});

  Advance(199);
  EXPECT_EQ(Get("a")["value"], json({{"x", 1}}));
  EXPECT_FALSE(w1->done());
  Advance(1);
  EXPECT_TRUE(Get("a").is_null());
  EXPECT_EQ(Get("b")["value"], 2);
  ASSERT_TRUE(w1->ok());
  EXPECT_GT(w1->value()["token"].get<uint64_t>(), t1["token"].get<uint64_t>());
  EXPECT_FALSE(w2->done()) << "FIFO: only the first waiter gets the released lock";
  EXPECT_EQ(LockStatus("L")["owner"], "w1");
  EXPECT_EQ(LockStatus("Solo")["held"], false);
  EXPECT_FALSE(LeaseAlive(lease));
  EXPECT_TRUE(LeaseAlive(kept));
}

TEST_F(LeaseTest, WaiterWhoseLeaseEndedIsSkippedAtHandOff) {
  const uint64_t holder =
      Ok("lock.acquire", {{"name", "L"}, {"owner", "h"}, {"ttl_ms", 60'000}})["token"]
          .get<uint64_t>();
  const uint64_t short_lease = Grant(100);
  auto doomed = Start("lock.acquire", {{"name", "L"},
                                       {"owner", "d"},
                                       {"ttl_ms", 1000},
                                       {"wait_ms", 60'000},
                                       {"lease_id", short_lease}});
  auto next =
      Start("lock.acquire", {{"name", "L"}, {"owner", "n"}, {"ttl_ms", 1000}, {"wait_ms", 60'000}});
  Advance(100);  // the waiter's lease ends while it waits
  EXPECT_FALSE(next->done());
  Ok("lock.release", {{"name", "L"}, {"token", holder}});
  ASSERT_TRUE(doomed->done());
  EXPECT_EQ(doomed->code(), StatusCode::kNotFound);
  ASSERT_TRUE(next->ok());
  EXPECT_EQ(LockStatus("L")["owner"], "n");
}

// Between a lease's due time and its expiry timer (the host serves requests
// in between) the lease is already over: it cannot be kept alive, and nothing
// new can attach to it. Time moves here without RunTimers.
TEST_F(LeaseTest, LeasePastItsTtlIsOverEvenBeforeItsExpiryTimerRuns) {
  const uint64_t id = Grant(100);
  Ok("state.set", {{"key", "k"}, {"value", 1}, {"lease_id", id}});
  clock_.Advance(100);
  // Its key is already invisible to reads, listings and version checks.
  EXPECT_TRUE(Get("k").is_null());
  EXPECT_TRUE(Ok("state.list", {{"prefix", "k"}})["items"].empty());
  EXPECT_OK(Call("state.set", {{"key", "k"}, {"value", 2}, {"expected_version", 0}}));
  ExpectNothingAttachesTo(id);
  Advance(0);
  EXPECT_FALSE(LeaseAlive(id));
  EXPECT_EQ(Get("k")["value"], 2);  // the write made after the lapse is its own
  EXPECT_TRUE(Get("k2").is_null());
}

TEST_F(LeaseTest, BadInputIsRejected) {
  const int64_t max_ttl = EngineLimits{}.max_ttl_ms;
  for (json ttl : {json(0), json(-1), json(INT64_MIN), json(max_ttl + 1), json(INT64_MAX),
                   json(1e300), json(0.5), json("1000"), json(true), json(nullptr)}) {
    Result<json> r = Call("lease.grant", {{"ttl_ms", ttl}});
    ASSERT_TRUE(FailedWith(r, StatusCode::kInvalidParams)) << "ttl_ms " << ttl.dump();
    EXPECT_EQ(r.status().details()["field"], "ttl_ms");
  }
  EXPECT_TRUE(FailedWith(Call("lease.grant", json::object()), StatusCode::kInvalidParams));
  EXPECT_TRUE(
      FailedWith(Call("lease.grant", {{"ttl_ms", 10}, {"owner", 5}}), StatusCode::kInvalidParams));
  EXPECT_TRUE(Alive().empty()) << "no failed grant may create a lease";

  for (const char* method : {"lease.keepalive", "lease.revoke"}) {
    EXPECT_TRUE(FailedWith(Call(method, {{"lease_id", 987654}}), StatusCode::kNotFound)) << method;
    EXPECT_TRUE(FailedWith(Call(method, {{"lease_id", 0}}), StatusCode::kInvalidParams)) << method;
    EXPECT_TRUE(FailedWith(Call(method, {{"lease_id", -3}}), StatusCode::kInvalidParams)) << method;
    EXPECT_TRUE(FailedWith(Call(method, {{"lease_id", "1"}}), StatusCode::kInvalidParams))
        << method;
    EXPECT_TRUE(FailedWith(Call(method, json::object()), StatusCode::kInvalidParams)) << method;
  }
  EXPECT_TRUE(FailedWith(Call("state.set", {{"key", "k"}, {"value", 1}, {"lease_id", 987654}}),
                         StatusCode::kNotFound));
  EXPECT_TRUE(Get("k").is_null());
  // The largest TTL is accepted.
  EXPECT_EQ(Ok("lease.grant", {{"ttl_ms", max_ttl}})["expires_at_ms"], Now() + max_ttl);
}

TEST_F(LeaseTest, RestartGivesEveryLeaseItsFullTtlAgain) {
  const uint64_t a = Grant(1000, "a");
  const uint64_t b = Grant(300, "b");
  Ok("state.set", {{"key", "ka"}, {"value", 1}, {"lease_id", a}});
  Ok("state.set", {{"key", "kb"}, {"value", 1}, {"lease_id", b}});
  Ok("lock.acquire", {{"name", "La"}, {"owner", "a"}, {"ttl_ms", 60'000}, {"lease_id", a}});
  Advance(250);  // b has 50 ms left
  ASSERT_NO_FATAL_FAILURE(Reopen());

  ASSERT_TRUE(LeaseAlive(a));
  ASSERT_TRUE(LeaseAlive(b));
  EXPECT_EQ(Get("kb")["lease_id"], b);
  json list = Ok("lease.list", json::object())["leases"];
  for (const json& l : list) {
    EXPECT_EQ(l["expires_at_ms"], Now() + l["ttl_ms"].get<int64_t>()) << l.dump();
  }
  Advance(299);
  EXPECT_TRUE(LeaseAlive(b)) << "b must not expire early after the restart";
  EXPECT_EQ(Get("kb")["value"], 1);
  Advance(1);
  EXPECT_FALSE(LeaseAlive(b));
  EXPECT_TRUE(Get("kb").is_null());
  // Keepalive works on a recovered lease.
  Advance(600);
  Ok("lease.keepalive", {{"lease_id", a}});
  Advance(999);
  EXPECT_TRUE(LeaseAlive(a));
  EXPECT_EQ(LockStatus("La")["owner"], "a");
  Advance(1);
  EXPECT_FALSE(LeaseAlive(a));
  EXPECT_TRUE(Get("ka").is_null());
  EXPECT_EQ(LockStatus("La")["held"], false);

  // New lease ids do not reuse old ones.
  const uint64_t c = Grant(100);
  EXPECT_GT(c, std::max(a, b));
}

}  // namespace
}  // namespace shim::engine::test
