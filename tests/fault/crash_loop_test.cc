// The crash loop: a real `shim serve --durability sync` under a mixed load
// from 8 client threads is SIGKILLed at random moments, restarted on the
// same data directory, and checked after every restart against everything
// the clients saw acknowledged. Clients reconnect and carry on.
//
// The load, per client (weights in Client::Step):
//   - state.set and CAS (expected_version) on its own keys, one writer per
//     key, so the version a write creates is known exactly; deliberate CAS
//     with a wrong version, which must conflict and report the right one;
//   - CAS on keys shared by all clients (read, then set at expected_version);
//   - publishes to its own channel and to one shared channel;
//   - lock.acquire -> read -> fenced CAS write -> lock.release, with short
//     lock TTLs and occasional stalls past them, so fences do reject; and
//     probes that write with a token it already released (must be FENCED);
//   - task.submit, task.claim, task.complete, some tasks with leases short
//     enough to lapse while held, so stale completes happen;
//   - checkpoint.save.
// Every request and its outcome is recorded: acknowledged (a result came
// back), refused (an error came back: nothing happened) or lost (the
// connection died first: it may or may not have happened).
//
// After each restart (clients parked) the verifier checks, and counts:
//   - revision: sys.info's revision >= every revision any reply carried;
//   - own keys: version in [acked, acked + 1 if a write was lost], the value
//     the write of that version carried;
//   - shared keys: version >= the highest acked CAS, value written at it;
//   - channels: no gap in seqs, every acked seq present with its payload, no
//     payload twice, none nobody sent;
//   - checkpoints: checkpoint.get by each acked id returns its data;
//   - tasks: every acked submit exists; every acked complete is `completed`;
//     no task has two acked completes, nor an acked claim with a newer lease
//     token than its acked complete (a stale complete that was accepted);
//   - fencing: each fenced key's writes, by version, carry non-decreasing
//     tokens (no write with a stale token landed), and its counter equals
//     its version (no write at all landed outside the lock protocol);
//   - lock tokens: one token is never granted to two owners; a token granted
//     after a restart is above every token granted before it.
// After the last kill, a full pass re-checks everything from the start
// (channels from seq 1, every checkpoint and task, one `completed` event per
// task at most and one for every acked complete).
//
// Kills: SHIM_FAULT_KILLS (default 20, `make fault-soak` 500). Seed:
// SHIM_FAULT_SEED (default random; printed, so a failure can be replayed as
// far as timing allows). One kill in ten is a double kill: the server is
// killed again right after it recovered, before any client is back.
// SHIM_FAULT_DURABILITY (default sync) exists to test the harness itself:
// with `none` acknowledged writes are lost at a SIGKILL, and the loop must
// fail.
#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/fault/fault_util.h"
#include "tests/support/server_process.h"
#include "tests/support/test_util.h"

namespace shim::fault {
namespace {

using nlohmann::json;
using testing::ServerProcess;
using SteadyClock = std::chrono::steady_clock;

constexpr int kCrashLoopClients = 8;
constexpr int kOwnKeys = 4;
constexpr int kSharedKeys = 3;
constexpr int kLocks = 2;
constexpr int64_t kLockTtlMs = 400;
constexpr int64_t kShortLeaseMs = 300;
constexpr int64_t kLongLeaseMs = 5000;
constexpr char kCrashLoopQueue[] = "fq";
constexpr char kEvents[] = "events.fq";
constexpr char kSharedChannel[] = "fch/shared";
constexpr int kCallTimeoutMs = 15'000;

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

std::string OwnKey(int c, int k) { return "own/c" + std::to_string(c) + "/k" + std::to_string(k); }
std::string SharedKey(int k) { return "shared/k" + std::to_string(k); }
std::string LockName(int l) { return "flock/" + std::to_string(l); }
std::string FencedKey(int l) { return "fenced/" + std::to_string(l); }
std::string OwnChannel(int c) { return "fch/c" + std::to_string(c); }
std::string SessionId(int c) { return "fsess-c" + std::to_string(c); }

// Counts checks by category; a failed one is a test failure with its story.
class Tally {
 public:
  bool Expect(bool ok, const std::string& category, const std::string& what) {
    std::lock_guard<std::mutex> lock(mu_);
    if (ok) {
      ++passed_[category];
      return true;
    }
    ++failed_;
    ADD_FAILURE() << "[" << category << "] " << what;
    return false;
  }
  // n checks of one kind that all passed (re-checks over a growing set count
  // only the facts that are new since the last round).
  void Pass(const std::string& category, uint64_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    passed_[category] += n;
  }
  void Note(const std::string& what, uint64_t n = 1) {
    std::lock_guard<std::mutex> lock(mu_);
    notes_[what] += n;
  }
  uint64_t passed() {
    std::lock_guard<std::mutex> lock(mu_);
    uint64_t n = 0;
    for (const auto& [k, v] : passed_) n += v;
    return n;
  }
  uint64_t failed() {
    std::lock_guard<std::mutex> lock(mu_);
    return failed_;
  }
  std::string Summary() {
    std::lock_guard<std::mutex> lock(mu_);
    std::ostringstream s;
    for (const auto& [k, v] : passed_) s << "\n    " << k << ": " << v;
    s << "\n  events seen:";
    for (const auto& [k, v] : notes_) s << "\n    " << k << ": " << v;
    return s.str();
  }

 private:
  std::mutex mu_;
  std::map<std::string, uint64_t> passed_;
  std::map<std::string, uint64_t> notes_;
  uint64_t failed_ = 0;
};

struct OwnKeyLedger {
  uint64_t acked = 0;    // the version the client's last acked write created (exact after each verify)
  bool in_doubt = false;  // a write to it was lost since
};

struct ChannelLedger {
  std::map<uint64_t, json> acked;             // seq -> data
  uint64_t verified_upto = 0;                 // every seq up to here was read back once
  std::set<std::pair<int, int64_t>> seen;     // (client, n) of every message read back
  uint64_t own_last = 0;                      // own channels: the last seq, exact after each verify
  bool own_in_doubt = false;
};

struct TaskLedger {
  std::vector<uint64_t> claims;     // acked claim lease tokens
  std::vector<uint64_t> completes;  // acked complete lease tokens
};

// Everything acknowledged, shared by the clients and the verifier.
struct Ledger {
  std::mutex mu;
  uint64_t max_revision = 0;
  std::map<std::string, OwnKeyLedger> own;
  std::map<std::string, uint64_t> shared_acked;          // highest acked CAS version
  std::map<std::string, ChannelLedger> channels;
  std::map<int, int64_t> published_n;                    // client -> last publish counter used
  std::map<std::string, std::map<uint64_t, json>> checkpoints;  // session -> id -> data
  std::map<std::string, uint64_t> checkpoints_verified;  // session -> ids up to here read back
  std::map<std::string, TaskLedger> tasks;
  std::set<std::string> dirty_tasks;  // claims or completes acked since the last verify
  std::vector<std::string> new_submits, new_completes;   // since the last verify
  std::map<std::string, std::map<uint64_t, uint64_t>> fenced;  // key -> version -> token
  std::map<std::string, size_t> fenced_counted;                // versions already counted as checked
  std::map<std::string, std::map<uint64_t, std::string>> lock_grants;  // lock -> token -> owner
  std::map<std::string, uint64_t> tokens_before_restart;  // lock -> highest token granted before the last kill

  void Revision(const json& result) {
    if (auto it = result.find("revision"); it != result.end() && it->is_number_unsigned()) {
      max_revision = std::max(max_revision, it->get<uint64_t>());
    }
  }
};

// Pause/resume of the clients around a kill.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  int parked = 0;
  uint64_t generation = 0;
  bool stop = false;
};

class CrashLoop;

// One client thread: a connection, its local view, and the load.
class Client {
 public:
  Client(CrashLoop& loop, int id, uint32_t seed);
  void Run();

 private:
  struct HeldTask {
    std::string id;
    uint64_t token;
  };

  bool Connect();
  // Sends one request; on a lost reply drops the connection (the caller
  // records the doubt and returns).
  Outcome Call(const std::string& method, const json& params);
  void Resync();
  void Step();

  void OwnSet(bool cas);
  void OwnBadCas();
  void OwnRead();
  void SharedCas();
  void Publish(bool own);
  void LockCycle();
  void StaleFenceProbe();
  void Submit();
  void Claim();
  void Complete();
  void SaveCheckpoint();

  CrashLoop& loop_;
  const int id_;
  std::mt19937 rng_;
  std::unique_ptr<net::LineClient> conn_;
  std::map<std::string, uint64_t> version_;  // own keys
  std::vector<HeldTask> held_;
  std::optional<HeldTask> complete_in_doubt_;
  std::map<int, uint64_t> released_token_;   // lock -> a token this client released (acked)
  std::set<int> acquire_in_doubt_;           // locks whose last acquire by this client was lost
  int64_t counter_ = 0;
};

class CrashLoop {
 public:
  CrashLoop(int kills, uint32_t seed, std::string durability)
      : server_({.durability = std::move(durability), .extra_args = {}, .env = {}}),
        kills_(kills),
        seed_(seed),
        rng_(seed) {
    // SHIM_FAULT_POWER_CUT=1: each kill is a power cut (docs/fault-testing.md).
    server_.options().power_cut_journal = EnvInt("SHIM_FAULT_POWER_CUT", 0) != 0;
  }

  void Run();

  ServerProcess server_;
  Ledger ledger_;
  Tally tally_;
  Gate gate_;
  std::atomic<uint64_t> acked_ops_{0}, refused_ops_{0}, lost_ops_{0};

 private:
  friend class Client;
  void Setup();
  void KillServer();
  void StartServer();
  // Checks the recovered server against the ledger. `full`: from the start.
  void Verify(bool full);
  void VerifyKeys(net::LineClient& c);
  void VerifyChannel(net::LineClient& c, const std::string& channel, bool full);
  void VerifyCheckpoints(net::LineClient& c, bool full);
  void VerifyTasks(net::LineClient& c, bool full);
  void VerifyTaskEvents(net::LineClient& c);
  void WaitParked();
  void Resume();

  const int kills_;
  const uint32_t seed_;
  std::mt19937 rng_;
  uint64_t restart_revision_ = 0;
};

// ------------------------------------------------------------------ Client

Client::Client(CrashLoop& loop, int id, uint32_t seed) : loop_(loop), id_(id), rng_(seed) {}

bool Client::Connect() {
  auto c = loop_.server_.Connect();
  if (!c.ok()) return false;
  conn_ = std::move(c).value();
  return true;
}

Outcome Client::Call(const std::string& method, const json& params) {
  if (!conn_) return Outcome{};  // lost already: nothing is sent
  Outcome o = Invoke(*conn_, method, params, kCallTimeoutMs);
  (o.lost() ? loop_.lost_ops_ : o.ok() ? loop_.acked_ops_ : loop_.refused_ops_).fetch_add(1);
  if (o.lost()) {
    loop_.tally_.Expect(o.status.code() != StatusCode::kTimeout, "server answers in time",
                        "client " + std::to_string(id_) + ": " + method + " got no reply within " +
                            std::to_string(kCallTimeoutMs) + " ms while the server was up");
    conn_.reset();
  } else if (o.ok()) {
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    loop_.ledger_.Revision(o.result);
  } else {
    // INTERNAL would mean a storage failure or a bug: never expected here.
    loop_.tally_.Expect(o.status.code() != StatusCode::kInternal && o.status.code() != StatusCode::kInvalidParams,
                        "no internal or param errors", method + " " + params.dump() + ": " + o.status.ToString());
  }
  return o;
}

void Client::Resync() {
  std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
  for (int k = 0; k < kOwnKeys; ++k) version_[OwnKey(id_, k)] = loop_.ledger_.own[OwnKey(id_, k)].acked;
}

void Client::Run() {
  uint64_t generation = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(loop_.gate_.mu);
      loop_.gate_.cv.wait(lock, [&] { return loop_.gate_.stop || loop_.gate_.generation != generation; });
      if (loop_.gate_.stop) return;
      generation = loop_.gate_.generation;
    }
    Resync();
    if (Connect()) {
      // A complete whose reply was lost: try it again with the same token.
      if (complete_in_doubt_) held_.insert(held_.begin(), *complete_in_doubt_);
      complete_in_doubt_.reset();
      while (conn_) Step();
    }
    std::lock_guard<std::mutex> lock(loop_.gate_.mu);
    ++loop_.gate_.parked;
    loop_.gate_.cv.notify_all();
  }
}

void Client::Step() {
  // Weights of the operations, in order.
  static const int kWeights[] = {12, 8, 2, 3, 10, 8, 8, 8, 3, 12, 10, 12, 6};
  static const int kTotal = [] {
    int t = 0;
    for (int w : kWeights) t += w;
    return t;
  }();
  int r = std::uniform_int_distribution<int>(0, kTotal - 1)(rng_);
  int op = 0;
  while (r >= kWeights[op]) r -= kWeights[op++];
  switch (op) {
    case 0: return OwnSet(false);
    case 1: return OwnSet(true);
    case 2: return OwnBadCas();
    case 3: return OwnRead();
    case 4: return SharedCas();
    case 5: return Publish(true);
    case 6: return Publish(false);
    case 7: return LockCycle();
    case 8: return StaleFenceProbe();
    case 9: return Submit();
    case 10: return Claim();
    case 11: return held_.empty() ? Submit() : Complete();
    default: return SaveCheckpoint();
  }
}

void Client::OwnSet(bool cas) {
  const std::string key = OwnKey(id_, std::uniform_int_distribution<int>(0, kOwnKeys - 1)(rng_));
  const uint64_t v = version_[key] + 1;
  json params = {{"key", key}, {"value", {{"c", id_}, {"v", v}}}};
  if (cas) params["expected_version"] = v - 1;
  Outcome o = Call("state.set", params);
  if (o.lost()) {
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    loop_.ledger_.own[key].in_doubt = true;
    return;
  }
  if (!loop_.tally_.Expect(o.ok(), "own writes acked at the next version",
                           key + ": " + o.status.ToString()))
    return;
  loop_.tally_.Expect(U64(o.result, "version") == v, "own writes acked at the next version",
                      key + ": acked version " + o.result.dump() + ", expected " + std::to_string(v));
  version_[key] = v;
  std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
  loop_.ledger_.own[key].acked = v;
}

void Client::OwnBadCas() {
  const std::string key = OwnKey(id_, std::uniform_int_distribution<int>(0, kOwnKeys - 1)(rng_));
  const uint64_t current = version_[key];
  const uint64_t wrong = current + 1 + std::uniform_int_distribution<uint64_t>(0, 1)(rng_);
  Outcome o = Call("state.set", {{"key", key}, {"value", "must not land"}, {"expected_version", wrong}});
  if (o.lost()) return;  // refused or not: it cannot have landed (verified by value)
  loop_.tally_.Expect(o.is(StatusCode::kVersionConflict) && U64(o.status.details(), "current_version") == current,
                      "wrong-version CAS conflicts with the current version",
                      key + " expected " + std::to_string(wrong) + " at version " + std::to_string(current) + ": " +
                          (o.ok() ? o.result.dump() : o.status.ToString() + " " + o.status.details().dump()));
}

void Client::OwnRead() {
  const std::string key = OwnKey(id_, std::uniform_int_distribution<int>(0, kOwnKeys - 1)(rng_));
  Outcome o = Call("state.get", {{"key", key}});
  if (o.lost()) return;
  const uint64_t v = version_[key];
  const bool ok = o.ok() && (v == 0 ? o.result.is_null()
                                    : (!o.result.is_null() && U64(o.result, "version") == v &&
                                       o.result["value"] == json({{"c", id_}, {"v", v}})));
  loop_.tally_.Expect(ok, "own reads see the last acked write",
                      key + " at version " + std::to_string(v) + ": " + (o.ok() ? o.result.dump() : o.status.ToString()));
}

void Client::SharedCas() {
  const std::string key = SharedKey(std::uniform_int_distribution<int>(0, kSharedKeys - 1)(rng_));
  Outcome g = Call("state.get", {{"key", key}});
  if (!g.ok()) return;
  const uint64_t v = g.result.is_null() ? 0 : U64(g.result, "version");
  Outcome o = Call("state.set", {{"key", key}, {"value", {{"c", id_}, {"v", v + 1}}}, {"expected_version", v}});
  if (o.is(StatusCode::kVersionConflict)) {
    loop_.tally_.Note("shared CAS conflicts");
    return;
  }
  if (!o.ok()) return;
  loop_.tally_.Expect(U64(o.result, "version") == v + 1, "shared CAS acked at expected + 1",
                      key + ": " + o.result.dump() + " after expected " + std::to_string(v));
  std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
  auto& acked = loop_.ledger_.shared_acked[key];
  acked = std::max(acked, v + 1);
}

void Client::Publish(bool own) {
  const std::string channel = own ? OwnChannel(id_) : kSharedChannel;
  int64_t n;
  {
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    n = ++loop_.ledger_.published_n[id_];
  }
  json data = {{"c", id_}, {"n", n}, {"pad", std::string(std::uniform_int_distribution<int>(0, 300)(rng_), 'p')}};
  Outcome o = Call("pubsub.publish", {{"channel", channel}, {"data", data}});
  std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
  ChannelLedger& ch = loop_.ledger_.channels[channel];
  if (o.lost()) {
    if (own) ch.own_in_doubt = true;
    return;
  }
  if (!o.ok()) return;
  const uint64_t seq = U64(o.result, "seq");
  if (own) {
    loop_.tally_.Expect(seq == ch.own_last + 1, "own channel seqs follow on",
                        channel + ": acked seq " + std::to_string(seq) + " after " + std::to_string(ch.own_last));
    ch.own_last = seq;
  }
  loop_.tally_.Expect(ch.acked.emplace(seq, data).second, "a seq is acked once",
                      channel + " seq " + std::to_string(seq) + " acknowledged twice");
}

void Client::LockCycle() {
  const int l = std::uniform_int_distribution<int>(0, kLocks - 1)(rng_);
  const std::string lock_name = LockName(l), key = FencedKey(l), owner = "c" + std::to_string(id_);
  Outcome a = Call("lock.acquire", {{"name", lock_name}, {"owner", owner}, {"ttl_ms", kLockTtlMs}, {"wait_ms", 300}});
  if (a.lost()) {
    acquire_in_doubt_.insert(l);
    return;
  }
  if (a.is(StatusCode::kTimeout) || a.is(StatusCode::kLockHeld)) {
    loop_.tally_.Note("lock waits timed out");
    return;
  }
  if (!a.ok()) return;
  const uint64_t token = U64(a.result, "token");
  {
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    auto& grants = loop_.ledger_.lock_grants[lock_name];
    auto [it, fresh] = grants.emplace(token, owner);
    loop_.tally_.Expect(it->second == owner, "a lock token has one owner",
                        lock_name + " token " + std::to_string(token) + " granted to " + owner + " and " + it->second);
    // After a restart, a new grant outranks every grant before the kill,
    // unless it is our own grant from before the kill whose reply was lost
    // (re-entrant acquire hands that same token back).
    if (fresh && !acquire_in_doubt_.count(l)) {
      const uint64_t before = loop_.ledger_.tokens_before_restart[lock_name];
      loop_.tally_.Expect(token > before, "lock tokens increase across restarts",
                          lock_name + " granted token " + std::to_string(token) + " <= " + std::to_string(before) +
                              " granted before the last kill");
    }
  }
  acquire_in_doubt_.erase(l);

  Outcome g = Call("state.get", {{"key", key}});
  if (!g.ok()) return;
  const uint64_t version = g.result.is_null() ? 0 : U64(g.result, "version");
  const int64_t n = g.result.is_null() ? 0 : g.result["value"].value("n", int64_t{0});
  if (!g.result.is_null()) {
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    auto [it, fresh] = loop_.ledger_.fenced[key].emplace(version, U64(g.result["value"], "token"));
    loop_.tally_.Expect(it->second == U64(g.result["value"], "token"), "one fenced write per version",
                        key + " version " + std::to_string(version) + " read with token " +
                            g.result["value"].dump() + ", earlier " + std::to_string(it->second));
  }
  // Now and then, stall past the lock's TTL: the fence must then refuse.
  const bool stall = std::uniform_int_distribution<int>(0, 9)(rng_) == 0;
  if (stall) std::this_thread::sleep_for(std::chrono::milliseconds(kLockTtlMs + 100));
  Outcome w = Call("state.set", {{"key", key},
                                 {"value", {{"token", token}, {"n", n + 1}, {"c", id_}}},
                                 {"expected_version", version},
                                 {"fence", {{"lock", lock_name}, {"token", token}}}});
  if (w.lost()) return;
  if (w.ok()) {
    loop_.tally_.Expect(U64(w.result, "version") == version + 1, "fenced writes acked at expected + 1",
                        key + ": " + w.result.dump());
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    auto [it, fresh] = loop_.ledger_.fenced[key].emplace(version + 1, token);
    loop_.tally_.Expect(it->second == token, "one fenced write per version",
                        key + " version " + std::to_string(version + 1) + " acked with token " +
                            std::to_string(token) + ", seen earlier with " + std::to_string(it->second));
  } else if (w.is(StatusCode::kFenced) || w.is(StatusCode::kVersionConflict)) {
    loop_.tally_.Note(stall ? "fenced writes refused after a stall" : "fenced writes refused without a stall");
  }
  Outcome r = Call("lock.release", {{"name", lock_name}, {"token", token}});
  if (r.ok()) released_token_[l] = token;
}

void Client::StaleFenceProbe() {
  if (released_token_.empty()) return LockCycle();
  auto it = released_token_.begin();
  std::advance(it, std::uniform_int_distribution<size_t>(0, released_token_.size() - 1)(rng_));
  const int l = it->first;
  const uint64_t stale = it->second;
  Outcome o = Call("state.set", {{"key", FencedKey(l)},
                                 {"value", {{"token", stale}, {"n", -1}, {"c", id_}, {"probe", true}}},
                                 {"fence", {{"lock", LockName(l)}, {"token", stale}}}});
  if (o.lost()) return;  // if it landed anyway, the verifier sees n != version
  loop_.tally_.Expect(o.is(StatusCode::kFenced), "writes with a released token are fenced",
                      FencedKey(l) + " with released token " + std::to_string(stale) + ": " +
                          (o.ok() ? "ACKNOWLEDGED " + o.result.dump() : o.status.ToString()));
}

void Client::Submit() {
  const bool short_lease = std::uniform_int_distribution<int>(0, 9)(rng_) < 3;
  Outcome o = Call("task.submit", {{"queue", kCrashLoopQueue},
                                   {"payload", {{"c", id_}, {"n", ++counter_}}},
                                   {"timeout_ms", short_lease ? kShortLeaseMs : kLongLeaseMs},
                                   {"max_attempts", 1000},
                                   {"backoff", {{"type", "fixed"}, {"delay_ms", 0}}}});
  if (!o.ok()) return;
  std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
  const std::string id = o.result["task_id"];
  loop_.ledger_.tasks[id];
  loop_.ledger_.new_submits.push_back(id);
}

void Client::Claim() {
  Outcome o = Call("task.claim", {{"queues", {kCrashLoopQueue}}, {"worker_id", "w" + std::to_string(id_)}, {"max", 2}});
  if (!o.ok()) return;
  std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
  for (const json& t : o.result["tasks"]) {
    HeldTask h{t["task_id"], t["lease_token"].get<uint64_t>()};
    loop_.ledger_.tasks[h.id].claims.push_back(h.token);
    loop_.ledger_.dirty_tasks.insert(h.id);
    held_.push_back(h);
  }
}

void Client::Complete() {
  HeldTask h = held_.front();
  held_.erase(held_.begin());
  Outcome o = Call("task.complete", {{"task_id", h.id}, {"lease_token", h.token}, {"result", {{"c", id_}}}});
  if (o.lost()) {
    complete_in_doubt_ = h;
    return;
  }
  if (o.ok()) {
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    loop_.ledger_.tasks[h.id].completes.push_back(h.token);
    loop_.ledger_.dirty_tasks.insert(h.id);
    loop_.ledger_.new_completes.push_back(h.id);
    return;
  }
  loop_.tally_.Note(o.is(StatusCode::kNotOwner) ? "completes refused: lease lapsed (NOT_OWNER)"
                                                : "completes refused: " + std::string(StatusCodeReason(o.status.code())));
}

void Client::SaveCheckpoint() {
  json data = {{"c", id_}, {"n", ++counter_}, {"notes", std::string(std::uniform_int_distribution<int>(100, 3000)(rng_), 'n')}};
  Outcome o = Call("checkpoint.save", {{"session_id", SessionId(id_)}, {"data", data}});
  if (!o.ok()) return;
  std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
  loop_.ledger_.checkpoints[SessionId(id_)][U64(o.result, "checkpoint_id")] = data;
}

// --------------------------------------------------------------- CrashLoop

std::string Tail(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > 4000 ? s.substr(s.size() - 4000) : s;
}

void CrashLoop::StartServer() {
  Status s = server_.Start();
  ASSERT_TRUE(s.ok()) << s.ToString() << "\n" << Tail(server_.log_path());
}

void CrashLoop::KillServer() {
  server_.Kill();
  if (server_.options().power_cut_journal) ASSERT_OK(server_.CutPower());
}

void CrashLoop::Setup() {
  ASSERT_OK_AND_ASSIGN(auto c, server_.Connect());
  auto must = [&](const std::string& method, const json& params) {
    Outcome o = Invoke(*c, method, params, kCallTimeoutMs);
    EXPECT_TRUE(o.ok()) << method << ": " << o.status.ToString();
  };
  must("queue.configure", {{"queue", kCrashLoopQueue}, {"keep_completed", 10'000'000}, {"keep_failed", 10'000'000}});
  for (const std::string& ch : {std::string(kSharedChannel), std::string(kEvents)}) {
    must("pubsub.configure", {{"channel", ch}, {"max_messages", 100'000'000}, {"max_age_ms", 86'400'000LL * 365}});
  }
  for (int i = 0; i < kCrashLoopClients; ++i) {
    must("pubsub.configure",
         {{"channel", OwnChannel(i)}, {"max_messages", 100'000'000}, {"max_age_ms", 86'400'000LL * 365}});
    must("session.open", {{"session_id", SessionId(i)}, {"heartbeat_ttl_ms", 7LL * 86'400'000}, {"keep_checkpoints", 10'000}});
  }
  Outcome info = Invoke(*c, "sys.info", json::object());
  restart_revision_ = U64(info.result, "revision");
}

void CrashLoop::WaitParked() {
  std::unique_lock<std::mutex> lock(gate_.mu);
  const bool all = gate_.cv.wait_for(lock, std::chrono::seconds(60), [&] { return gate_.parked == kCrashLoopClients; });
  ASSERT_TRUE(all) << "clients did not notice the kill within 60 s";
}

void CrashLoop::Resume() {
  std::lock_guard<std::mutex> lock(gate_.mu);
  gate_.parked = 0;
  ++gate_.generation;
  gate_.cv.notify_all();
}

void CrashLoop::Run() {
  const auto started = SteadyClock::now();
  ASSERT_NO_FATAL_FAILURE(StartServer());
  ASSERT_NO_FATAL_FAILURE(Setup());
  std::vector<std::thread> threads;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kCrashLoopClients; ++i) {
    clients.push_back(std::make_unique<Client>(*this, i, seed_ * 7919u + static_cast<uint32_t>(i)));
    threads.emplace_back([c = clients.back().get()] { c->Run(); });
  }
  auto finish = [&] {
    {
      std::lock_guard<std::mutex> lock(gate_.mu);
      gate_.stop = true;
      gate_.cv.notify_all();
    }
    server_.Kill();  // unblocks any client still talking
    for (auto& t : threads) t.join();
  };

  int double_kills = 0;
  int next_report = 50;
  uint64_t acked_before = 0;
  for (int kill = 1; kill <= kills_ && !::testing::Test::HasFatalFailure(); ++kill) {
    Resume();
    const int delay_ms = std::uniform_int_distribution<int>(100, 700)(rng_);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    KillServer();
    WaitParked();
    if (::testing::Test::HasFatalFailure()) break;
    {
      std::lock_guard<std::mutex> lock(ledger_.mu);
      for (auto& [name, grants] : ledger_.lock_grants) {
        if (!grants.empty()) ledger_.tokens_before_restart[name] = grants.rbegin()->first;
      }
    }
    StartServer();
    if (::testing::Test::HasFatalFailure()) break;
    if (std::uniform_int_distribution<int>(0, 9)(rng_) == 0 && kill < kills_) {
      // Kill the freshly recovered server again before anyone is back.
      std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 30)(rng_)));
      KillServer();
      StartServer();
      ++kill;
      ++double_kills;
      if (::testing::Test::HasFatalFailure()) break;
    }
    Verify(false);
    if (kills_ >= 100 && kill >= next_report) {
      next_report += 50;
      std::cout << "[ fault ] " << kill << "/" << kills_ << " kills, "
                << std::chrono::duration<double>(SteadyClock::now() - started).count() << " s, " << tally_.passed()
                << " checks passed, " << tally_.failed() << " failed" << std::endl;
    }
    const uint64_t acked_now = acked_ops_.load();
    if (acked_now == acked_before) tally_.Note("rounds in which no request was acknowledged");
    acked_before = acked_now;
  }
  tally_.Expect(acked_ops_.load() > 0, "the server serves after restarts", "nothing was ever acknowledged");
  if (!::testing::Test::HasFatalFailure()) Verify(true);
  finish();
  const double secs = std::chrono::duration<double>(SteadyClock::now() - started).count();
  std::cout << "[ fault ] crash loop: " << kills_ << " kills (" << double_kills
            << " of them right after a recovery), seed " << seed_ << ", " << secs << " s\n"
            << "[ fault ] requests: " << acked_ops_.load() << " acknowledged, " << refused_ops_.load()
            << " refused (errors), " << lost_ops_.load() << " lost to a kill\n"
            << "[ fault ] checks passed: " << tally_.passed() << ", failed: " << tally_.failed() << "\n"
            << "  by kind:" << tally_.Summary() << std::endl;
}

void CrashLoop::Verify(bool full) {
  ASSERT_OK_AND_ASSIGN(auto c, server_.Connect());
  std::lock_guard<std::mutex> lock(ledger_.mu);
  Outcome info = Invoke(*c, "sys.info", json::object(), kCallTimeoutMs);
  ASSERT_TRUE(info.ok()) << info.status.ToString();
  const uint64_t revision = U64(info.result, "revision");
  tally_.Expect(revision >= ledger_.max_revision && revision >= restart_revision_, "revision never goes down",
                "sys.info revision " + std::to_string(revision) + " after the restart; replies had shown " +
                    std::to_string(ledger_.max_revision) + ", the previous start " + std::to_string(restart_revision_));
  restart_revision_ = revision;
  VerifyKeys(*c);
  for (auto& [name, ch] : ledger_.channels) VerifyChannel(*c, name, full);
  VerifyCheckpoints(*c, full);
  VerifyTasks(*c, full);
  if (full) VerifyTaskEvents(*c);
}

void CrashLoop::VerifyKeys(net::LineClient& c) {
  for (int i = 0; i < kCrashLoopClients; ++i) {
    for (int k = 0; k < kOwnKeys; ++k) {
      const std::string key = OwnKey(i, k);
      OwnKeyLedger& l = ledger_.own[key];
      Outcome g = Invoke(c, "state.get", {{"key", key}}, kCallTimeoutMs);
      ASSERT_TRUE(g.ok()) << g.status.ToString();
      const uint64_t v = g.result.is_null() ? 0 : U64(g.result, "version");
      tally_.Expect(v >= l.acked && v <= l.acked + (l.in_doubt ? 1 : 0), "acked own writes present, exactly",
                    key + ": version " + std::to_string(v) + ", acked " + std::to_string(l.acked) +
                        (l.in_doubt ? " (+1 lost)" : ""));
      if (v > 0) {
        tally_.Expect(g.result["value"] == json({{"c", i}, {"v", v}}), "values match their version",
                      key + ": " + g.result.dump());
      }
      if (v > l.acked) tally_.Note("lost own writes that landed");
      l.acked = v;
      l.in_doubt = false;
    }
  }
  for (int k = 0; k < kSharedKeys; ++k) {
    const std::string key = SharedKey(k);
    Outcome g = Invoke(c, "state.get", {{"key", key}}, kCallTimeoutMs);
    ASSERT_TRUE(g.ok()) << g.status.ToString();
    const uint64_t v = g.result.is_null() ? 0 : U64(g.result, "version");
    tally_.Expect(v >= ledger_.shared_acked[key], "acked shared CAS present",
                  key + ": version " + std::to_string(v) + " < acked " + std::to_string(ledger_.shared_acked[key]));
    if (v > 0) {
      tally_.Expect(U64(g.result["value"], "v") == v, "values match their version", key + ": " + g.result.dump());
    }
  }
  for (int l = 0; l < kLocks; ++l) {
    const std::string key = FencedKey(l);
    auto& writes = ledger_.fenced[key];
    Outcome g = Invoke(c, "state.get", {{"key", key}}, kCallTimeoutMs);
    ASSERT_TRUE(g.ok()) << g.status.ToString();
    if (!g.result.is_null()) {
      const uint64_t v = U64(g.result, "version");
      const json& value = g.result["value"];
      tally_.Expect(value.value("n", int64_t{-2}) == static_cast<int64_t>(v), "no fenced write outside the lock protocol",
                    key + ": counter " + value.dump() + " at version " + std::to_string(v) +
                        " (a probe with a released token, or a lost update, landed)");
      auto [it, fresh] = writes.emplace(v, U64(value, "token"));
      tally_.Expect(it->second == U64(value, "token"), "one fenced write per version",
                    key + " version " + std::to_string(v) + ": " + value.dump() + ", earlier token " +
                        std::to_string(it->second));
      tally_.Expect(writes.rbegin()->first <= v, "acked fenced writes present",
                    key + ": at version " + std::to_string(v) + " but version " +
                        std::to_string(writes.rbegin()->first) + " was acknowledged or read");
    } else {
      tally_.Expect(writes.empty(), "acked fenced writes present", key + " is gone");
    }
    // Over every version seen so far; counted once per version.
    uint64_t last = 0, last_version = 0;
    bool ordered = true;
    for (const auto& [version, token] : writes) {
      if (token < last) {
        ordered = tally_.Expect(false, "no stale-token write landed",
                                key + ": version " + std::to_string(version) + " written with token " +
                                    std::to_string(token) + " after version " + std::to_string(last_version) +
                                    " with token " + std::to_string(last));
      }
      last = std::max(last, token);
      last_version = version;
    }
    size_t& counted = ledger_.fenced_counted[key];
    if (ordered && writes.size() > counted) tally_.Pass("no stale-token write landed", writes.size() - counted);
    counted = writes.size();
  }
}

void CrashLoop::VerifyChannel(net::LineClient& c, const std::string& channel, bool full) {
  ChannelLedger& ch = ledger_.channels[channel];
  const uint64_t from = full ? 1 : ch.verified_upto + 1;
  if (full) ch.seen.clear();
  uint64_t expect = from;
  for (int page = 0; page < 1'000'000; ++page) {
    Outcome h = Invoke(c, "pubsub.history", {{"channel", channel}, {"from_seq", expect}, {"limit", 1000}},
                       kCallTimeoutMs);
    ASSERT_TRUE(h.ok()) << h.status.ToString();
    const json& messages = h.result["messages"];
    if (messages.empty()) break;
    for (const json& m : messages) {
      const uint64_t seq = U64(m, "seq");
      if (!tally_.Expect(seq == expect, "channel seqs have no gap",
                         channel + ": seq " + std::to_string(seq) + " where " + std::to_string(expect) + " was due"))
        return;
      ++expect;
      const json& d = m["data"];
      const int client = d.value("c", -1);
      const int64_t n = d.value("n", int64_t{-1});
      tally_.Expect(client >= 0 && client < kCrashLoopClients && n >= 1 && n <= ledger_.published_n[client],
                    "no message nobody sent", channel + ": " + m.dump());
      tally_.Expect(ch.seen.emplace(client, n).second, "no message stored twice", channel + ": " + m.dump());
      if (auto a = ch.acked.find(seq); a != ch.acked.end()) {
        tally_.Expect(a->second == d, "acked publishes present with their data",
                      channel + " seq " + std::to_string(seq) + ": stored " + d.dump() + ", acked " + a->second.dump());
      }
    }
  }
  const uint64_t last = expect - 1;
  for (auto a = ch.acked.lower_bound(from); a != ch.acked.end(); ++a) {
    if (!tally_.Expect(a->first <= last, "acked publishes present with their data",
                       channel + ": acked seq " + std::to_string(a->first) + " lost; the log ends at " +
                           std::to_string(last)))
      break;
  }
  if (full) {
    tally_.Expect(last >= ch.verified_upto, "acked publishes present with their data",
                  channel + ": the log shrank to " + std::to_string(last) + " from " + std::to_string(ch.verified_upto));
  }
  if (last > ch.own_last && channel != kSharedChannel && !ch.own_in_doubt) {
    tally_.Expect(false, "no message nobody sent",
                  channel + ": log ends at " + std::to_string(last) + " but the last publish was acked at " +
                      std::to_string(ch.own_last) + " and none was lost");
  }
  ch.verified_upto = std::max(ch.verified_upto, last);
  ch.own_last = last;
  ch.own_in_doubt = false;
}

void CrashLoop::VerifyCheckpoints(net::LineClient& c, bool full) {
  for (auto& [session, acked] : ledger_.checkpoints) {
    uint64_t& verified = ledger_.checkpoints_verified[session];
    std::vector<std::pair<uint64_t, const json*>> todo;
    for (auto it = acked.upper_bound(full ? 0 : verified); it != acked.end(); ++it) todo.emplace_back(it->first, &it->second);
    // Pipelined: one round trip for all of them.
    std::vector<uint64_t> ids;
    for (const auto& [id, data] : todo) {
      auto rid = c.SendRequest("checkpoint.get", {{"session_id", session}, {"checkpoint_id", id}});
      ASSERT_TRUE(rid.ok());
      ids.push_back(*rid);
    }
    for (size_t i = 0; i < todo.size(); ++i) {
      auto env = c.ReadResponse(ids[i], kCallTimeoutMs);
      ASSERT_TRUE(env.ok()) << env.status().ToString();
      auto r = net::LineClient::Unwrap(*env);
      tally_.Expect(r.ok() && (*r)["data"] == *todo[i].second && (*r)["verified"] == true,
                    "acked checkpoints present with their data",
                    session + " checkpoint " + std::to_string(todo[i].first) + ": " +
                        (r.ok() ? r->dump().substr(0, 300) : r.status().ToString()));
    }
    if (!acked.empty()) verified = std::max(verified, acked.rbegin()->first);
  }
}

void CrashLoop::VerifyTasks(net::LineClient& c, bool full) {
  std::vector<std::string> submits, completes;
  if (full) {
    for (const auto& [id, t] : ledger_.tasks) {
      submits.push_back(id);
      if (!t.completes.empty()) completes.push_back(id);
    }
  } else {
    submits = ledger_.new_submits;
    completes = ledger_.new_completes;
  }
  ledger_.new_submits.clear();
  ledger_.new_completes.clear();
  std::set<std::string> want_completed(completes.begin(), completes.end());
  std::vector<std::string> ids(submits);
  ids.insert(ids.end(), completes.begin(), completes.end());
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  for (size_t start = 0; start < ids.size(); start += 500) {
    const size_t end = std::min(ids.size(), start + 500);
    std::vector<uint64_t> rids;
    for (size_t i = start; i < end; ++i) {
      auto rid = c.SendRequest("task.get", {{"task_id", ids[i]}});
      ASSERT_TRUE(rid.ok());
      rids.push_back(*rid);
    }
    for (size_t i = start; i < end; ++i) {
      auto env = c.ReadResponse(rids[i - start], kCallTimeoutMs);
      ASSERT_TRUE(env.ok()) << env.status().ToString();
      auto r = net::LineClient::Unwrap(*env);
      if (!tally_.Expect(r.ok(), "acked submits present", ids[i] + ": " + r.status().ToString())) continue;
      if (want_completed.count(ids[i])) {
        tally_.Expect((*r)["state"] == "completed", "acked completes present",
                      ids[i] + " was completed (acked) but is " + (*r)["state"].dump());
      }
    }
  }
  // No accepted stale completes, no double completes: from the ledger alone,
  // for the tasks with new claims or completes (all of them in a full pass).
  std::vector<std::string> check;
  if (full) {
    for (const auto& [id, t] : ledger_.tasks) check.push_back(id);
  } else {
    check.assign(ledger_.dirty_tasks.begin(), ledger_.dirty_tasks.end());
  }
  ledger_.dirty_tasks.clear();
  for (const std::string& id : check) {
    const TaskLedger& t = ledger_.tasks[id];
    if (t.completes.empty()) continue;
    tally_.Expect(t.completes.size() == 1, "no task completed twice",
                  id + " had " + std::to_string(t.completes.size()) + " completes acknowledged");
    const uint64_t newest_claim = t.claims.empty() ? 0 : *std::max_element(t.claims.begin(), t.claims.end());
    tally_.Expect(t.completes.front() >= newest_claim, "no complete with a stale lease token",
                  id + " completed with lease token " + std::to_string(t.completes.front()) +
                      " but a claim with token " + std::to_string(newest_claim) + " was acknowledged");
  }
}

void CrashLoop::VerifyTaskEvents(net::LineClient& c) {
  std::map<std::string, int> completed_events;
  uint64_t from = 1;
  for (int page = 0; page < 1'000'000; ++page) {
    Outcome h = Invoke(c, "pubsub.history", {{"channel", kEvents}, {"from_seq", from}, {"limit", 1000}}, kCallTimeoutMs);
    ASSERT_TRUE(h.ok()) << h.status.ToString();
    const json& messages = h.result["messages"];
    if (messages.empty()) break;
    for (const json& m : messages) {
      if (m["data"].value("type", "") == "completed") ++completed_events[m["data"].value("task_id", "")];
    }
    from = U64(h.result, "next_seq");
  }
  for (const auto& [id, n] : completed_events) {
    tally_.Expect(n == 1, "no task completed twice", id + " has " + std::to_string(n) + " `completed` events");
  }
  for (const auto& [id, t] : ledger_.tasks) {
    if (t.completes.empty()) continue;
    tally_.Expect(completed_events.count(id) == 1, "acked completes present", id + " has no `completed` event");
  }
}

TEST(CrashLoopTest, MixedLoadSurvivesRepeatedSigkill) {
  const int kills = EnvInt("SHIM_FAULT_KILLS", 20);
  const char* seed_env = std::getenv("SHIM_FAULT_SEED");
  const uint32_t seed = seed_env && *seed_env ? static_cast<uint32_t>(std::strtoul(seed_env, nullptr, 10))
                                              : std::random_device()();
  const char* durability = std::getenv("SHIM_FAULT_DURABILITY");
  const std::string mode = durability && *durability ? durability : "sync";
  std::cout << "[ fault ] SHIM_FAULT_KILLS=" << kills << " SHIM_FAULT_SEED=" << seed
            << " SHIM_FAULT_DURABILITY=" << mode << std::endl;
  CrashLoop loop(kills, seed, mode);
  loop.Run();
  EXPECT_EQ(loop.tally_.failed(), 0u);
  EXPECT_GT(loop.tally_.passed(), 0u);
}

}  // namespace
}  // namespace shim::fault
