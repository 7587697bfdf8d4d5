// Engine: the single-threaded, deterministic core behind every method.
//
// Owns the in-memory indexes of all modules (state, pub/sub, ...), rebuilt
// from the store at Open. It does no I/O of its own besides store reads:
// no sockets, sleeps or clock reads except through the injected Clock, and
// no threads once open (Open loads the key table on a second thread while
// the other modules recover, and joins it before it returns). The host
// (net/engine_host.h in the server, tests directly) drives it:
//
//   engine->Execute("state.set", params, client, reply);   // apply
//   if (engine->ReadyToSeal()) {                             // group commit
//     auto group = engine->Seal();
//     Status s = group->Write();          // any thread; fsync per durability
//     engine->Land(*group, s);            // releases replies, deliveries
//   }
//   engine->RunTimers();   // when NextTimerInMs() says so
//
// At most one sealed group is in flight. If a write fails, every reply of
// that group and of the open group fails with INTERNAL and the engine
// reloads its state from the store, the only truth after a failed write.
// If that reload fails too, memory can no longer be trusted to plan writes
// on, and the engine turns read-only (as LevelDB does on a background
// error): every method that writes is answered READ_ONLY, reads and
// subscriptions go on, and only a new Open (a restart) clears it.
// All methods: engine thread only, except Group::Write.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/call.h"
#include "engine/clock.h"
#include "engine/core.h"
#include "engine/group.h"
#include "engine/sessions/risk_model.h"
#include "storage/store.h"

namespace shim::engine {

class StateModule;
class PubSubModule;
class LeaseModule;
class LockModule;
class WorkerModule;
class TaskModule;
class SessionModule;

struct EngineOptions {
  Clock* clock = nullptr;           // required; outlives the engine
  storage::Store* store = nullptr;  // required; outlives the engine
  EngineLimits limits;
  RiskConfig risk;  // risk model thresholds (docs/risk-model.md)
};

// How long one module's Recover() took at the last Open (monotonic ms, from
// the injected clock). Shown in the startup log line so a slow restart says
// where its time went.
struct RecoveryPhase {
  const char* name;
  int64_t ms;
};

// Why the engine takes no more writes (Engine::read_only()).
struct ReadOnlyState {
  int64_t since_ms = 0;  // wall clock, when the reload failed
  std::string cause;     // the failed reload's Status message
};

struct EngineStats {
  uint64_t groups = 0;            // groups committed with at least one write
  uint64_t grouped_commands = 0;  // write commands in those groups
  uint64_t failed_groups = 0;
};

class Engine {
 public:
  // Recovers every module from the store. Errors: INTERNAL on a store read
  // failure or a corrupt record.
  static Result<std::unique_ptr<Engine>> Open(const EngineOptions& options);
  ~Engine();

  // What the layers that route a method need to know of it, declared once
  // where it is registered (net/method_table.h builds the wire's one table
  // from these).
  struct MethodTraits {
    // May change what is stored: it plans writes into a group (a method
    // that writes only sometimes, e.g. recovery.check with `acknowledge`,
    // counts). Refused while the engine is read-only.
    bool writes = false;
    // May answer through Execute's `reply_encoded` (Call::reply_encoded).
    bool answers_encoded = false;
  };
  // A registered method, found once per request and then executed.
  class Method {
   public:
    const MethodTraits& traits() const { return traits_; }
    // True if the method may answer through Execute's `reply_encoded`.
    bool answers_encoded() const { return traits_.answers_encoded; }
    bool writes() const { return traits_.writes; }

   private:
    friend class Engine;
    std::function<void(Call&)> handler_;
    MethodTraits traits_;
  };
  // The engine method called `method`, or null if there is none (net then
  // answers METHOD_NOT_FOUND).
  const Method* FindMethod(std::string_view method) const;
  bool HasMethod(std::string_view method) const { return FindMethod(method) != nullptr; }
  // Every registered method, in no particular order: what net's method
  // table routes to the engine.
  struct NamedMethod {
    std::string_view name;
    const Method* method;
  };
  std::vector<NamedMethod> Methods() const;
  // Their names: what tables keyed by method may hold.
  std::vector<std::string_view> MethodNames() const;
  // Applies one request. `reply` is called exactly once: at once, after the
  // group holding the request's writes (or anything it observed) is durable,
  // or when a server-side wait ends. While read-only, a method that writes
  // is answered READ_ONLY without running.
  // `reply_encoded`, if given, may take a success instead of `reply`, as
  // text (Call::reply_encoded); only methods for which AnswersEncoded is
  // true use it.
  void Execute(const Method& method, nlohmann::json params, std::shared_ptr<Client> client,
               ReplyFn reply, EncodedReplyFn reply_encoded = nullptr);
  // As above by name; an unknown method is answered INVALID_PARAMS.
  void Execute(std::string_view method, nlohmann::json params, std::shared_ptr<Client> client,
               ReplyFn reply, EncodedReplyFn reply_encoded = nullptr);
  // True if `method` may answer through Execute's `reply_encoded`.
  bool AnswersEncoded(std::string_view method) const {
    const Method* m = FindMethod(method);
    return m && m->answers_encoded();
  }
  // Ends the server-side waits of a connection that will send nothing
  // more (it closed, or half-closed: docs/design.md, style rule 13): each waiting
  // lock.acquire is answered TIMEOUT, each waiting claim (task.claim,
  // claim_next) with no tasks, at once, and their places (waiters per lock,
  // waiting claims) are free again. Requests that do not wait are answered
  // as usual.
  void EndWaits(uint64_t client_id);
  // Forgets a connection: its waits end (as EndWaits) and its
  // subscriptions are dropped.
  void OnClientClosed(uint64_t client_id);
  // A connection whose Notify refused has drained its outbound buffer below
  // the limit: paced output (pub/sub replays) continues.
  void OnClientWritable(uint64_t client_id);

  // Group commit. ReadyToSeal: there is an open group to commit and none in
  // flight.
  bool ReadyToSeal() const;
  // While read-only, a sealed group that holds writes anyway (a method
  // registered without `writes` that wrote) is refused: its Write() writes
  // nothing and its replies are answered READ_ONLY at Land.
  std::unique_ptr<Group> Seal();
  // A failed `write_status` fails the group and the open group, then
  // reloads from the store; a failed reload makes the engine read-only.
  void Land(Group& group, const Status& write_status);
  // Set once a reload after a failed write failed; nullopt otherwise.
  const std::optional<ReadOnlyState>& read_only() const { return read_only_; }
  // True while anything is pending or in flight (shutdown waits on this).
  bool busy() const;
  // Bytes of replies held until a commit lands (Core::held_reply_bytes):
  // the host stops taking requests while this is too much.
  size_t held_reply_bytes() const { return core_.held_reply_bytes(); }

  // Timers: runs what is due, at most kTimerCallbacksPerTurn callbacks per
  // clock and one slice of a pending task cascade (or, when none is
  // pending, of a queue.drain or queue.delete); NextTimerInMs is the
  // delay until the next one (0 while more is due). While read-only only
  // the pacing timers run (Core::pacing_timers): the others act on data
  // (TTLs, leases, liveness, deadlines) and would write.
  static constexpr size_t kTimerCallbacksPerTurn = 4096;
  void RunTimers();
  std::optional<int64_t> NextTimerInMs() const;

  uint64_t revision() const { return core_.revision(); }
  const EngineStats& stats() const { return stats_; }
  // Per-module recovery times of the last Recover(), in recovery order.
  const std::vector<RecoveryPhase>& recovery_phases() const { return recovery_phases_; }
  // Engine-side figures for sys.info / sys.stats.
  nlohmann::json Describe() const;

 private:
  using Handler = std::function<void(Call&)>;
  // Finds by string_view without building a std::string per request.
  struct NameHash : std::hash<std::string_view> {
    using is_transparent = void;
  };
  explicit Engine(const EngineOptions& options);
  Status Recover();
  void RegisterMethods();
  void Register(std::string name, Handler handler, MethodTraits traits);
  void FailEffects(Group& group, const Status& status);
  // Reloads every module from the store after a failed write; turns the
  // engine read-only if that fails.
  void Reload();
  Status ReadOnlyError() const;

  Core core_;
  // Declaration order is construction order: later modules use earlier ones.
  std::unique_ptr<PubSubModule> pubsub_;
  std::unique_ptr<LeaseModule> leases_;
  std::unique_ptr<LockModule> locks_;
  std::unique_ptr<StateModule> state_;
  std::unique_ptr<WorkerModule> workers_;
  std::unique_ptr<TaskModule> tasks_;
  std::unique_ptr<SessionModule> sessions_;
  std::unordered_map<std::string, Method, NameHash, std::equal_to<>> methods_;
  EngineStats stats_;
  std::vector<RecoveryPhase> recovery_phases_;
  std::optional<ReadOnlyState> read_only_;
};

}  // namespace shim::engine
