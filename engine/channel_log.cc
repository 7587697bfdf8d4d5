#include "engine/channel_log.h"

#include "storage/key_codec.h"

namespace shim::engine {

using storage::KeyTag;

std::string ChannelLogKey(std::string_view channel, uint64_t seq) {
  return storage::StrU64Key(KeyTag::kChannelMessage, channel, seq);
}

std::string EncodeChannelLogValue(std::string_view data_json, int64_t published_at_ms) {
  std::string value;
  value.reserve(8 + data_json.size());
  storage::AppendU64(&value, static_cast<uint64_t>(published_at_ms));
  value += data_json;
  return value;
}

bool DecodeChannelLogRecord(std::string_view key, std::string_view value, uint64_t* seq,
                            int64_t* published_at_ms, std::string_view* data_json) {
  std::string channel;
  uint64_t ts;
  if (!storage::DecodeStrU64Key(key, KeyTag::kChannelMessage, &channel, seq) ||
      !storage::ReadU64(value, &ts) || value.size() <= 8) {
    return false;
  }
  *published_at_ms = static_cast<int64_t>(ts);
  *data_json = value.substr(8);
  return true;
}

std::string EncodeMessageParams(std::string_view channel_json, std::string_view data_json,
                                int64_t published_at_ms, uint64_t seq, uint64_t subscription) {
  std::string params;
  params.reserve(channel_json.size() + data_json.size() + 96);
  params += R"({"channel":)";
  params += channel_json;
  params += R"(,"data":)";
  params += data_json;
  params += R"(,"published_at_ms":)";
  params += std::to_string(published_at_ms);
  params += R"(,"seq":)";
  params += std::to_string(seq);
  params += R"(,"subscription":)";
  params += std::to_string(subscription);
  params += '}';
  return params;
}

}  // namespace shim::engine
