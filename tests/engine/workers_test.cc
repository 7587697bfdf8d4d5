// The worker registry (worker.*): register, heartbeat, deregister, list with
// a capability filter, death on a missed heartbeat (with `worker.failed` on
// events.workers) and revival. Engine level, FakeClock.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "tests/engine/engine_fixture.h"

namespace shim::engine::test {
namespace {

class WorkerTest : public EngineTest {
 protected:
  std::string Register(json params) {
    json r = Ok("worker.register", std::move(params));
    return r.is_object() ? r["worker_id"].get<std::string>() : "";
  }
  // worker_id -> description, optionally filtered by capability.
  std::map<std::string, json> List(const std::string& capability = "") {
    json p = json::object();
    if (!capability.empty()) p["capability"] = capability;
    std::map<std::string, json> out;
    const json list = Ok("worker.list", p);
    for (const json& w : list["workers"]) out[w["worker_id"].get<std::string>()] = w;
    return out;
  }
  std::string StatusOf(const std::string& id) {
    auto all = List();
    auto it = all.find(id);
    return it == all.end() ? "absent" : it->second["status"].get<std::string>();
  }
  // The events on events.workers, in order.
  std::vector<json> Events(const std::string& type = "") {
    json r =
        Ok("pubsub.history", {{"channel", "events.workers"}, {"from_seq", 1}, {"limit", 1000}});
    std::vector<json> out;
    for (const json& m : r["messages"]) {
      if (type.empty() || m["data"]["type"] == type) out.push_back(m["data"]);
    }
    return out;
  }
};

TEST_F(WorkerTest, RegisterListAndDeregister) {
  json r = Ok("worker.register", {{"worker_id", "w-gpu"},
                                  {"name", "gpu box"},
                                  {"capabilities", json::array({"gpu", "cpu"})},
                                  {"max_concurrency", 4},
                                  {"heartbeat_ttl_ms", 5000},
                                  {"metadata", {{"host", "a"}}}});
  EXPECT_EQ(r["worker_id"], "w-gpu");
  EXPECT_EQ(r["expires_at_ms"], Now() + 5000);
  Register({{"worker_id", "w-cpu"}, {"capabilities", json::array({"cpu"})}});
  Register({{"worker_id", "w-none"}});

  auto all = List();
  ASSERT_EQ(all.size(), 3u);
  const json& gpu = all["w-gpu"];
  EXPECT_EQ(gpu["name"], "gpu box");
  EXPECT_EQ(gpu["capabilities"], json::array({"gpu", "cpu"}));
  EXPECT_EQ(gpu["status"], "idle");
  EXPECT_EQ(gpu["active_tasks"], 0);
  EXPECT_EQ(gpu["max_concurrency"], 4);
  EXPECT_EQ(gpu["last_heartbeat_at_ms"], Now());
  EXPECT_EQ(all["w-cpu"]["name"], "w-cpu") << "name defaults to the id";
  EXPECT_EQ(all["w-cpu"]["max_concurrency"], 1);
  EXPECT_EQ(all["w-none"]["capabilities"], json::array());

  auto cpu = List("cpu");
  EXPECT_EQ(cpu.size(), 2u);
  EXPECT_TRUE(cpu.count("w-gpu") && cpu.count("w-cpu"));
  auto only_gpu = List("gpu");
  ASSERT_EQ(only_gpu.size(), 1u);
  EXPECT_TRUE(only_gpu.count("w-gpu"));
  EXPECT_TRUE(List("tpu").empty());

  EXPECT_EQ(Ok("worker.deregister", {{"worker_id", "w-gpu"}})["ok"], true);
  EXPECT_EQ(List().size(), 2u);
  EXPECT_TRUE(List("gpu").empty());
  EXPECT_TRUE(
      FailedWith(Call("worker.deregister", {{"worker_id", "w-gpu"}}), StatusCode::kNotFound));
  EXPECT_TRUE(
      FailedWith(Call("worker.heartbeat", {{"worker_id", "w-gpu"}}), StatusCode::kNotFound));
  // A deregistered worker's old heartbeat timer does not resurrect or kill anything.
  Advance(20'000);
  EXPECT_EQ(StatusOf("w-gpu"), "absent");
  EXPECT_TRUE(Events("worker.failed").size() == 2u) << "w-cpu and w-none missed their heartbeats";
}

TEST_F(WorkerTest, RegisterWithoutIdGetsAFreshOne) {
  const std::string a = Register(json::object());
  const std::string b = Register(json::object());
  EXPECT_FALSE(a.empty());
  EXPECT_NE(a, b);
  EXPECT_EQ(List().size(), 2u);
}

TEST_F(WorkerTest, ReRegisterReplacesCapabilitiesAndKeepsRegistrationTime) {
  Register({{"worker_id", "w"}, {"capabilities", json::array({"a"})}});
  const int64_t registered = List()["w"]["registered_at_ms"].get<int64_t>();
  Advance(10);
  Register({{"worker_id", "w"}, {"capabilities", json::array({"b"})}});
  EXPECT_TRUE(List("a").empty());
  EXPECT_EQ(List("b").size(), 1u);
  EXPECT_EQ(List()["w"]["registered_at_ms"], registered);
}

TEST_F(WorkerTest, HeartbeatKeepsAWorkerAlive) {
  Register({{"worker_id", "w"}, {"heartbeat_ttl_ms", 1000}});
  Register({{"worker_id", "quiet"}, {"heartbeat_ttl_ms", 1000}});
  for (int i = 0; i < 5; ++i) {
    Advance(900);
    json r = Ok("worker.heartbeat", {{"worker_id", "w"}});
    EXPECT_EQ(r["expires_at_ms"], Now() + 1000);
  }
  EXPECT_EQ(StatusOf("w"), "idle");
  EXPECT_EQ(List()["w"]["last_heartbeat_at_ms"], Now());
  EXPECT_EQ(StatusOf("quiet"), "dead");
  Advance(999);
  EXPECT_EQ(StatusOf("w"), "idle");
  Advance(1);
  EXPECT_EQ(StatusOf("w"), "dead");
  // Heartbeat metadata replaces the old metadata.
  Register({{"worker_id", "m"}, {"metadata", {{"v", 1}}}});
  Ok("worker.heartbeat", {{"worker_id", "m"}, {"metadata", {{"v", 2}}}});
  EXPECT_EQ(List()["m"]["metadata"], json({{"v", 2}}));
}

TEST_F(WorkerTest, MissedHeartbeatMarksDeadAndPublishesWorkerFailed) {
  Register({{"worker_id", "w1"}, {"name", "one"}, {"heartbeat_ttl_ms", 500}});
  Register({{"worker_id", "w2"}, {"heartbeat_ttl_ms", 800}});
  // A live subscriber hears about it too, after the write is durable.
  auto sub_client = std::make_shared<FakeClient>(9);
  Ok("pubsub.subscribe", {{"channel", "events.workers"}}, sub_client);
  const int before = sub_client->notifications();

  Advance(499);
  EXPECT_EQ(StatusOf("w1"), "idle");
  EXPECT_TRUE(Events("worker.failed").empty());
  Advance(1);
  EXPECT_EQ(StatusOf("w1"), "dead");
  EXPECT_EQ(StatusOf("w2"), "idle");
  auto failed = Events("worker.failed");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0]["worker_id"], "w1");
  EXPECT_EQ(failed[0]["name"], "one");
  EXPECT_EQ(failed[0]["reason"], "heartbeat_timeout");
  EXPECT_EQ(sub_client->notifications(), before + 1);

  Advance(300);
  failed = Events("worker.failed");
  ASSERT_EQ(failed.size(), 2u);
  EXPECT_EQ(failed[1]["worker_id"], "w2");
  // Dead stays dead, and is reported once.
  Advance(10'000);
  EXPECT_EQ(Events("worker.failed").size(), 2u);
  EXPECT_EQ(StatusOf("w1"), "dead");
  // Dead workers stay listed (with their capabilities) until deregistered.
  EXPECT_EQ(List().size(), 2u);
}

TEST_F(WorkerTest, DeadWorkerHeartbeatRevivesIt) {
  Register({{"worker_id", "w"}, {"heartbeat_ttl_ms", 200}, {"capabilities", json::array({"cpu"})}});
  Advance(200);
  ASSERT_EQ(StatusOf("w"), "dead");
  json r = Ok("worker.heartbeat", {{"worker_id", "w"}});
  EXPECT_EQ(r["expires_at_ms"], Now() + 200);
  EXPECT_EQ(StatusOf("w"), "idle");
  EXPECT_EQ(List("cpu").size(), 1u);
  ASSERT_EQ(Events("worker.recovered").size(), 1u);
  EXPECT_EQ(Events("worker.recovered")[0]["worker_id"], "w");
  // Revival is durable.
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(StatusOf("w"), "idle");
  // And the revived worker is watched again: it dies on its next miss.
  Advance(199);
  EXPECT_EQ(StatusOf("w"), "idle");
  Advance(1);
  EXPECT_EQ(StatusOf("w"), "dead");
  EXPECT_EQ(Events("worker.failed").size(), 2u);
}

// Between the TTL and its timer (the host serves requests in between) a
// worker is already dead: a late heartbeat does not revive it silently, it
// is reported failed and then recovered, like after the timer.
TEST_F(WorkerTest, HeartbeatAfterTheTtlButBeforeTheTimerReportsTheDeath) {
  Register({{"worker_id", "w"}, {"heartbeat_ttl_ms", 200}});
  clock_.Advance(200);  // no RunTimers
  EXPECT_EQ(StatusOf("w"), "dead");
  Ok("worker.heartbeat", {{"worker_id", "w"}});
  ASSERT_EQ(Events("worker.failed").size(), 1u);
  EXPECT_EQ(Events("worker.recovered").size(), 1u);
  EXPECT_EQ(StatusOf("w"), "idle");
  Advance(0);  // the old timer finds it alive again
  EXPECT_EQ(Events("worker.failed").size(), 1u);
}

TEST_F(WorkerTest, BadInputIsRejected) {
  for (json ttl : {json(0), json(-1), json(99), json(INT64_MAX), json(1e300), json("1000")}) {
    Result<json> r = Call("worker.register", {{"worker_id", "w"}, {"heartbeat_ttl_ms", ttl}});
    ASSERT_TRUE(FailedWith(r, StatusCode::kInvalidParams)) << "heartbeat_ttl_ms " << ttl.dump();
    EXPECT_EQ(r.status().details()["field"], "heartbeat_ttl_ms");
  }
  EXPECT_TRUE(
      FailedWith(Call("worker.register", {{"capabilities", "gpu"}}), StatusCode::kInvalidParams));
  EXPECT_TRUE(FailedWith(Call("worker.register", {{"capabilities", json::array({"gpu", 3})}}),
                         StatusCode::kInvalidParams));
  EXPECT_TRUE(FailedWith(Call("worker.register", {{"capabilities", json::array({""})}}),
                         StatusCode::kInvalidParams));
  EXPECT_TRUE(
      FailedWith(Call("worker.register", {{"max_concurrency", 0}}), StatusCode::kInvalidParams));
  EXPECT_TRUE(FailedWith(Call("worker.register", {{"worker_id", ""}}), StatusCode::kInvalidParams));
  EXPECT_TRUE(FailedWith(Call("worker.register", {{"metadata", "x"}}), StatusCode::kInvalidParams));
  EXPECT_TRUE(List().empty()) << "no failed register may add a worker";
  EXPECT_TRUE(
      FailedWith(Call("worker.heartbeat", {{"worker_id", "ghost"}}), StatusCode::kNotFound));
  EXPECT_TRUE(FailedWith(Call("worker.heartbeat", json::object()), StatusCode::kInvalidParams));
  EXPECT_TRUE(
      FailedWith(Call("worker.deregister", {{"worker_id", "ghost"}}), StatusCode::kNotFound));
  EXPECT_TRUE(FailedWith(Call("worker.list", {{"capability", 1}}), StatusCode::kInvalidParams));
}

TEST_F(WorkerTest, RestartGivesLiveWorkersTheirFullTtlAgain) {
  Register(
      {{"worker_id", "live"}, {"heartbeat_ttl_ms", 1000}, {"capabilities", json::array({"cpu"})}});
  Register({{"worker_id", "short"}, {"heartbeat_ttl_ms", 300}});
  Advance(300);
  ASSERT_EQ(StatusOf("short"), "dead");
  Advance(600);  // live has 100 ms left
  ASSERT_NO_FATAL_FAILURE(Reopen());

  EXPECT_EQ(StatusOf("short"), "dead") << "dead stays dead across a restart";
  EXPECT_EQ(StatusOf("live"), "idle");
  EXPECT_EQ(List("cpu").size(), 1u);
  Advance(999);
  EXPECT_EQ(StatusOf("live"), "idle") << "must not expire early after a restart";
  EXPECT_EQ(Events("worker.failed").size(), 1u);
  Advance(1);
  EXPECT_EQ(StatusOf("live"), "dead");
  auto failed = Events("worker.failed");
  ASSERT_EQ(failed.size(), 2u);
  EXPECT_EQ(failed[1]["worker_id"], "live");
}

}  // namespace
}  // namespace shim::engine::test
