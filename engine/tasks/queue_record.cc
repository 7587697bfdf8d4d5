#include "engine/tasks/queue_record.h"

#include <tuple>

#include "engine/record_fields.h"
#include "engine/tasks/task_queue.h"

namespace shim::engine {

using storage::KeyTag;

namespace {
const auto kQueueMembers =
    std::tuple{NamedField{"routing", &QueueConfig::routing, &RoutingName, &ParseRouting},
               Field{"starvation_ms", &QueueConfig::starvation_ms},
               Field{"saturation_ready", &QueueConfig::saturation_ready},
               Field{"keep_completed", &QueueConfig::keep_completed},
               Field{"keep_failed", &QueueConfig::keep_failed},
               Field{"paused", &QueueConfig::paused}};
}  // namespace

std::string QueueConfigKey(std::string_view queue) {
  return storage::StrKey(KeyTag::kQueueConfig, queue);
}
bool DecodeQueueConfigKey(std::string_view key, std::string* queue) {
  return storage::DecodeStrKey(key, KeyTag::kQueueConfig, queue);
}

nlohmann::json QueueConfigJson(const QueueConfig& c) { return JsonRecordObject(c, kQueueMembers); }
std::string EncodeQueueRecord(const QueueConfig& c) { return EncodeJsonRecord(c, kQueueMembers); }
bool DecodeQueueRecord(std::string_view value, QueueConfig* c) {
  return DecodeJsonRecord(value, c, kQueueMembers);
}

}  // namespace shim::engine
