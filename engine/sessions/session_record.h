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
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "engine/record_codec.h"
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

inline constexpr std::tuple kSessionMembers{
    Field{"name", &SessionRecord::name},
    Field{"heartbeat_ttl_ms", &SessionRecord::heartbeat_ttl_ms},
    Field{"metadata", &SessionRecord::metadata},
    NamedField{"state", &SessionRecord::state, &SessionStateName, &ParseSessionState},
    Field{"opened_at_ms", &SessionRecord::opened_at_ms},
    Field{"closed_at_ms", &SessionRecord::closed_at_ms},
    Field{"last_heartbeat_at_ms", &SessionRecord::last_heartbeat_at_ms},
    Field{"recovery_acked", &SessionRecord::recovery_acked},
    Field{"keep_checkpoints", &SessionRecord::keep_checkpoints},
    Field{"next_checkpoint_id", &SessionRecord::next_checkpoint_id},
    Field{"next_signal_seq", &SessionRecord::next_signal_seq},
    Field{"last_risk", &SessionRecord::last_risk}};

// SessionKey(session_id), DecodeSessionKey(key, &session_id),
// EncodeSessionRecord(r), DecodeSessionRecord(value, &r), as
// engine/record_codec.h says (a state SessionStateName does not give makes
// the record corrupt).
inline constexpr IdKey<std::string> SessionKey{kSessionRecords.tag};
inline constexpr IdKeyDecoder<std::string> DecodeSessionKey{kSessionRecords.tag};
inline constexpr JsonRecordEncoder EncodeSessionRecord{kSessionMembers};
inline constexpr JsonRecordDecoder DecodeSessionRecord{kSessionMembers};

}  // namespace shim::engine
