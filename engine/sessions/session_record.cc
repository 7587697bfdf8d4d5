#include "engine/sessions/session_record.h"

#include "base/enum_names.h"

namespace shim::engine {

constexpr EnumNames<SessionState, 3> kSessionStateNames{{{SessionState::kOpen, "open"},
                                                         {SessionState::kClosed, "closed"},
                                                         {SessionState::kUnclean, "unclean"}}};

const char* SessionStateName(SessionState s) { return kSessionStateNames.Name(s); }
std::optional<SessionState> ParseSessionState(std::string_view name) {
  return kSessionStateNames.Parse(name);
}

}  // namespace shim::engine
