// The stored channel head (Family::kChannelMeta): its key, its Encode/Decode
// pair and where recovery finds it. One record per channel that has been
// published to or configured; the messages themselves are the channel log
// (engine/channel_log.h).
//
//   key   := kChannelConfig channel:str
//   value := {"first_seq": u64, "last_seq": u64, "max_age_ms": i64,
//             "max_messages": i64}   (compact JSON; no tag byte)
//
// Pure functions, any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/record_scan.h"

namespace shim::engine {

inline constexpr RecordKind kChannelMetaRecords{"channel", storage::Family::kChannelMeta,
                                                storage::KeyTag::kChannelConfig, "recovery.pubsub"};

struct ChannelRetention {
  int64_t max_messages = 10'000;
  int64_t max_age_ms = 24LL * 3600 * 1000;
};

// Defaults are what a record without the member reads as (first_seq:
// last_seq + 1, an empty channel).
struct ChannelMetaRecord {
  uint64_t last_seq = 0;   // highest seq assigned
  uint64_t first_seq = 1;  // oldest retained (last_seq + 1 when empty)
  ChannelRetention retention;
};

std::string ChannelMetaKey(std::string_view channel);
// False for a key of another tag, or one that is not exactly a name.
bool DecodeChannelMetaKey(std::string_view key, std::string* channel);

std::string EncodeChannelMetaRecord(const ChannelMetaRecord& r);
// False when `value` is not a JSON object or a member has another type.
bool DecodeChannelMetaRecord(std::string_view value, ChannelMetaRecord* r);

}  // namespace shim::engine
