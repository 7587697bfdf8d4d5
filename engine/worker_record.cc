#include "engine/worker_record.h"

#include <tuple>

#include "engine/record_fields.h"

namespace shim::engine {

using storage::KeyTag;

namespace {
const auto kWorkerMembers =
    std::tuple{Field{"name", &WorkerRecord::name},
               Field{"capabilities", &WorkerRecord::capabilities},
               Field{"max_concurrency", &WorkerRecord::max_concurrency},
               Field{"heartbeat_ttl_ms", &WorkerRecord::heartbeat_ttl_ms},
               Field{"metadata", &WorkerRecord::metadata},
               Field{"dead", &WorkerRecord::dead},
               Field{"registered_at_ms", &WorkerRecord::registered_at_ms},
               Field{"last_heartbeat_at_ms", &WorkerRecord::last_heartbeat_at_ms}};
}  // namespace

std::string WorkerKey(std::string_view worker_id) {
  return storage::StrKey(KeyTag::kWorker, worker_id);
}
bool DecodeWorkerKey(std::string_view key, std::string* worker_id) {
  return storage::DecodeStrKey(key, KeyTag::kWorker, worker_id);
}

std::string EncodeWorkerRecord(const WorkerRecord& r) {
  return EncodeJsonRecord(r, kWorkerMembers);
}
bool DecodeWorkerRecord(std::string_view value, WorkerRecord* r) {
  return DecodeJsonRecord(value, r, kWorkerMembers);
}

}  // namespace shim::engine
