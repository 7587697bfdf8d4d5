// Fixture for the task-queue engine tests (tests/engine/tasks_*_test.cc):
// the engine fixture (tests/engine/engine_fixture.h) on a store that needs
// no fsync, with task shorthands. Get() here is task.get.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/client.h"
#include "storage/store.h"
#include "tests/engine/engine_fixture.h"

namespace shim::engine::taskstest {

using nlohmann::json;
using test::FailedWith;
using testing::FakeClient;
using testing::ReplySlot;

class TasksTest : public test::EngineTest {
 protected:
  void SetUp() override {
    // Nothing here depends on fsync: on tmpfs (when there is one) the
    // store's open/flush/close cost per test drops several-fold, and a
    // Reopen closes the store cleanly.
    char shm[] = "/dev/shm/shim-tasks-XXXXXX";
    if (::access("/dev/shm", W_OK) == 0 && ::mkdtemp(shm)) store_options_.path = shm;
    store_options_.durability = storage::Durability::kAsync;
    EngineTest::SetUp();
  }
  void TearDown() override {
    EngineTest::TearDown();
    if (store_options_.path.rfind("/dev/shm/", 0) == 0) {
      std::error_code ec;
      std::filesystem::remove_all(store_options_.path, ec);
    }
  }

  // ---- task shorthands ---------------------------------------------------
  std::string Submit(json task) {
    if (!task.contains("queue")) task["queue"] = "q";
    json r = Ok("task.submit", std::move(task));
    return r.is_object() ? r.value("task_id", "") : "";
  }
  std::vector<std::string> SubmitBatch(json tasks) {
    json r = Ok("task.submit_batch", {{"tasks", std::move(tasks)}});
    std::vector<std::string> out;
    if (r.is_object()) {
      for (const json& id : r["task_ids"]) out.push_back(id);
    }
    return out;
  }
  json Get(const std::string& id) { return Ok("task.get", {{"task_id", id}}); }
  std::string StateOf(const std::string& id) {
    Result<json> r = Call("task.get", {{"task_id", id}});
    return r.ok() ? r.value()["state"].get<std::string>() : "absent";
  }
  // How many of `ids` are in `state` ("absent": unknown to task.get).
  size_t CountState(const std::vector<std::string>& ids, const std::string& state) {
    size_t n = 0;
    for (const std::string& id : ids) n += StateOf(id) == state;
    return n;
  }
  // Runs engine turns (the host does one per timer wake-up) until nothing
  // is due now: no slice of a cascade or of a queue.drain / queue.delete
  // is pending. Returns how many it took.
  int RunTurns() {
    int turns = 0;
    while (engine_->NextTimerInMs() == std::optional<int64_t>(0) && turns < 100'000) {
      engine_->RunTimers();
      Pump();
      ++turns;
    }
    return turns;
  }
  // Claims at once (no wait); returns the claimed tasks.
  json Claim(const std::string& worker, const std::string& queue = "q", int max = 1,
             std::shared_ptr<Client> client = nullptr) {
    json r = Ok("task.claim", {{"queues", {queue}}, {"worker_id", worker}, {"max", max}},
                std::move(client));
    return r.is_object() ? r["tasks"] : json::array();
  }
  // Claims exactly one task; null json if none.
  json ClaimOne(const std::string& worker, const std::string& queue = "q",
                std::shared_ptr<Client> client = nullptr) {
    json tasks = Claim(worker, queue, 1, std::move(client));
    return tasks.empty() ? json() : tasks[0];
  }
  // Ids of the tasks a worker gets claiming one at a time until none is left.
  std::vector<std::string> DrainIds(const std::string& worker, const std::string& queue = "q") {
    std::vector<std::string> out;
    for (int i = 0; i < 10'000; ++i) {
      json t = ClaimOne(worker, queue);
      if (t.is_null()) break;
      out.push_back(t["task_id"]);
      Ok("task.complete", {{"task_id", t["task_id"]}, {"lease_token", t["lease_token"]}});
    }
    return out;
  }
  // A claim that waits server-side; the slot is answered when it is served.
  std::shared_ptr<ReplySlot> WaitClaim(const std::string& worker, std::shared_ptr<Client> client,
                                       const std::string& queue = "q", int64_t wait_ms = 60'000) {
    return Start("task.claim", {{"queues", {queue}}, {"worker_id", worker}, {"wait_ms", wait_ms}},
                 std::move(client));
  }
  Result<json> Complete(const json& claimed, json result = nullptr) {
    return Call("task.complete", {{"task_id", claimed["task_id"]},
                                  {"lease_token", claimed["lease_token"]},
                                  {"result", result}});
  }
  Result<json> Fail(const json& claimed, bool retry = true, const std::string& error = "boom") {
    return Call("task.fail", {{"task_id", claimed["task_id"]},
                              {"lease_token", claimed["lease_token"]},
                              {"error", error},
                              {"retry", retry}});
  }
  std::string Register(const std::string& id, json extra = json::object()) {
    extra["worker_id"] = id;
    json r = Ok("worker.register", std::move(extra));
    return r.is_object() ? r.value("worker_id", "") : "";
  }
  json Stats(const std::string& queue = "q") { return Ok("queue.stats", {{"queue", queue}}); }

  // The events on channel events.<queue>, in order, optionally of one task.
  std::vector<json> Events(const std::string& queue = "q", const std::string& task_id = "") {
    std::vector<json> out;
    int64_t from = 1;
    for (int page = 0; page < 1000; ++page) {
      json r = Ok("pubsub.history",
                  {{"channel", "events." + queue}, {"from_seq", from}, {"limit", 1000}});
      if (!r.is_object() || r["messages"].empty()) break;
      for (const json& m : r["messages"]) {
        if (task_id.empty() || m["data"]["task_id"] == task_id) out.push_back(m["data"]);
      }
      from = r["next_seq"].get<int64_t>();
    }
    return out;
  }
  std::vector<std::string> EventTypes(const std::string& queue, const std::string& task_id) {
    std::vector<std::string> out;
    for (const json& e : Events(queue, task_id)) out.push_back(e["type"]);
    return out;
  }
  uint64_t Revision() { return Ok("sys.ping", json::object())["revision"].get<uint64_t>(); }
};

}  // namespace shim::engine::taskstest
