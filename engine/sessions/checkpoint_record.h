// The stored checkpoints (Family::kCheckpoints): their keys, the meta
// record's Encode/Decode pair and where recovery finds the metas. A
// checkpoint is two records under the same (session, id): its meta, read
// at open, and its data, read only when asked for and checked against the
// meta's hash and size then (SessionModule::ReadCheckpoint).
//
//   meta  := kCheckpointMeta session_id:str checkpoint_id:u64
//            -> {"bytes": u64, "created_at_ms": i64, "hash": u64,
//                "label": str, "reason": str, "signals": any}
//               (compact JSON; no tag byte)
//   data  := kCheckpointData session_id:str checkpoint_id:u64
//            -> the checkpoint's compact JSON text
//
// Pure functions, any thread.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "engine/record_codec.h"
#include "engine/record_scan.h"

namespace shim::engine {

inline constexpr RecordKind kCheckpointMetaRecords{
    "checkpoint meta", storage::Family::kCheckpoints, storage::KeyTag::kCheckpointMeta, {}};

// Defaults are what a record without the member reads as.
struct CheckpointMetaRecord {
  int64_t created_at_ms = 0;
  uint64_t bytes = 0;  // of the data text
  uint64_t hash = 0;   // Fnv1a64 of the data text
  std::string reason, label;
  nlohmann::json signals;
};

std::string CheckpointMetaKey(std::string_view session_id, uint64_t checkpoint_id);
std::string CheckpointDataKey(std::string_view session_id, uint64_t checkpoint_id);
// The prefixes of every meta key and every data key of one session.
std::array<std::string, 2> CheckpointKeyPrefixes(std::string_view session_id);
// False for a key of another tag (a data key's too), or one that is not
// exactly a session id and a checkpoint id.
bool DecodeCheckpointMetaKey(std::string_view key, std::string* session_id,
                             uint64_t* checkpoint_id);

inline constexpr std::tuple kCheckpointMetaMembers{
    Field{"created_at_ms", &CheckpointMetaRecord::created_at_ms},
    Field{"bytes", &CheckpointMetaRecord::bytes},
    Field{"hash", &CheckpointMetaRecord::hash},
    Field{"reason", &CheckpointMetaRecord::reason},
    Field{"label", &CheckpointMetaRecord::label},
    Field{"signals", &CheckpointMetaRecord::signals}};

// EncodeCheckpointMetaRecord(r), DecodeCheckpointMetaRecord(value, &r), as
// engine/record_codec.h says.
inline constexpr JsonRecordEncoder EncodeCheckpointMetaRecord{kCheckpointMetaMembers};
inline constexpr JsonRecordDecoder DecodeCheckpointMetaRecord{kCheckpointMetaMembers};

}  // namespace shim::engine
