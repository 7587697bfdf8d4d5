// The stored queue settings (Family::kQueues): their key, their
// Encode/Decode pair and where recovery finds them. A queue has a record
// once it has been configured or paused; queue.configure answers with the
// same JSON object (QueueConfigJson).
//
//   key   := kQueueConfig queue:str
//   value := {"keep_completed": i64, "keep_failed": i64, "paused": bool,
//             "routing": str, "saturation_ready": i64, "starvation_ms": i64}
//            (compact JSON; no tag byte)
//
// Pure functions, any thread.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "engine/record_codec.h"
#include "engine/record_scan.h"
#include "engine/tasks/task_queue.h"

namespace shim::engine {

inline constexpr RecordKind kQueueRecords{
    "queue", storage::Family::kQueues, storage::KeyTag::kQueueConfig, {}};

inline constexpr std::tuple kQueueMembers{
    NamedField{"routing", &QueueConfig::routing, &RoutingName, &ParseRouting},
    Field{"starvation_ms", &QueueConfig::starvation_ms},
    Field{"saturation_ready", &QueueConfig::saturation_ready},
    Field{"keep_completed", &QueueConfig::keep_completed},
    Field{"keep_failed", &QueueConfig::keep_failed},
    Field{"paused", &QueueConfig::paused}};

// QueueConfigKey(queue), DecodeQueueConfigKey(key, &queue),
// EncodeQueueRecord(c), DecodeQueueRecord(value, &c), as
// engine/record_codec.h says (a routing RoutingName does not give makes the
// record corrupt; members absent from it keep their defaults in *c).
inline constexpr IdKey<std::string> QueueConfigKey{kQueueRecords.tag};
inline constexpr IdKeyDecoder<std::string> DecodeQueueConfigKey{kQueueRecords.tag};
inline constexpr JsonRecordEncoder EncodeQueueRecord{kQueueMembers};
inline constexpr JsonRecordDecoder DecodeQueueRecord{kQueueMembers};

// The settings as the JSON object stored and answered.
inline nlohmann::json QueueConfigJson(const QueueConfig& c) { return EncodeQueueRecord.Object(c); }

}  // namespace shim::engine
