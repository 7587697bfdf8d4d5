// Task: one unit of work in a queue, and its stored record.
//
// The record (Family::kTasks, tag kTask, keyed by the task's seq) holds
// everything but the payload, which is stored once at submit under
// kTaskPayload, so the frequent state transitions rewrite only the small
// record. The Task does not hold its payload: task.claim and task.get take
// it from a bounded cache of unclaimed tasks' payloads or read it back from
// the store (TaskModule::LoadPayload, PayloadCache). Fields that exist
// only while the server runs (the execution lease deadline, the claiming
// connection) are not persisted: after a restart a running task gets its
// full timeout_ms again.
//
// Memory: a deep queue holds millions of tasks that are only ever ready, so
// Task keeps just what every task needs (about 90 bytes) and puts the rest
// (dependencies, children, capabilities, tags, attempts, results, progress,
// the lease, deadlines, a non-default backoff) in a TaskExtra allocated on
// the first write to one of them. Read those through ext() (an empty default
// when absent) and write them through x().
// Plain data; engine thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/client.h"
#include "engine/record_scan.h"
#include "engine/tasks/backoff.h"

namespace shim::engine {

enum class TaskState : uint8_t {
  kWaiting,
  kDelayed,
  kReady,
  kRunning,
  kCompleted,
  kFailed,
  kCancelled
};
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

// Queue names are shared by every task of the queue: one interned copy per
// name for the life of the process (queue names, like TaskQueue entries,
// are never dropped), so a task holds 8 bytes instead of a string.
const std::string* InternQueueName(std::string_view name);

struct Attempt {
  std::string worker_id;
  int64_t started_at_ms = 0;
  int64_t ended_at_ms = 0;  // 0 while running
  std::string error;        // empty = none
};

// The largest max_attempts task.submit accepts; decoding clamps to it too.
inline constexpr int16_t kMaxTaskAttempts = 1000;

// The fields most tasks never set (see the top of this file).
struct TaskExtra {
  Backoff backoff;
  int64_t deadline_at_ms = 0;  // 0 = none
  int64_t escalate_before_ms = 0;
  bool escalated = false;
  bool deadline_missed = false;

  std::vector<uint64_t> depends_on;
  bool ignore_dependency_failure = false;
  int64_t unmet_dependencies = 0;  // not persisted: recounted at recovery
  std::vector<std::string> requires_caps;
  uint64_t parent = 0;  // 0 = none
  Aggregate aggregate = Aggregate::kNone;
  std::vector<uint64_t> children;  // in submit order
  int64_t children_pending = 0;    // not persisted: recounted at recovery
  std::string idempotency_key;
  std::string ref;
  nlohmann::json tags;  // null or array

  std::vector<Attempt> attempts;
  nlohmann::json result;    // null until completed
  std::string error;        // final error (failed/cancelled)
  nlohmann::json progress;  // null until reported
  std::string progress_message;

  // While running.
  std::string worker_id;
  uint64_t lease_token = 0;
  int64_t lease_expires_mono_ms = 0;  // not persisted
  std::weak_ptr<Client> claimed_by;   // not persisted
};

struct Task {
  uint64_t seq = 0;
  const std::string* queue_name = nullptr;  // interned; null = ""
  uint8_t priority = 5;                     // 1 = highest .. 10; may be raised by escalation
  uint8_t original_priority = 5;
  TaskState state = TaskState::kWaiting;
  // 16 bits: max_attempts is at most kMaxTaskAttempts, attempt at most
  // max_attempts. Together with the three bytes above they fill one word,
  // which keeps Task at 80 bytes (see the static_assert below).
  int16_t max_attempts = 3;
  int16_t attempt = 0;  // attempts started

  int64_t created_at_ms = 0;
  int64_t run_at_ms = 0;     // delayed until (wall clock)
  int64_t ready_at_ms = 0;   // when it last became ready
  uint64_t ready_order = 0;  // FIFO order among equal priorities
  int64_t finished_at_ms = 0;
  int64_t timeout_ms = 60'000;  // execution lease

  const std::string& queue() const { return queue_name ? *queue_name : kNoQueue; }
  void set_queue(std::string_view name) { queue_name = InternQueueName(name); }

  const TaskExtra& ext() const { return extra_ ? *extra_ : kNoExtra; }
  TaskExtra& x() {
    if (!extra_) extra_ = std::make_unique<TaskExtra>();
    return *extra_;
  }
  bool has_extra() const { return extra_ != nullptr; }

  // The stored record (task_record.cc): without payload, lease deadline,
  // client. Encode writes the compact binary form; Decode reads it and the
  // JSON records of earlier versions. Decode returns false on a corrupt
  // record.
  std::string EncodeRecord() const;
  static bool DecodeRecord(uint64_t seq, std::string_view record, Task* out);
  // The JSON record of earlier versions (still read, and used by tests to
  // write old-format data).
  nlohmann::json ToJsonRecord() const;
  static bool FromJsonRecord(uint64_t seq, const nlohmann::json& rec, Task* out);

 private:
  static const TaskExtra kNoExtra;
  static const std::string kNoQueue;
  std::unique_ptr<TaskExtra> extra_;
};

// The task table holds one hash node per task: next pointer, key and Task,
// 96 bytes at 80 bytes of Task, a 96-byte allocator class; 8 bytes more
// would round every node up to 112 (16 MB more RSS per million tasks).
static_assert(sizeof(Task) <= 80, "Task grew: the task table's node no longer fits 96 bytes");

// The task record's and the payload's keys (task_record.cc), and where
// recovery finds the records (payloads are read when asked for, not at open).
//   task record := kTask seq:u64 -> Task::EncodeRecord
//   payload     := kTaskPayload seq:u64 -> the payload's compact JSON text
inline constexpr RecordKind kTaskRecords{"task", storage::Family::kTasks, storage::KeyTag::kTask,
                                         "recovery.tasks"};
std::string TaskKey(uint64_t seq);
std::string TaskPayloadKey(uint64_t seq);
// False for a key of another tag (a payload's too), or one that is not
// exactly a seq.
bool DecodeTaskKey(std::string_view key, uint64_t* seq);

}  // namespace shim::engine
