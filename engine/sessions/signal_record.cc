#include "engine/sessions/signal_record.h"

#include "base/json_text.h"
#include "engine/record_fields.h"
#include "storage/key_codec.h"

namespace shim::engine {

using nlohmann::json;
using storage::KeyTag;

std::string SignalKey(std::string_view session_id, uint64_t seq) {
  return storage::StrU64Key(KeyTag::kSignal, session_id, seq);
}

std::string SignalKeyPrefix(std::string_view session_id) {
  return storage::StrKey(KeyTag::kSignal, session_id);
}

std::string EncodeSignalRecord(int64_t at_ms, const json& signals, double risk,
                               const std::string& level) {
  return DumpCompact(
      json{{"at_ms", at_ms}, {"signals", signals}, {"risk", risk}, {"level", level}});
}

bool DecodeSignalRecord(std::string_view value, json* record, int64_t* at_ms) {
  *at_ms = 0;
  RecordFields f(value);
  if (!f.Get("at_ms", at_ms).ok()) return false;
  *record = std::move(f.doc());
  return true;
}

}  // namespace shim::engine
