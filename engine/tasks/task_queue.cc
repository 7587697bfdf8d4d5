#include "engine/tasks/task_queue.h"

#include <algorithm>
#include <vector>

#include "base/enum_names.h"

namespace shim::engine {

using nlohmann::json;

constexpr EnumNames<Routing, 3> kRoutingNames{{{Routing::kLeastLoaded, "least_loaded"},
                                               {Routing::kRoundRobin, "round_robin"},
                                               {Routing::kCapability, "capability"}}};

const char* RoutingName(Routing r) { return kRoutingNames.Name(r); }
std::optional<Routing> ParseRouting(std::string_view s) { return kRoutingNames.Parse(s); }

void RecentSamples::Add(int64_t v) {
  values_[next_] = v;
  next_ = (next_ + 1) % kCapacity;
  size_ = std::min(size_ + 1, kCapacity);
}

int64_t RecentSamples::Median() const {
  if (size_ == 0) return 0;
  std::vector<int64_t> v(values_.begin(), values_.begin() + static_cast<long>(size_));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

void ReadyList::Insert(ReadyKey k) {
  if (keys_.empty() || keys_.back() < k) {
    keys_.push_back(k);
  } else {
    keys_.insert(std::upper_bound(keys_.begin(), keys_.end(), k), k);
  }
}

void ReadyList::Erase(ReadyKey k) {
  auto it = std::lower_bound(keys_.begin(), keys_.end(), k);
  if (it == keys_.end() || *it != k) return;
  it->second = 0;
  ++dead_;
  while (!keys_.empty() && keys_.front().second == 0) {
    keys_.pop_front();
    --dead_;
  }
  while (!keys_.empty() && keys_.back().second == 0) {
    keys_.pop_back();
    --dead_;
  }
  if (dead_ > 64 && dead_ > keys_.size() / 2) {
    std::erase_if(keys_, [](const ReadyKey& e) { return e.second == 0; });
    dead_ = 0;
  }
}

std::optional<ReadyKey> TaskQueue::OldestReady() const {
  std::optional<ReadyKey> best;
  for (int p = 1; p <= 10; ++p) {
    if (!ready[p].empty() && (!best || ready[p].front() < *best)) best = ready[p].front();
  }
  return best;
}

json TaskQueue::Counts() const {
  json c = json::object();
  for (int i = 0; i < kTaskStateCount; ++i) c[TaskStateName(static_cast<TaskState>(i))] = counts[i];
  return c;
}

}  // namespace shim::engine
