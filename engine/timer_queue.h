// TimerQueue: a min-heap of one-shot callbacks keyed by a due time in ms.
//
// The engine keeps two: one on wall-clock time (key TTLs, retention) and one
// on monotonic time (liveness). There is no cancel: callbacks re-check the
// state they act on (lazy deletion), which keeps the heap cheap and makes
// stale entries harmless. Engine thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <queue>
#include <vector>

namespace shim::engine {

class TimerQueue {
 public:
  using Callback = std::function<void()>;

  void Schedule(int64_t due_ms, Callback cb);
  // Runs, in due order, the callbacks due at or before now_ms, including
  // ones scheduled by those callbacks, but at most `max` of them: a million
  // keys expiring in the same millisecond are a million callbacks, which
  // the engine spreads over turns. Returns how many ran.
  size_t RunDue(int64_t now_ms, size_t max = SIZE_MAX);
  std::optional<int64_t> NextDueMs() const;
  size_t size() const { return heap_.size(); }

 private:
  struct Entry {
    int64_t due_ms;
    uint64_t seq;  // FIFO among equal due times
    Callback cb;
    bool operator>(const Entry& o) const {
      return due_ms != o.due_ms ? due_ms > o.due_ms : seq > o.seq;
    }
  };
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap_;
  uint64_t next_seq_ = 0;
};

}  // namespace shim::engine
