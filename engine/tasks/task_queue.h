// TaskQueue: the in-memory indexes of one named queue.
//
// Ready tasks sit in one ReadyList per priority (1..10) ordered by
// (ready_order, seq), so the next task to hand out is the first entry of
// the first non-empty list: claim cost does not grow with queue depth.
// Sorted deques and vectors rather than std::set: tasks become ready in
// increasing ready_order and are created in increasing seq, so both indexes
// are appended to in order, and cost 16 and 8 bytes a task instead of a
// 48-byte tree node each (a queue can hold millions).
// Finished tasks are remembered in finish order for retention; the recent
// wait/run durations and completion times feed queue.stats.
// Engine thread only.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "engine/tasks/task.h"

namespace shim::engine {

enum class Routing : uint8_t { kLeastLoaded, kRoundRobin, kCapability };
const char* RoutingName(Routing r);
std::optional<Routing> ParseRouting(std::string_view s);

struct QueueConfig {
  Routing routing = Routing::kLeastLoaded;
  int64_t starvation_ms = 60'000;
  int64_t saturation_ready = 1000;
  int64_t keep_completed = 1000;
  int64_t keep_failed = 10'000;
  bool paused = false;
  // Stored, and answered by queue.configure, as engine/tasks/queue_record.h says.
};

// Keeps the last N samples for a median.
class RecentSamples {
 public:
  void Add(int64_t v);
  int64_t Median() const;

 private:
  static constexpr size_t kCapacity = 256;
  std::array<int64_t, kCapacity> values_{};
  size_t size_ = 0, next_ = 0;
};

using ReadyKey = std::pair<uint64_t, uint64_t>;  // (ready_order, seq)

// The ready tasks of one priority, in (ready_order, seq) order. An erased
// entry becomes a tombstone (its seq set to 0, which no task has, so the
// order still holds for binary search) until it reaches either end or the
// tombstones outnumber the live entries. The first entry is never a
// tombstone. Iterating yields tombstones: skip entries with seq 0.
class ReadyList {
 public:
  // O(1) for the newest ready_order (the usual case); O(n) otherwise (an
  // escalated task moving to priority 1 keeps its older ready_order).
  void Insert(ReadyKey k);
  // O(log n).
  void Erase(ReadyKey k);
  // Recovery: add in any order, then Sort once.
  void AppendUnsorted(ReadyKey k) { keys_.push_back(k); }
  void Sort() { std::sort(keys_.begin(), keys_.end()); }

  bool empty() const { return keys_.empty(); }
  const ReadyKey& front() const { return keys_.front(); }
  size_t size() const { return keys_.size() - dead_; }
  std::deque<ReadyKey>::const_iterator begin() const { return keys_.begin(); }
  std::deque<ReadyKey>::const_iterator end() const { return keys_.end(); }

 private:
  std::deque<ReadyKey> keys_;
  size_t dead_ = 0;
};

struct TaskQueue {
  std::string name;
  QueueConfig config;
  bool configured = false;          // has a stored config record
  bool trim_deferred = false;       // TrimRetention waits for a cascade to end
  bool deleting = false;            // a queue.delete is under way (queue_admin.cc)
  std::array<ReadyList, 11> ready;  // index 1..10
  std::array<int64_t, kTaskStateCount> counts{};
  // Every retained task seq, ascending, for task.list. A forgotten task's
  // seq stays until more than half are forgotten (seqs are never reused, so
  // a seq without a task is simply skipped).
  std::vector<uint64_t> tasks;
  size_t forgotten = 0;
  std::deque<uint64_t> completed_order;  // completed and cancelled, by finish
  std::deque<uint64_t> failed_order;     // the dead-letter list, by finish
  std::deque<int64_t> completion_times;  // wall ms, last minute only
  RecentSamples wait_ms, run_ms;
  std::string last_round_robin_worker;

  void AddReady(const Task& t) { ready[t.priority].Insert({t.ready_order, t.seq}); }
  void RemoveReady(const Task& t) { ready[t.priority].Erase({t.ready_order, t.seq}); }
  // New tasks have the highest seq yet, so this appends.
  void AddTask(uint64_t seq) {
    if (tasks.empty() || tasks.back() < seq) {
      tasks.push_back(seq);
    } else {
      tasks.insert(std::upper_bound(tasks.begin(), tasks.end(), seq), seq);
    }
  }
  // Claims may take its ready tasks: not paused, not being deleted.
  bool hands_out() const { return !config.paused && !deleting; }
  int64_t ready_count() const { return counts[static_cast<int>(TaskState::kReady)]; }
  // Oldest ready (by ready_order) across priorities, if any.
  std::optional<ReadyKey> OldestReady() const;
  nlohmann::json Counts() const;
};

}  // namespace shim::engine
