// The channel log's records (Family::kChannelLog) and the pubsub.message
// params text built from them, shared by publishing, history and replay
// (engine/pubsub.cc, engine/pubsub_replay.cc).
//
// Key: kChannelMessage tag | channel | u64 seq (so a channel's log scans in
// seq order). Value: u64 published_at_ms | the data as compact JSON text.
// Pure functions, any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace shim::engine {

std::string ChannelLogKey(std::string_view channel, uint64_t seq);
std::string EncodeChannelLogValue(std::string_view data_json, int64_t published_at_ms);
// Reads a log record, leaving the data as the JSON text stored (it is sent on
// as it is). False for a record that does not decode: a key of another tag
// or with bytes after the seq, or a value with no data after its header.
bool DecodeChannelLogRecord(std::string_view key, std::string_view value, uint64_t* seq,
                            int64_t* published_at_ms, std::string_view* data_json);

// The params object of one pubsub.message, keys in the sorted order
// nlohmann::json writes, so the spliced text equals json{...}.dump().
// `channel_json` is the channel name as a JSON string (quoted, escaped).
std::string EncodeMessageParams(std::string_view channel_json, std::string_view data_json,
                                int64_t published_at_ms, uint64_t seq, uint64_t subscription);
// About the bytes one pubsub.message line of this channel and data takes in
// an outbound buffer (the params, plus room for the envelope and numbers).
inline size_t MessageLineBytes(std::string_view channel_json, std::string_view data_json) {
  return channel_json.size() + data_json.size() + 160;
}

}  // namespace shim::engine
