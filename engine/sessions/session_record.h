// The stored session (Family::kSessions): its key, its Encode/Decode pair
// and where recovery finds it. The heartbeat deadline does not outlive a
// restart (an open session gets its full TTL again); the checkpoint list is
// rebuilt from the checkpoint records (engine/sessions/checkpoint_record.h).
//
//   key   := kSession session_id:str
//   value := {"closed_at_ms": i64, "heartbeat_ttl_ms": i64,
//             "keep_checkpoints": i64, "last_heartbeat_at_ms": i64,
//             "last_risk": any, "metadata": any, "name": str,
//             "next_checkpoint_id": u64, "next_signal_seq": u64,
//             "opened_at_ms": i64, "recovery_acked": bool,
//             "state": "open" | "closed" | "unclean"}
//            (compact JSON; no tag byte)
//
// Pure functions, any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "engine/record_scan.h"

namespace shim::engine {

inline constexpr RecordKind kSessionRecords{"session", storage::Family::kSessions,
                                            storage::KeyTag::kSession, "recovery.sessions"};

enum class SessionState : uint8_t { kOpen, kClosed, kUnclean };
const char* SessionStateName(SessionState s);
std::optional<SessionState> ParseSessionState(std::string_view name);

// Defaults are what a record without the member reads as.
struct SessionRecord {
  std::string name;
  int64_t heartbeat_ttl_ms = 60'000;
  nlohmann::json metadata;
  SessionState state = SessionState::kOpen;
  int64_t opened_at_ms = 0, closed_at_ms = 0, last_heartbeat_at_ms = 0;
  bool recovery_acked = false;
  int64_t keep_checkpoints = 50;
  uint64_t next_checkpoint_id = 1;
  uint64_t next_signal_seq = 1;
  nlohmann::json last_risk;  // null until a signal.record
};

std::string SessionKey(std::string_view session_id);
// False for a key of another tag, or one that is not exactly an id.
bool DecodeSessionKey(std::string_view key, std::string* session_id);

std::string EncodeSessionRecord(const SessionRecord& r);
// False when `value` is not a JSON object, a member has another type, or
// the state is not one SessionStateName gives.
bool DecodeSessionRecord(std::string_view value, SessionRecord* r);

}  // namespace shim::engine
