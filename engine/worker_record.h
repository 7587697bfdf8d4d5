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
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "engine/record_codec.h"
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

inline constexpr std::tuple kWorkerMembers{
    Field{"name", &WorkerRecord::name},
    Field{"capabilities", &WorkerRecord::capabilities},
    Field{"max_concurrency", &WorkerRecord::max_concurrency},
    Field{"heartbeat_ttl_ms", &WorkerRecord::heartbeat_ttl_ms},
    Field{"metadata", &WorkerRecord::metadata},
    Field{"dead", &WorkerRecord::dead},
    Field{"registered_at_ms", &WorkerRecord::registered_at_ms},
    Field{"last_heartbeat_at_ms", &WorkerRecord::last_heartbeat_at_ms}};

// WorkerKey(worker_id), DecodeWorkerKey(key, &worker_id),
// EncodeWorkerRecord(r), DecodeWorkerRecord(value, &r), as
// engine/record_codec.h says.
inline constexpr IdKey<std::string> WorkerKey{kWorkerRecords.tag};
inline constexpr IdKeyDecoder<std::string> DecodeWorkerKey{kWorkerRecords.tag};
inline constexpr JsonRecordEncoder EncodeWorkerRecord{kWorkerMembers};
inline constexpr JsonRecordDecoder DecodeWorkerRecord{kWorkerMembers};

}  // namespace shim::engine
