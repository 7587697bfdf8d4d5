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

#include "engine/record_codec.h"
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

inline constexpr std::tuple kChannelMetaMembers{
    Field{"last_seq", &ChannelMetaRecord::last_seq},
    Field{"first_seq", &ChannelMetaRecord::first_seq},
    NestedField{"max_messages", &ChannelMetaRecord::retention, &ChannelRetention::max_messages},
    NestedField{"max_age_ms", &ChannelMetaRecord::retention, &ChannelRetention::max_age_ms}};

// ChannelMetaKey(channel), DecodeChannelMetaKey(key, &channel),
// EncodeChannelMetaRecord(r), as engine/record_codec.h says.
inline constexpr IdKey<std::string> ChannelMetaKey{kChannelMetaRecords.tag};
inline constexpr IdKeyDecoder<std::string> DecodeChannelMetaKey{kChannelMetaRecords.tag};
inline constexpr JsonRecordEncoder EncodeChannelMetaRecord{kChannelMetaMembers};
// False when `value` is not a JSON object or a member has another type.
bool DecodeChannelMetaRecord(std::string_view value, ChannelMetaRecord* r);

}  // namespace shim::engine
