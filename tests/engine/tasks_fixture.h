// Fixture for the task-queue engine tests (tests/engine/tasks_*_test.cc): a
// real Store in a TempDir, a FakeClock and an Engine, driven the way the
// server's host drives it (Execute, then Seal / Group::Write / Land while
// ReadyToSeal; RunTimers when time moves). Replies land in shared slots so a
// test can start a claim that waits and look at it later. RecordingClient is
// a connection double that records notifications (task.cancelled).
// Single-threaded, no sockets, no sleeps: time moves only through Advance().
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
#include <string_view>
#include <vector>

#include "engine/client.h"
#include "engine/clock.h"
#include "engine/engine.h"
#include "storage/store.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_util.h"

namespace shim::engine::taskstest {

using nlohmann::json;

// One request's answer, shared with the reply callback.
struct Slot {
  int calls = 0;
  std::optional<Result<json>> result;
  bool done() const { return calls > 0; }
  bool ok() const { return result && result->ok(); }
  const json& value() const { return result->value(); }
};

class RecordingClient final : public Client {
 public:
  explicit RecordingClient(uint64_t id) : id_(id) {}
  uint64_t id() const override { return id_; }
  bool Notify(std::string_view method, const json& params, bool) override {
    notes_.push_back({std::string(method), params});
    return true;
  }
  bool closed() const override { return closed_; }
  void set_closed() { closed_ = true; }
  // Params of the notifications with this method, in order.
  std::vector<json> Of(std::string_view method) const {
    std::vector<json> out;
    for (const auto& [m, p] : notes_) {
      if (m == method) out.push_back(p);
    }
    return out;
  }

 private:
  uint64_t id_;
  bool closed_ = false;
  std::vector<std::pair<std::string, json>> notes_;
};

class TasksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Nothing here depends on fsync: on tmpfs (when there is one) the
    // store's open/flush/close cost per test drops several-fold.
    char shm[] = "/dev/shm/shim-tasks-XXXXXX";
    data_dir_ =
        ::access("/dev/shm", W_OK) == 0 && ::mkdtemp(shm) ? std::string(shm) : dir_.Sub("data");
    ASSERT_NO_FATAL_FAILURE(Open());
  }
  void TearDown() override {
    Close();
    if (data_dir_.rfind("/dev/shm/", 0) == 0) {
      std::error_code ec;
      std::filesystem::remove_all(data_dir_, ec);
    }
  }

  void Open() {
    storage::StoreOptions so;
    so.path = data_dir_;
    // Nothing here depends on fsync; a Reopen closes the store cleanly.
    so.durability = storage::Durability::kAsync;
    ASSERT_OK_AND_ASSIGN(store_, storage::Store::Open(so));
    EngineOptions eo;
    eo.clock = &clock_;
    eo.store = store_.get();
    ASSERT_OK_AND_ASSIGN(engine_, Engine::Open(eo));
  }

  void Close() {
    engine_.reset();
    if (store_) EXPECT_OK(store_->Close());
    store_.reset();
  }

  // A server restart on the same data; the clock keeps running.
  void Reopen() {
    Pump();
    Close();
    ASSERT_NO_FATAL_FAILURE(Open());
  }

  void Pump() {
    for (int i = 0; i < 100 && engine_->ReadyToSeal(); ++i) {
      std::unique_ptr<Group> group = engine_->Seal();
      Status s = group->Write();
      EXPECT_OK(s);
      engine_->Land(*group, s);
    }
    EXPECT_FALSE(engine_->busy());
  }

  std::shared_ptr<Slot> Start(const std::string& method, json params,
                              std::shared_ptr<Client> client = nullptr) {
    auto slot = std::make_shared<Slot>();
    engine_->Execute(method, std::move(params), std::move(client), [slot](Result<json> r) {
      ++slot->calls;
      slot->result = std::move(r);
    });
    Pump();
    return slot;
  }

  Result<json> Call(const std::string& method, json params,
                    std::shared_ptr<Client> client = nullptr) {
    auto slot = Start(method, std::move(params), std::move(client));
    EXPECT_EQ(slot->calls, 1) << method << " must be answered exactly once";
    if (!slot->result) return Status::Internal("no reply to " + method);
    return *slot->result;
  }

  json Ok(const std::string& method, json params, std::shared_ptr<Client> client = nullptr) {
    const std::string shown = params.dump();
    Result<json> r = Call(method, std::move(params), std::move(client));
    EXPECT_TRUE(r.ok()) << method << " " << shown.substr(0, 300) << ": " << r.status().ToString();
    return r.ok() ? r.value() : json();
  }

  // Moves both clocks and runs what fell due, committing its writes.
  void Advance(int64_t ms) {
    clock_.Advance(ms);
    engine_->RunTimers();
    Pump();
  }
  int64_t Now() const { return clock_.NowMs(); }

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
  std::shared_ptr<Slot> WaitClaim(const std::string& worker, std::shared_ptr<Client> client,
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
  std::shared_ptr<RecordingClient> NewClient() {
    return std::make_shared<RecordingClient>(next_client_id_++);
  }

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

  testing::TempDir dir_;
  std::string data_dir_;
  FakeClock clock_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<Engine> engine_;
  uint64_t next_client_id_ = 1;
};

// gtest predicate: `r` failed with `code`.
inline ::testing::AssertionResult FailedWith(const Result<json>& r, StatusCode code) {
  if (r.ok()) {
    return ::testing::AssertionFailure()
           << "expected " << StatusCodeReason(code) << ", got OK " << r.value().dump();
  }
  if (r.status().code() != code) {
    return ::testing::AssertionFailure()
           << "expected " << StatusCodeReason(code) << ", got " << r.status().ToString();
  }
  return ::testing::AssertionSuccess();
}

}  // namespace shim::engine::taskstest
