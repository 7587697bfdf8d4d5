// Engine test harness: a real Store in a TempDir, a FakeClock, an Engine,
// and helpers that drive the group-commit cycle by hand the way the server's
// host does (Execute, Seal, Group::Write, Land). Also FakeClient, a
// connection double that records notifications and can refuse them.
// Single-threaded, no sockets, no sleeps: time moves only by clock().Advance.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/client.h"
#include "engine/clock.h"
#include "engine/engine.h"
#include "storage/store.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_util.h"

namespace shim::engine::test {

using nlohmann::json;

// What a reply callback received, shared with the callback so that it stays
// valid whenever the engine releases the reply.
struct PendingReply {
  int calls = 0;
  std::optional<Result<json>> result;
  bool done() const { return calls > 0; }
};

// A connection as the engine sees it. Records every notification; when
// refusing (or out of budget) it rejects unforced ones, like a session whose
// outbound buffer is full.
class FakeClient final : public Client {
 public:
  struct Note {
    std::string method;
    json params;
    bool forced;
  };

  explicit FakeClient(uint64_t id) : id_(id) {}
  uint64_t id() const override { return id_; }
  bool Notify(std::string_view method, const json& params, bool force) override {
    if (!force && (refuse_ || (budget_ && *budget_ == 0))) {
      ++refused_;
      return false;
    }
    if (!force && budget_) --*budget_;
    notes_.push_back({std::string(method), params, force});
    return true;
  }
  // Keeps the text as the engine encoded it, then records it like Notify.
  bool NotifyEncoded(std::string_view method, std::string_view params_json, bool force) override {
    encoded_.emplace_back(params_json);
    return Client::NotifyEncoded(method, params_json, force);
  }
  bool closed() const override { return closed_; }
  size_t outbound_limit() const override { return outbound_limit_; }

  // Params texts passed to NotifyEncoded, in arrival order (refused ones too).
  const std::vector<std::string>& encoded() const { return encoded_; }

  // Records a marker among the notifications (e.g. "the reply arrived here").
  void Mark(std::string label) { notes_.push_back({std::move(label), nullptr, false}); }

  void set_refuse(bool refuse) { refuse_ = refuse; }
  // Accepts `n` more unforced notifications, then refuses. nullopt: no limit.
  void set_budget(std::optional<size_t> n) { budget_ = n; }
  void set_closed(bool closed) { closed_ = closed; }
  void set_outbound_limit(size_t bytes) { outbound_limit_ = bytes; }
  int refused() const { return refused_; }

  const std::vector<Note>& notes() const { return notes_; }
  void clear() { notes_.clear(); }
  // The notifications with the given method, in arrival order.
  std::vector<json> Of(std::string_view method) const {
    std::vector<json> out;
    for (const Note& n : notes_) {
      if (n.method == method) out.push_back(n.params);
    }
    return out;
  }
  // Seqs of the pubsub.message notifications (optionally of one channel).
  std::vector<uint64_t> Seqs(std::string_view channel = {}) const {
    std::vector<uint64_t> out;
    for (const json& m : Of("pubsub.message")) {
      if (channel.empty() || m["channel"] == channel) out.push_back(m["seq"].get<uint64_t>());
    }
    return out;
  }

 private:
  uint64_t id_;
  bool refuse_ = false;
  std::optional<size_t> budget_;
  bool closed_ = false;
  size_t outbound_limit_ = std::numeric_limits<size_t>::max();
  int refused_ = 0;
  std::vector<Note> notes_;
  std::vector<std::string> encoded_;
};

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(Open()); }
  void TearDown() override { Close(); }

  void Open() {
    storage::StoreOptions so;
    so.path = dir_.Sub("data");
    ASSERT_OK_AND_ASSIGN(store_, storage::Store::Open(so));
    EngineOptions eo;
    eo.clock = &clock_;
    eo.store = store_.get();
    eo.limits = limits_;
    ASSERT_OK_AND_ASSIGN(engine_, Engine::Open(eo));
  }

  void Close() {
    engine_.reset();
    if (store_) EXPECT_OK(store_->Close());
    store_.reset();
  }

  // Closes engine and store (everything committed is on disk) and opens both
  // again on the same directory, as a server restart does.
  void Reopen() {
    ASSERT_FALSE(engine_->busy()) << "reopen with uncommitted work";
    Close();
    ASSERT_NO_FATAL_FAILURE(Open());
  }

  // Applies one request without committing anything.
  std::shared_ptr<PendingReply> Execute(const std::string& method, json params,
                                        std::shared_ptr<Client> client = nullptr) {
    auto pending = std::make_shared<PendingReply>();
    engine_->Execute(method, std::move(params), std::move(client), [pending](Result<json> r) {
      ++pending->calls;
      pending->result = std::move(r);
    });
    return pending;
  }

  // Commits the open group, if any, as the host does. Returns true if there
  // was one.
  bool CommitGroup() {
    if (!engine_->ReadyToSeal()) return false;
    std::unique_ptr<Group> group = engine_->Seal();
    Status s = group->Write();
    EXPECT_OK(s);
    engine_->Land(*group, s);
    return true;
  }

  // Commits until nothing is pending (e.g. after timers wrote).
  void Settle() {
    for (int i = 0; i < 10 && CommitGroup(); ++i) {
    }
    EXPECT_FALSE(engine_->busy());
  }

  void RunTimers() {
    engine_->RunTimers();
    Settle();
  }

  // One request through the full cycle: execute, then seal, write and land
  // its group. A request that wrote must not be answered before Land: a
  // reply is an acknowledgement, and acknowledgements follow durability.
  Result<json> Call(const std::string& method, json params, std::shared_ptr<Client> client = nullptr) {
    auto pending = Execute(method, std::move(params), std::move(client));
    if (engine_->ReadyToSeal()) {
      std::unique_ptr<Group> group = engine_->Seal();
      const bool wrote = group->has_writes();
      EXPECT_FALSE(wrote && pending->done()) << method << " replied before its write was durable";
      Status s = group->Write();
      EXPECT_OK(s);
      EXPECT_FALSE(wrote && pending->done()) << method << " replied before Land";
      engine_->Land(*group, s);
    }
    EXPECT_EQ(pending->calls, 1) << method << ": reply must be called exactly once";
    EXPECT_FALSE(engine_->busy());
    if (!pending->result) return Status::Internal("no reply to " + method);
    return std::move(*pending->result);
  }

  // Call that must succeed; returns the result (null json on failure, with
  // the test marked failed).
  json Ok(const std::string& method, json params, std::shared_ptr<Client> client = nullptr) {
    Result<json> r = Call(method, std::move(params), std::move(client));
    EXPECT_TRUE(r.ok()) << method << ": " << r.status().ToString();
    return r.ok() ? r.value() : json();
  }

  testing::TempDir dir_;
  FakeClock clock_;
  EngineLimits limits_;  // change, then Reopen(), to test other limits
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<Engine> engine_;
};

// gtest helper: `result` failed with `code`.
inline ::testing::AssertionResult FailedWith(const Result<json>& result, StatusCode code) {
  if (result.ok()) {
    return ::testing::AssertionFailure() << "expected " << StatusCodeReason(code) << ", got OK "
                                         << result.value().dump();
  }
  if (result.status().code() != code) {
    return ::testing::AssertionFailure() << "expected " << StatusCodeReason(code) << ", got "
                                         << result.status().ToString();
  }
  return ::testing::AssertionSuccess();
}

}  // namespace shim::engine::test
