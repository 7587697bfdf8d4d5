#include "engine/sessions/session_record.h"

#include <tuple>

#include "engine/record_fields.h"

namespace shim::engine {

using storage::KeyTag;

namespace {
const auto kSessionMembers =
    std::tuple{Field{"name", &SessionRecord::name},
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
}  // namespace

const char* SessionStateName(SessionState s) {
  switch (s) {
    case SessionState::kOpen:
      return "open";
    case SessionState::kClosed:
      return "closed";
    case SessionState::kUnclean:
      return "unclean";
  }
  return "?";
}

std::optional<SessionState> ParseSessionState(std::string_view name) {
  for (SessionState s : {SessionState::kOpen, SessionState::kClosed, SessionState::kUnclean}) {
    if (name == SessionStateName(s)) return s;
  }
  return std::nullopt;
}

std::string SessionKey(std::string_view session_id) {
  return storage::StrKey(KeyTag::kSession, session_id);
}
bool DecodeSessionKey(std::string_view key, std::string* session_id) {
  return storage::DecodeStrKey(key, KeyTag::kSession, session_id);
}

std::string EncodeSessionRecord(const SessionRecord& r) {
  return EncodeJsonRecord(r, kSessionMembers);
}
bool DecodeSessionRecord(std::string_view value, SessionRecord* r) {
  return DecodeJsonRecord(value, r, kSessionMembers);
}

}  // namespace shim::engine
