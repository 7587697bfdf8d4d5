// TaskQueue: the in-memory indexes of one named queue.
//
// Ready tasks sit in one ordered set per priority (1..10) keyed by
// (ready_order, seq), so the next task to hand out is the first element of
// the first non-empty set: claim cost does not grow with queue depth.
// Finished tasks are remembered in finish order for retention; the recent
// wait/run durations and completion times feed queue.stats.
// Engine thread only.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "engine/task.h"
#include "storage/status.h"

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
  nlohmann::json ToJson() const;
  static QueueConfig FromJson(const nlohmann::json& j);
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

struct TaskQueue {
  using ReadyKey = std::pair<uint64_t, uint64_t>;  // (ready_order, seq)

  std::string name;
  QueueConfig config;
  bool configured = false;  // has a stored config record
  std::array<std::set<ReadyKey>, 11> ready;  // index 1..10
  std::array<int64_t, kTaskStateCount> counts{};
  std::set<uint64_t> tasks;              // every retained task seq, for task.list
  std::deque<uint64_t> completed_order;  // completed and cancelled, by finish
  std::deque<uint64_t> failed_order;     // the dead-letter list, by finish
  std::deque<int64_t> completion_times;  // wall ms, last minute only
  RecentSamples wait_ms, run_ms;
  std::string last_round_robin_worker;

  void AddReady(const Task& t) { ready[t.priority].insert({t.ready_order, t.seq}); }
  void RemoveReady(const Task& t) { ready[t.priority].erase({t.ready_order, t.seq}); }
  int64_t ready_count() const { return counts[static_cast<int>(TaskState::kReady)]; }
  // Oldest ready (by ready_order) across priorities, if any.
  std::optional<ReadyKey> OldestReady() const;
  nlohmann::json Counts() const;
};

}  // namespace shim::engine
