#include "engine/sessions/checkpoint_record.h"

#include <tuple>

#include "engine/record_fields.h"

namespace shim::engine {

using storage::KeyEncoder;
using storage::KeyTag;

namespace {
const auto kCheckpointMetaMembers =
    std::tuple{Field{"created_at_ms", &CheckpointMetaRecord::created_at_ms},
               Field{"bytes", &CheckpointMetaRecord::bytes},
               Field{"hash", &CheckpointMetaRecord::hash},
               Field{"reason", &CheckpointMetaRecord::reason},
               Field{"label", &CheckpointMetaRecord::label},
               Field{"signals", &CheckpointMetaRecord::signals}};
}  // namespace

std::string CheckpointMetaKey(std::string_view session_id, uint64_t checkpoint_id) {
  return KeyEncoder(KeyTag::kCheckpointMeta).Str(session_id).U64(checkpoint_id).key();
}

std::string CheckpointDataKey(std::string_view session_id, uint64_t checkpoint_id) {
  return KeyEncoder(KeyTag::kCheckpointData).Str(session_id).U64(checkpoint_id).key();
}

std::array<std::string, 2> CheckpointKeyPrefixes(std::string_view session_id) {
  return {storage::StrKey(KeyTag::kCheckpointMeta, session_id),
          storage::StrKey(KeyTag::kCheckpointData, session_id)};
}

bool DecodeCheckpointMetaKey(std::string_view key, std::string* session_id,
                             uint64_t* checkpoint_id) {
  storage::KeyDecoder d(key);
  return d.ExpectTag(KeyTag::kCheckpointMeta) && d.Str(session_id) && d.U64(checkpoint_id) &&
         d.done();
}

std::string EncodeCheckpointMetaRecord(const CheckpointMetaRecord& r) {
  return EncodeJsonRecord(r, kCheckpointMetaMembers);
}
bool DecodeCheckpointMetaRecord(std::string_view value, CheckpointMetaRecord* r) {
  return DecodeJsonRecord(value, r, kCheckpointMetaMembers);
}

}  // namespace shim::engine
