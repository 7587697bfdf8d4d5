#include "engine/timer_queue.h"

#include <utility>

namespace shim::engine {

void TimerQueue::Schedule(int64_t due_ms, Callback cb) {
  heap_.push(Entry{due_ms, next_seq_++, std::move(cb)});
}

size_t TimerQueue::RunDue(int64_t now_ms, size_t max) {
  size_t ran = 0;
  while (ran < max && !heap_.empty() && heap_.top().due_ms <= now_ms) {
    // priority_queue::top is const; the entry is popped right after, so
    // moving the callback out is safe.
    Callback cb = std::move(const_cast<Entry&>(heap_.top()).cb);
    heap_.pop();
    cb();
    ++ran;
  }
  return ran;
}

std::optional<int64_t> TimerQueue::NextDueMs() const {
  if (heap_.empty()) return std::nullopt;
  return heap_.top().due_ms;
}

}  // namespace shim::engine
