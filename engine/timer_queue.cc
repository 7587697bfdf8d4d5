#include "engine/timer_queue.h"

#include <algorithm>
#include <utility>

namespace shim::engine {

namespace {
// Below this many cancelled entries a compaction is not worth a pass.
constexpr size_t kMinCompaction = 64;
}  // namespace

TimerQueue::TimerId TimerQueue::Schedule(int64_t due_ms, Callback cb) {
  const TimerId id = next_seq_++;
  heap_.push_back(Entry{due_ms, id, std::move(cb)});
  std::push_heap(heap_.begin(), heap_.end(), std::greater<>());
  return id;
}

void TimerQueue::Cancel(TimerId id) {
  if (id >= next_seq_ || !cancelled_.insert(id).second) return;
  PopCancelledTop();
  if (cancelled_.size() >= kMinCompaction && cancelled_.size() * 2 >= heap_.size()) Compact();
}

void TimerQueue::PopCancelledTop() {
  while (!heap_.empty() && cancelled_.count(heap_.front().seq)) {
    cancelled_.erase(heap_.front().seq);
    std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
    heap_.pop_back();
  }
}

void TimerQueue::Compact() {
  std::erase_if(heap_, [this](const Entry& e) { return cancelled_.count(e.seq) > 0; });
  std::make_heap(heap_.begin(), heap_.end(), std::greater<>());
  // Whatever is left named no entry (ids that had already run).
  cancelled_.clear();
}

size_t TimerQueue::RunDue(int64_t now_ms, size_t max) {
  size_t ran = 0;
  PopCancelledTop();
  while (ran < max && !heap_.empty() && heap_.front().due_ms <= now_ms) {
    std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
    Callback cb = std::move(heap_.back().cb);
    heap_.pop_back();
    cb();  // may schedule or cancel timers
    ++ran;
    PopCancelledTop();
  }
  return ran;
}

std::optional<int64_t> TimerQueue::NextDueMs() const {
  if (heap_.empty()) return std::nullopt;
  return heap_.front().due_ms;
}

}  // namespace shim::engine
