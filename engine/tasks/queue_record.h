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

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "engine/record_scan.h"

namespace shim::engine {

struct QueueConfig;  // engine/tasks/task_queue.h

inline constexpr RecordKind kQueueRecords{
    "queue", storage::Family::kQueues, storage::KeyTag::kQueueConfig, {}};

std::string QueueConfigKey(std::string_view queue);
// False for a key of another tag, or one that is not exactly a name.
bool DecodeQueueConfigKey(std::string_view key, std::string* queue);

// The settings as the JSON object stored and answered.
nlohmann::json QueueConfigJson(const QueueConfig& c);
std::string EncodeQueueRecord(const QueueConfig& c);
// Members absent from the record keep their value in *c (the defaults).
// False when `value` is not a JSON object, a member has another type, or
// the routing is not one RoutingName gives.
bool DecodeQueueRecord(std::string_view value, QueueConfig* c);

}  // namespace shim::engine
