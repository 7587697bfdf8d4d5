// SyncHost: the synchronous twin of net/engine_host.cc, for the engine
// tests (tests/engine/engine_fixture.h), the fuzz targets (tests/fuzz) and
// bench/engine_bench.cc. It owns a Store and the Engine on it and drives
// group commit as EngineHost does — Seal, Group::Write, Land — but at once,
// on the caller's thread: no committer thread and no timer. Time moves only
// when the caller moves its FakeClock and runs the timers.
//
// Every request applied through Execute is held to the rule of docs/design.md
// that nothing is answered before it is durable: a request that wrote must
// not be answered before its group lands. A broken rule, a failed group
// write, a group commit that does not settle and a Call not answered
// exactly once are faults, reported to the FaultFn given to Open: the test
// fixture fails the test, the fuzz targets abort, the benchmark skips.
//
// Single-threaded: call everything on one thread, which is the engine
// thread. No GoogleTest here, so that the fuzz targets and the benchmark
// can link it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "engine/call.h"
#include "engine/client.h"
#include "engine/engine.h"
#include "storage/store.h"

namespace shim::testing {

// One request's answer, shared with its reply callback so that it stays
// valid whenever the engine releases the reply: at once, at a Land, or when
// a server-side wait ends.
struct ReplySlot {
  int calls = 0;
  std::optional<Result<nlohmann::json>> result;
  bool done() const { return calls > 0; }
  bool ok() const { return result && result->ok(); }
  StatusCode code() const { return result ? result->status().code() : StatusCode::kOk; }
  const nlohmann::json& value() const { return result->value(); }
};

class SyncHost {
 public:
  using FaultFn = std::function<void(const std::string& what)>;

  // Opens the store, then the engine on it (`engine_options.store` is set
  // here; its clock must outlive the host). Errors: those of Store::Open
  // and Engine::Open.
  static Result<std::unique_ptr<SyncHost>> Open(const storage::StoreOptions& store_options,
                                                engine::EngineOptions engine_options,
                                                FaultFn on_fault);
  // Open with every option at its default but these: the store at `path`,
  // the engine on `clock` (which must outlive the host).
  static Result<std::unique_ptr<SyncHost>> OpenAt(const std::string& path, engine::Clock* clock,
                                                  FaultFn on_fault);
  // As Close, without the store's status.
  ~SyncHost();
  SyncHost(const SyncHost&) = delete;
  SyncHost& operator=(const SyncHost&) = delete;

  // Drops the engine — what is not committed is lost, as in a crash — and
  // closes the store. Only the destructor may follow.
  Status Close();

  engine::Engine& engine() { return *engine_; }
  storage::Store& store() { return *store_; }

  // Applies one request and commits nothing; `reply` and `reply_encoded`
  // as for Engine::Execute.
  void Execute(std::string_view method, nlohmann::json params,
               std::shared_ptr<engine::Client> client, engine::ReplyFn reply,
               engine::EncodedReplyFn reply_encoded = nullptr);
  // As above, for a method already found (net's method table); `name` is
  // what a fault calls it.
  void Execute(const engine::Engine::Method& method, std::string_view name, nlohmann::json params,
               std::shared_ptr<engine::Client> client, engine::ReplyFn reply,
               engine::EncodedReplyFn reply_encoded = nullptr);
  // As above, answering into the returned slot.
  std::shared_ptr<ReplySlot> Execute(std::string_view method, nlohmann::json params,
                                     std::shared_ptr<engine::Client> client = nullptr);

  // Seals, writes and lands the open group if one is ready: one turn of
  // EngineHost::Pump. Returns false if none was.
  bool CommitGroup();
  // Commits groups until none is ready (landing one may open the next); a
  // fault if the engine is still busy then.
  void Pump();
  // Runs the timers that are due, then Pumps.
  void RunTimers();
  // What EngineHost does while its timer is due at once: commits groups and
  // runs due timers until neither is left. A fault if that never ends (a
  // timer that is always due would spin a real server's io thread).
  void RunUntilIdle();

  // Execute, then Pump: the slot holds the reply if there is one yet (a
  // request that waits has none).
  std::shared_ptr<ReplySlot> Start(std::string_view method, nlohmann::json params,
                                   std::shared_ptr<engine::Client> client = nullptr);
  // Start of a request that must be answered once its group is committed:
  // a fault if it is not answered exactly once. Returns the reply, or
  // INTERNAL "no reply to <method>" if there was none.
  Result<nlohmann::json> Call(std::string_view method, nlohmann::json params,
                              std::shared_ptr<engine::Client> client = nullptr);

 private:
  SyncHost(std::unique_ptr<storage::Store> store, FaultFn on_fault);
  // Both Executes: `method` null for one not found by name.
  void Apply(const engine::Engine::Method* method, std::string_view name, nlohmann::json params,
             std::shared_ptr<engine::Client> client, engine::ReplyFn reply,
             engine::EncodedReplyFn reply_encoded);
  void Answered(uint64_t request);

  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<engine::Engine> engine_;
  FaultFn on_fault_;
  uint64_t next_request_ = 1;
  uint64_t applying_ = 0;  // the request inside Execute, 0 outside
  bool applying_answered_ = false;
  // Requests of the open group that were answered inside their Execute
  // after they wrote; a fault once their group is sealed with writes.
  std::vector<std::string> answered_before_durable_;
};

}  // namespace shim::testing
