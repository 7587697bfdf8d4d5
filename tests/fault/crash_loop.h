// The crash loop (tests/fault/crash_loop_test.cc, docs/fault-testing.md): a
// real `shim serve` under a mixed load from 8 client threads is SIGKILLed at
// random moments, restarted on the same data directory, and checked after
// every restart against everything the clients saw acknowledged.
//
// Files: crash_loop.h (this: options, the ledger of acknowledged facts, the
// client and the driver), crash_loop.cc (kills, restarts, recovery faults,
// the report), crash_loop_client.cc (the load, and the checks clients make
// as they go), crash_loop_verify.cc (the checks after each restart),
// crash_loop_tally.{h,cc} (load kinds, counts, check results).
//
// Every request ends as acknowledged (a result came back), refused (an
// error came back: nothing happened) or lost (the connection died first: it
// may or may not have happened). A client's connection ends at its first
// lost request, so each client has at most one request in doubt per round:
// the ledger records its possible effect next to the acknowledged state, and
// the verifier accepts either, then adopts what it found.
//
// Threads: client threads and the verifier share the Ledger under its
// mutex; the verifier runs while every client is parked.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "tests/fault/crash_loop_names.h"
#include "tests/fault/crash_loop_tally.h"
#include "tests/fault/fault_util.h"
#include "tests/support/server_process.h"

namespace shim::fault {

using SteadyClock = std::chrono::steady_clock;
using SteadyTime = SteadyClock::time_point;

struct CrashLoopOptions {
  int kills = 20;
  uint32_t seed = 0;
  std::string durability = "sync";
  // Runs after every death of the server (SIGKILL, a kill during recovery, a
  // recovery failpoint), with the data directory, before the next start:
  // the place for a simulated power cut, or for damage the checks must see.
  std::function<void(const std::string& data_dir)> between_kill_and_restart;
  // Every death is a power cut: the server runs with the test-only power-cut
  // journal (storage/power_cut.h) and, after it dies, every byte and
  // directory entry it had not synced is dropped (ServerProcess::CutPower),
  // before between_kill_and_restart runs.
  bool power_cut = false;
  // For tests of the checks themselves: count violations instead of failing,
  // and stop after the first round that found any.
  bool expect_violations = false;
};

// Wall-clock milliseconds, the clock the server's data times use.
int64_t WallMs();

// ----------------------------------------------------------------- Ledger

// A key as state.get shows it.
struct KeyState {
  bool exists = false;
  uint64_t version = 0;
  nlohmann::json value;
  bool operator==(const KeyState& o) const {
    return exists == o.exists && (!exists || (version == o.version && value == o.value));
  }
  std::string Describe() const;
  static KeyState FromGet(const nlohmann::json& result);
};

// Keys with one writer (the client): their state is known exactly.
struct OwnKeys {
  std::map<std::string, KeyState> acked;
  // The lost request's effect on every key it touches (a txn: several);
  // empty when no request of this client is in doubt.
  std::map<std::string, KeyState> if_lost;
};

struct TtlWrite {
  int64_t n = 0;
  int64_t sent_ms = 0, acked_ms = 0;  // wall; for a lost write acked_ms is the kill
  int64_t ttl_ms = 0;
};
struct TtlKey {
  std::optional<TtlWrite> acked, lost;
};
// Checks one state.get of a TTL key (sent and answered at the given wall
// times) against the writes it may show; returns the one it shows, nullopt
// when the key is absent.
std::optional<TtlWrite> CheckTtlRead(Tally& tally, const std::string& key, const TtlKey& ledger,
                                     const nlohmann::json& result, int64_t get_sent_ms,
                                     int64_t get_acked_ms);

struct LeaseLedger {
  uint64_t id = 0;  // the client's current lease, 0 = none
  int64_t ttl_ms = 0;
  SteadyTime alive_until{};  // its deadline is no earlier (acked grant/keepalive, restarts)
  bool revoke_in_doubt = false;
  std::optional<int64_t> key_n;  // acked state.set of the lease key with this lease
  bool key_in_doubt = false;
  std::set<uint64_t> ended;  // revoked (acked) or seen gone: never back
  size_t ended_counted = 0;
};

struct ChannelLedger {
  std::map<uint64_t, nlohmann::json> acked;      // seq -> data, from publish replies
  std::map<uint64_t, nlohmann::json> delivered;  // seq -> data, pushed to a subscriber (so durable)
  uint64_t verified_upto = 0;
  std::set<std::pair<int, int64_t>> seen;  // (client, n) of every message read back
  uint64_t own_last = 0;
  bool own_in_doubt = false;
};

struct ClaimRecord {
  uint64_t token = 0;
  std::string worker;
  int64_t sent_ms = 0, acked_ms = 0;
  int64_t attempt = 0;
};

struct TaskLedger {
  std::string queue;
  int64_t max_attempts = 0;  // 0: unknown (a lost submit that landed)
  nlohmann::json backoff;
  int batch = -1;  // index in Ledger::batches for tasks of a DAG batch
  std::vector<ClaimRecord> claims;
  std::vector<uint64_t> completes;              // lease tokens of acked completes
  nlohmann::json result;                        // of the acked complete
  std::map<uint64_t, std::string> fail_errors;  // lease token -> error of an acked fail
  bool expect_failed = false;  // an acked fail left it `failed` (no acked task.retry since)
  bool retry_in_doubt = false;
  int64_t not_before_ms = 0;  // no claim may be answered before (delay, backoff)
};

// One task.submit_batch: a root `a`, `b` depending on it, an aggregating
// parent `p` with children `k1`, `k2` (`k2` also depending on `a` when
// k2_depends).
struct DagBatch {
  enum Role { kA, kB, kP, kK1, kK2, kRoles };
  std::vector<std::string> ids;  // by role
  bool k2_depends = false;
};

struct WorkerLedger {
  bool registered = false;  // acked register, no acked deregister since
  bool in_doubt = false;
  int64_t max_concurrency = 0;
  SteadyTime alive_until{};
};

struct AutoCheckpoints {
  std::map<uint64_t, nlohmann::json> acked;  // id -> data
  uint64_t verified_n = 0;                   // the newest id at the last check
  int since = 0;                             // autos acked or lost since
};

// A short-heartbeat session a client opened and then left alone.
struct AbandonedSession {
  int client = 0;
  int64_t ttl_ms = 0;
  SteadyTime alive_until{};
  std::optional<nlohmann::json> checkpoint;  // data of its acked checkpoint
  bool checkpoint_in_doubt = false;
  bool closed = false, close_in_doubt = false;
  bool acked = false, ack_in_doubt = false;  // recovery.ack
};

// What the driver knows of the last restart.
struct RestartInfo {
  SteadyTime killed{};  // the kill that ended the clients' round
  int64_t killed_wall_ms = 0;
  SteadyTime started{};            // spawn of the process now serving
  int64_t longest_between_ms = 0;  // longest life of a process started and killed in between
  uint64_t revision = 0;           // sys.info at the verify, before any client is back
  int generation = 0;
};

// Everything acknowledged, shared by the clients and the verifier.
struct Ledger {
  std::mutex mu;
  uint64_t max_revision = 0;
  RestartInfo restart;
  std::map<int, OwnKeys> own;                    // client -> own keys
  std::map<std::string, uint64_t> shared_acked;  // shared CAS keys: highest acked version
  uint64_t transfer_acked = 0;                   // txn/a, txn/b: highest acked version
  std::map<std::string, TtlKey> ttl;
  std::map<int, LeaseLedger> leases;
  std::map<std::string, ChannelLedger> channels;
  std::map<int, int64_t> published_n;  // client -> last publish counter used
  std::map<std::string, std::map<uint64_t, nlohmann::json>> checkpoints;
  std::map<std::string, uint64_t> checkpoints_verified;
  std::map<int, AutoCheckpoints> autos;
  std::map<std::string, AbandonedSession> sessions;
  std::set<std::string> dirty_sessions;
  std::map<std::string, TaskLedger> tasks;
  std::set<std::string> dirty_tasks;
  std::vector<DagBatch> batches;
  std::set<size_t> dirty_batches;
  std::map<int, WorkerLedger> workers;
  std::map<std::string, std::map<uint64_t, uint64_t>> fenced;  // key -> version -> token
  std::map<std::string, size_t> fenced_counted;
  std::map<std::string, std::map<uint64_t, std::string>> lock_grants;  // lock -> token -> owner
  std::map<std::string, std::set<uint64_t>> lock_released;  // lock -> tokens released (acked)
  std::map<std::string, uint64_t> tokens_before_restart;

  void Revision(const nlohmann::json& result);
};

// Pause/resume of the clients around a kill.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  int parked = 0;
  uint64_t generation = 0;
  bool stop = false;
};

// ------------------------------------------------------------------ Client

class CrashLoop;

// One client thread: a connection, its load, and the checks it makes as it
// goes.
class Client {
 public:
  Client(CrashLoop& loop, int id, uint32_t seed);
  void Run();

 private:
  struct HeldTask {
    std::string id;
    uint64_t token;
    int64_t attempt;
    std::string worker;
  };
  struct BatchInDoubt {
    nlohmann::json params;
    int64_t sent_ms;
    int64_t delay_ms;
    bool k2_depends;
  };

  // One request. `allowed`: the errors this operation may legitimately get;
  // any other error is a failed check. A lost reply drops the connection:
  // the caller records the doubt and returns.
  Outcome Call(Load load, std::string_view method, const nlohmann::json& params,
               std::initializer_list<StatusCode> allowed = {});
  void OnConnect();
  void Step();
  void DrainMessages();
  int Pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  bool OneIn(int n) { return Pick(n) == 0; }

  // Own keys (crash_loop_client.cc).
  void OwnWrite(Load load);
  void OwnBadCas();
  void OwnRead();
  void Incr();
  void PairTxn(bool wrong);
  void TransferTxn();
  void SharedCas();
  void TtlSet();
  void TtlRead();
  enum class LeaseAction { kKeepalive, kSetKey, kRevoke };  // each grants a lease first if none
  void LeaseOp(LeaseAction action);
  void Publish(bool own);
  void Subscribe(uint64_t from_seq);
  void LockCycle();
  void StaleFenceProbe();
  // Tasks.
  void Submit(bool delayed);
  void SubmitBatch();
  void ResubmitBatchInDoubt();
  void Claim();
  enum class FinishAction { kComplete, kCompleteClaimNext, kFailRetry, kFailFinal, kExtend };
  void Finish(FinishAction action);  // claims instead when nothing is held
  void RetryFailed();
  void RecordClaims(const nlohmann::json& tasks, const std::string& worker, int64_t sent_ms,
                    int64_t acked_ms, Load load);
  void RecordBatch(const nlohmann::json& ids, bool k2_depends, int64_t not_before_ms);
  void RetryCompleteInDoubt();
  // A lease reported gone (NOT_FOUND) at `acked`: it must have been due.
  void LeaseGone(SteadyTime acked);
  // Workers, checkpoints, sessions.
  void WorkerHeartbeatIfDue();
  void WorkerOp();
  void SaveCheckpoint();
  void AutoCheckpoint();
  enum class SessionAction { kOpen, kClose, kRecover };  // close and recover open one if none
  void SessionOp(SessionAction action);

  CrashLoop& loop_;
  const int id_;
  std::mt19937 rng_;
  std::unique_ptr<net::LineClient> conn_;
  std::vector<HeldTask> held_;
  std::optional<HeldTask> complete_in_doubt_;
  nlohmann::json complete_in_doubt_result_;
  std::vector<std::string> failed_by_me_;  // tasks this client failed for good (acked)
  std::optional<BatchInDoubt> batch_in_doubt_;
  std::map<int, uint64_t> released_token_;  // lock -> a token this client released (acked)
  std::set<int> acquire_in_doubt_;
  std::vector<std::string> my_sessions_;  // abandoned sessions not yet acked or closed
  uint64_t subscription_ = 0;
  uint64_t last_delivered_ = 0;  // shared channel: the last seq pushed to this client
  SteadyTime last_heartbeat_{};
  bool worker_wanted_ = true;
  int64_t counter_ = 0;
  std::vector<int> deck_;  // the operations of Step, shuffled
  size_t next_op_ = 0;
};

// --------------------------------------------------------------- CrashLoop

class CrashLoop {
 public:
  explicit CrashLoop(CrashLoopOptions options);
  void Run();

  Tally& tally() { return tally_; }
  // The acknowledged count of every load kind is at least its minimum.
  void ExpectMinimumLoad();
  const CrashLoopOptions& options() const { return options_; }

 private:
  friend class Client;
  void Setup();
  void StartServer();
  void KillServer();
  // After a kill: faults during recovery (a kill before ready, a recovery
  // failpoint), then a start that comes up; fills ledger_.restart.
  void Restart(SteadyTime killed);
  void AfterDeath();
  void WaitParked();
  void Resume();

  // Checks the recovered server against the ledger. `full`: from the start.
  void Verify(bool full);
  void VerifyOwnKeys(net::LineClient& c);
  void VerifySharedKeys(net::LineClient& c);
  void VerifyTtlKeys(net::LineClient& c);
  void VerifyLeases(net::LineClient& c);
  void VerifyLocks(net::LineClient& c);
  void VerifyChannel(net::LineClient& c, const std::string& channel, bool full);
  void VerifyCheckpoints(net::LineClient& c, bool full);
  void VerifyAutoCheckpoints(net::LineClient& c);
  void VerifySessions(net::LineClient& c, bool full);
  void VerifyWorkers(net::LineClient& c);
  void VerifyTasks(net::LineClient& c, bool full);
  void VerifyBatches(net::LineClient& c, bool full,
                     const std::map<std::string, nlohmann::json>& known);
  void VerifyTaskEvents(net::LineClient& c, const std::string& queue);
  // Waits (bounded) until every cascade and every abandoned session has
  // settled, before the final pass checks their end states.
  void Settle(net::LineClient& c);
  // Liveness that restarts with a full TTL: true when `alive_until` was after
  // the kill, no process in between lived as long as the TTL, and the
  // current one has not yet lived as long as the TTL at `now`.
  bool CertainlyAlive(SteadyTime alive_until, int64_t ttl_ms, SteadyTime now) const;

  CrashLoopOptions options_;
  testing::ServerProcess server_;
  Ledger ledger_;
  Tally tally_;
  Gate gate_;
  std::atomic<uint64_t> acked_ops_{0}, refused_ops_{0}, lost_ops_{0};
  std::mt19937 rng_;
  uint64_t restart_revision_ = 0;
  int64_t ready_ms_ = 200;  // how long the last start took to answer
  int recovery_kills_ = 0, failpoint_deaths_ = 0, failpoints_unfired_ = 0, double_kills_ = 0;
  bool final_pass_ = false;
};

}  // namespace shim::fault
