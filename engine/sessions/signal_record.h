// The stored risk signal samples (Family::kSignals): their key and their
// Encode/Decode pair. They are not read at open: signal.history scans one
// session's samples and answers with the records as they are.
//
//   key   := kSignal session_id:str seq:u64
//   value := {"at_ms": i64, "level": str, "risk": number, "signals": object}
//            (compact JSON; no tag byte)
//
// Pure functions, any thread.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace shim::engine {

std::string SignalKey(std::string_view session_id, uint64_t seq);
// The prefix of every signal key of one session.
std::string SignalKeyPrefix(std::string_view session_id);

std::string EncodeSignalRecord(int64_t at_ms, const nlohmann::json& signals, double risk,
                               const std::string& level);
// The record as signal.history answers with it, and its time. False when
// `value` is not a JSON object or its at_ms is not an integer.
bool DecodeSignalRecord(std::string_view value, nlohmann::json* record, int64_t* at_ms);

}  // namespace shim::engine
