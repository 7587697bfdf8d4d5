// StateModule: optimistic-versioned key/value state (state.* methods).
//
// Every live key is held in memory (an ordered map, for state.list) and
// persisted in Family::kKv; Recover() rebuilds the map with one scan at open.
// Each key carries a version (1 on create, +1 per write) and the revision of
// its last write. TTLs are absolute wall-clock times: an expired key is
// invisible at once and purged by a timer with an ordinary serialized write.
//
// Writes are planned against an overlay before anything is applied, which
// makes state.txn all-or-nothing: a txn's ops see each other's effects, and
// only if every op succeeds are they applied to memory and the batch.
// Engine thread only.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

#include "engine/call.h"
#include "engine/core.h"
#include "engine/kv_record.h"
#include "engine/params.h"

namespace shim::engine {

class LeaseModule;
class LockModule;

class StateModule {
 public:
  StateModule(Core& core, const LeaseModule& leases, const LockModule& locks)
      : core_(core), leases_(leases), locks_(locks) {}

  // Recovery in two steps. Load reads every key from the store and touches
  // nothing outside this module (not the timers, not the leases), so it
  // may run on a second thread while the other modules recover
  // (Engine::Recover). SchedulePurgesOfLoadedKeys then sets the purge
  // timers of the keys with a TTL, on the engine thread.
  Status Load();
  void SchedulePurgesOfLoadedKeys();
  void Reset() {
    kv_.clear();
    keys_by_lease_.clear();
  }
  // Deletes every key attached to the lease (part of the lease's end).
  void DeleteForLease(uint64_t lease_id);
  // Deletes every live key starting with `prefix` (session.clear); returns
  // how many.
  size_t DeletePrefix(const std::string& prefix);

  void Get(Call& call);
  void Set(Call& call);
  void Patch(Call& call);
  void Incr(Call& call);
  void Del(Call& call);
  void List(Call& call);
  void Txn(Call& call);

  size_t key_count() const { return kv_.size(); }

 private:
  // Pending writes of one command: key -> new entry, or nullopt for delete.
  using Overlay = std::map<std::string, std::optional<KvEntry>, std::less<>>;

  // The live (present and unexpired) entry for key, seen through overlay.
  const KvEntry* Lookup(const std::string& key, const Overlay& overlay) const;
  Status CheckExpected(Params& p, const std::string& key, const Overlay& overlay);
  // Validates `fence` (must be the lock's current token) and `lease_id`
  // (must exist); returns the lease id or 0.
  Result<uint64_t> CheckFenceAndLease(Params& p);
  void IndexLease(const std::string& key, uint64_t old_lease, uint64_t new_lease);

  // Planners parse one op's params, check it against the current state seen
  // through `overlay`, record its write there, and return its result.
  Result<nlohmann::json> PlanSet(const nlohmann::json& params, Overlay& overlay);
  Result<nlohmann::json> PlanPatch(const nlohmann::json& params, Overlay& overlay);
  Result<nlohmann::json> PlanIncr(const nlohmann::json& params, Overlay& overlay);
  Result<nlohmann::json> PlanDel(const nlohmann::json& params, Overlay& overlay);
  // The write the set, patch and incr planners end with: the next version
  // of `key` after `cur` (null when absent), holding `value_json`, into the
  // overlay. Returns `reply` with that version and its revision.
  nlohmann::json StageWrite(Overlay& overlay, const std::string& key, const KvEntry* cur,
                            std::string value_json, int64_t expires_at_ms, uint64_t lease_id,
                            nlohmann::json reply);

  // Applies a planned overlay: one new revision for all of it.
  // `pending_revision_` is what planners report as the write's revision.
  void Apply(Overlay& overlay);
  uint64_t PendingRevision() const { return core_.revision() + 1; }

  // Runs a single-op planner as its own command.
  void RunSingle(Call& call,
                 Result<nlohmann::json> (StateModule::*plan)(const nlohmann::json&, Overlay&));

  void SchedulePurge(const std::string& key, int64_t expires_at_ms);
  void Purge(const std::string& key, int64_t expires_at_ms);

  Core& core_;
  const LeaseModule& leases_;
  const LockModule& locks_;
  std::map<std::string, KvEntry, std::less<>> kv_;
  std::unordered_map<uint64_t, std::set<std::string>> keys_by_lease_;
  std::vector<std::pair<std::string, int64_t>>
      loaded_expiries_;  // Load -> SchedulePurgesOfLoadedKeys
  // What the patches of the command being run have cost so far
  // (JsonBuildLimits::work): reset by RunSingle and Txn.
  size_t patch_work_ = 0;
};

}  // namespace shim::engine
