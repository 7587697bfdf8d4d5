// SessionModule: crash prevention for chat sessions — sessions, checkpoints,
// risk signals and recovery (session.*, checkpoint.*, signal.*, recovery.*).
//
// A chat opens a session and heartbeats it; one whose heartbeat lapses
// without session.close becomes `unclean`, which is what makes recovery
// available to the next chat (by session id or by name). Checkpoints are the
// chat's working state: always fsynced before the reply whatever the
// durability mode, numbered per session, kept to `keep_checkpoints`, stored
// compressed (zstd column family) with an FNV-1a content hash that is checked
// on every read; recovery falls back to the newest checkpoint that verifies.
// signal.record scores the chat's risk with the RiskModel.
// Storage: Family::kSessions (session records), kCheckpoints (meta and data
// under separate tags, so recovery reads only the small metas), kSignals;
// their keys and records are engine/sessions/session_record.h, checkpoint_record.h
// and signal_record.h.
// Liveness is on the monotonic clock; open sessions get their full TTL again
// after a restart. Files: sessions.cc, checkpoints.cc, signals.cc.
// Engine thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "engine/call.h"
#include "engine/core.h"
#include "engine/sessions/checkpoint_record.h"
#include "engine/sessions/risk_model.h"
#include "engine/sessions/session_record.h"

namespace shim::engine {

class Params;
class PubSubModule;
class StateModule;

struct SessionLimits {
  size_t max_checkpoint_bytes = 8 << 20;  // encoded JSON of `data`
  int64_t default_keep_checkpoints = 50;
  int64_t max_keep_checkpoints = 10'000;
  int64_t keep_signals = 1000;  // signal samples kept per session
};

class SessionModule {
 public:
  SessionModule(Core& core, PubSubModule& pubsub, StateModule& state, RiskConfig risk);

  Status Recover();
  void Reset() {
    sessions_.clear();
    by_name_.clear();
    recoverable_by_name_.clear();
  }

  // sessions.cc
  void Open(Call& call);
  void Heartbeat(Call& call);
  void Close(Call& call);
  void GetStatus(Call& call);
  void Clear(Call& call);
  void List(Call& call);
  void RecoveryCheck(Call& call);
  void RecoveryAck(Call& call);
  // checkpoints.cc
  void CheckpointSave(Call& call);
  void CheckpointGet(Call& call);
  void CheckpointList(Call& call);
  void CheckpointDelete(Call& call);
  // signals.cc
  void SignalRecord(Call& call);
  void SignalHistory(Call& call);
  // Records signals and saves a checkpoint when the risk or the interval
  // calls for it (the shim_auto_checkpoint tool).
  void AutoCheckpoint(Call& call);

  size_t count() const { return sessions_.size(); }
  const RiskConfig& risk_config() const { return risk_; }

 private:
  using State = SessionState;
  // The stored meta (engine/sessions/checkpoint_record.h) and the id its key holds.
  struct CheckpointMeta : CheckpointMetaRecord {
    uint64_t id = 0;
    nlohmann::json ToJson() const;
  };
  // The stored part (engine/sessions/session_record.h) and what lives only in memory.
  struct Session : SessionRecord {
    int64_t expires_mono_ms = 0;
    std::deque<CheckpointMeta> checkpoints;  // oldest first
  };

  // sessions.cc
  // The session_id param every session method takes, checked the same way.
  std::string SessionIdParam(Params& p) const;
  Session* Find(const std::string& id);
  Result<Session*> FindOrFail(const std::string& id);
  // For a method whose only param is session_id: that session, its id in
  // *id; nullptr when the param is bad or no such session exists, after
  // replying that error to `call`.
  Session* SessionOfCall(Call& call, std::string* id);
  void Persist(const std::string& id, const Session& s);
  // One revision that applies `change` to session `id` and persists it;
  // the by-name indexes follow whatever `change` does to the session.
  void Transition(const std::string& id, Session& s, const std::function<void(Session&)>& change);
  // A method whose only param is session_id: finds that session, applies
  // `change` (Transition), publishes `event` and replies {"ok": true}.
  void TransitionByCall(Call& call, const std::string& event,
                        const std::function<void(Session&)>& change);
  void Arm(const std::string& id, const Session& s);
  void Event(const std::string& type, const std::string& id,
             nlohmann::json extra = nlohmann::json::object());
  Session& OpenSession(const std::string& id, const std::string& name, int64_t ttl,
                       const nlohmann::json* metadata, std::optional<int64_t> keep);
  bool RecoveryAvailable(const Session& s) const {
    return s.state == State::kUnclean && !s.recovery_acked;
  }
  // Sessions by name, each set ordered by (opened_at_ms, id): all of them,
  // and those whose recovery is available. A lookup by name (session.open
  // looking for a session to recover, session.recovery_check by name) then
  // costs O(log n) however many sessions there are and share the name; it
  // was a scan of every session, quadratic for a client opening named
  // sessions in a loop (found by jsonrpc_fuzz: 16,000 same-name opens took
  // 16 s). Unindex before and Index after every change of a session's
  // name, state, opened_at_ms or recovery_acked.
  using ByOpened = std::set<std::pair<int64_t, std::string>>;
  void Index(const std::string& id, const Session& s);
  void Unindex(const std::string& id, const Session& s);
  // The newest session named `name` in `index` other than `except`, as a
  // scan of sessions_ picks it: the largest opened_at_ms (>= 0), and among
  // equal ones the smallest id. Empty if none.
  static std::string Newest(const std::map<std::string, ByOpened, std::less<>>& index,
                            const std::string& name, std::string_view except = {});
  nlohmann::json Describe(const std::string& id, const Session& s) const;
  // The newest of `metas` (oldest first, a copy taken when the request was
  // applied) whose content hash verifies, read from the store; skipped ids
  // of corrupted ones go into `corrupted`.
  std::optional<std::pair<CheckpointMeta, nlohmann::json>> NewestVerified(
      const std::string& id, const std::deque<CheckpointMeta>& metas,
      std::vector<uint64_t>* corrupted);
  // checkpoints.cc
  Result<nlohmann::json> SaveCheckpoint(const std::string& id, Session& s,
                                        const nlohmann::json& data, const std::string& reason,
                                        const std::string& label, const nlohmann::json& signals);
  Result<nlohmann::json> ReadCheckpoint(const std::string& id, const CheckpointMeta& meta);
  void DeleteCheckpoint(const std::string& id, uint64_t checkpoint_id);
  // signals.cc
  RiskAssessment Assess(const Session& s, const nlohmann::json& signals) const;
  void StoreSignals(const std::string& id, Session& s, const nlohmann::json& signals,
                    const RiskAssessment& a);

  Core& core_;
  PubSubModule& pubsub_;
  StateModule& state_;
  RiskConfig risk_;
  SessionLimits limits_;
  std::map<std::string, Session, std::less<>> sessions_;
  std::map<std::string, ByOpened, std::less<>> by_name_, recoverable_by_name_;
};

// FNV-1a, 64-bit: the checkpoint content hash.
uint64_t Fnv1a64(std::string_view data);

}  // namespace shim::engine
