// The stored worker (Family::kWorkers): its key, its Encode/Decode pair and
// where recovery finds it. Liveness deadlines and the count of running tasks
// do not outlive a restart (a live worker gets its full TTL again; the task
// records say what runs where).
//
//   key   := kWorker worker_id:str
//   value := {"capabilities": [str], "dead": bool, "heartbeat_ttl_ms": i64,
//             "last_heartbeat_at_ms": i64, "max_concurrency": i64,
//             "metadata": any, "name": str, "registered_at_ms": i64}
//            (compact JSON; no tag byte)
//
// Pure functions, any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/record_scan.h"

namespace shim::engine {

inline constexpr RecordKind kWorkerRecords{"worker", storage::Family::kWorkers,
                                           storage::KeyTag::kWorker, "recovery.workers"};

// Defaults are what a record without the member reads as.
struct WorkerRecord {
  std::string name;
  std::vector<std::string> capabilities;
  int64_t max_concurrency = 1;
  int64_t heartbeat_ttl_ms = 15'000;
  nlohmann::json metadata;
  bool dead = false;
  int64_t registered_at_ms = 0;
  int64_t last_heartbeat_at_ms = 0;  // wall clock, for display
};

std::string WorkerKey(std::string_view worker_id);
// False for a key of another tag, or one that is not exactly an id.
bool DecodeWorkerKey(std::string_view key, std::string* worker_id);

std::string EncodeWorkerRecord(const WorkerRecord& r);
// False when `value` is not a JSON object or a member has another type.
bool DecodeWorkerRecord(std::string_view value, WorkerRecord* r);

}  // namespace shim::engine
