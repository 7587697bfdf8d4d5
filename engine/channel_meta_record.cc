#include "engine/channel_meta_record.h"

#include <tuple>

#include "engine/record_fields.h"

namespace shim::engine {

using storage::KeyTag;

namespace {
const auto kChannelMetaMembers = std::tuple{
    Field{"last_seq", &ChannelMetaRecord::last_seq},
    Field{"first_seq", &ChannelMetaRecord::first_seq},
    NestedField{"max_messages", &ChannelMetaRecord::retention, &ChannelRetention::max_messages},
    NestedField{"max_age_ms", &ChannelMetaRecord::retention, &ChannelRetention::max_age_ms}};
}  // namespace

std::string ChannelMetaKey(std::string_view channel) {
  return storage::StrKey(KeyTag::kChannelConfig, channel);
}
bool DecodeChannelMetaKey(std::string_view key, std::string* channel) {
  return storage::DecodeStrKey(key, KeyTag::kChannelConfig, channel);
}

std::string EncodeChannelMetaRecord(const ChannelMetaRecord& r) {
  return EncodeJsonRecord(r, kChannelMetaMembers);
}

bool DecodeChannelMetaRecord(std::string_view value, ChannelMetaRecord* r) {
  // Seqs count from 1, so 0 stands for "absent": a record without
  // first_seq is of an empty channel, whose first seq is the next one.
  r->first_seq = 0;
  if (!DecodeJsonRecord(value, r, kChannelMetaMembers)) return false;
  if (r->first_seq == 0) r->first_seq = r->last_seq + 1;
  return true;
}

}  // namespace shim::engine
