#include "engine/sessions/checkpoint_record.h"

namespace shim::engine {

using storage::KeyTag;

std::string CheckpointMetaKey(std::string_view session_id, uint64_t checkpoint_id) {
  return storage::StrU64Key(KeyTag::kCheckpointMeta, session_id, checkpoint_id);
}

std::string CheckpointDataKey(std::string_view session_id, uint64_t checkpoint_id) {
  return storage::StrU64Key(KeyTag::kCheckpointData, session_id, checkpoint_id);
}

std::array<std::string, 2> CheckpointKeyPrefixes(std::string_view session_id) {
  return {storage::StrKey(KeyTag::kCheckpointMeta, session_id),
          storage::StrKey(KeyTag::kCheckpointData, session_id)};
}

bool DecodeCheckpointMetaKey(std::string_view key, std::string* session_id,
                             uint64_t* checkpoint_id) {
  return storage::DecodeStrU64Key(key, KeyTag::kCheckpointMeta, session_id, checkpoint_id);
}

}  // namespace shim::engine
