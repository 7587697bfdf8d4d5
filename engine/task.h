// Task: one unit of work in a queue, and its stored record.
//
// The record (Family::kTasks, tag kTask, keyed by the task's seq) holds
// everything but the payload, which is stored once at submit under
// kTaskPayload, so the frequent state transitions rewrite only the small
// record. Fields that exist only while the server runs (the execution lease
// deadline, the claiming connection) are not persisted: after a restart a
// running task gets its full timeout_ms again.
// Plain data; engine thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/backoff.h"
#include "engine/client.h"

namespace shim::engine {

enum class TaskState : uint8_t { kWaiting, kDelayed, kReady, kRunning, kCompleted, kFailed, kCancelled };
constexpr int kTaskStateCount = 7;
const char* TaskStateName(TaskState s);
std::optional<TaskState> ParseTaskState(std::string_view s);
inline bool IsFinished(TaskState s) {
  return s == TaskState::kCompleted || s == TaskState::kFailed || s == TaskState::kCancelled;
}

enum class Aggregate : uint8_t { kNone, kConcatenate, kMerge, kFirst, kLast };
const char* AggregateName(Aggregate a);

// Task ids on the wire are "t<seq>"; seq is the revision that created it.
std::string TaskId(uint64_t seq);
std::optional<uint64_t> ParseTaskId(std::string_view id);

struct Attempt {
  std::string worker_id;
  int64_t started_at_ms = 0;
  int64_t ended_at_ms = 0;  // 0 while running
  std::string error;        // empty = none
};

struct Task {
  uint64_t seq = 0;
  std::string queue;
  std::string payload;  // JSON text
  int priority = 5;      // 1 = highest .. 10; may be raised by escalation
  int original_priority = 5;
  TaskState state = TaskState::kWaiting;

  int64_t created_at_ms = 0;
  int64_t run_at_ms = 0;           // delayed until (wall clock)
  int64_t ready_at_ms = 0;         // when it last became ready
  uint64_t ready_order = 0;        // FIFO order among equal priorities
  int64_t finished_at_ms = 0;

  int64_t max_attempts = 3;
  Backoff backoff;
  int64_t timeout_ms = 60'000;     // execution lease
  int64_t deadline_at_ms = 0;      // 0 = none
  int64_t escalate_before_ms = 0;
  bool escalated = false;
  bool deadline_missed = false;

  std::vector<uint64_t> depends_on;
  bool ignore_dependency_failure = false;
  int64_t unmet_dependencies = 0;
  std::vector<std::string> requires_caps;
  uint64_t parent = 0;             // 0 = none
  Aggregate aggregate = Aggregate::kNone;
  std::vector<uint64_t> children;  // in submit order
  int64_t children_pending = 0;
  std::string idempotency_key;
  std::string ref;
  nlohmann::json tags;             // null or array

  int64_t attempt = 0;             // attempts started
  std::vector<Attempt> attempts;
  nlohmann::json result;           // null until completed
  std::string error;               // final error (failed/cancelled)
  nlohmann::json progress;         // null until reported
  std::string progress_message;

  // While running.
  std::string worker_id;
  uint64_t lease_token = 0;
  int64_t lease_expires_mono_ms = 0;   // not persisted
  std::weak_ptr<Client> claimed_by;    // not persisted

  nlohmann::json ToRecord() const;  // without payload, lease deadline, client
  static bool FromRecord(uint64_t seq, const nlohmann::json& rec, Task* out);
};

}  // namespace shim::engine
