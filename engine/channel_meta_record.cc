#include "engine/channel_meta_record.h"

namespace shim::engine {

bool DecodeChannelMetaRecord(std::string_view value, ChannelMetaRecord* r) {
  // Seqs count from 1, so 0 stands for "absent": a record without
  // first_seq is of an empty channel, whose first seq is the next one.
  r->first_seq = 0;
  if (!DecodeJsonRecord(value, r, kChannelMetaMembers)) return false;
  if (r->first_seq == 0) r->first_seq = r->last_seq + 1;
  return true;
}

}  // namespace shim::engine
