// TimerQueue: a min-heap of one-shot callbacks keyed by a due time in ms.
//
// The engine keeps two: one on wall-clock time (key TTLs, retention) and one
// on monotonic time (liveness). Most callbacks re-check the state they act
// on (lazy deletion), which keeps the heap cheap and makes stale entries
// harmless. A timer whose purpose ends early and that a client can create
// at will (a server-side wait that its client's close ends) is cancelled
// instead, so that it does not sit in memory until it was due: cancelled
// entries are skipped, and dropped in one pass once they make up half the
// heap, so they never cost more than the live ones. Engine thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_set>
#include <vector>

namespace shim::engine {

class TimerQueue {
 public:
  using Callback = std::function<void()>;
  using TimerId = uint64_t;

  // Returns an id for Cancel.
  TimerId Schedule(int64_t due_ms, Callback cb);
  // The callback of `id`, a timer that has not run yet, will not run, and
  // is freed. (An id that already ran is harmless, forgotten at the next
  // compaction.)
  void Cancel(TimerId id);
  // Runs, in due order, the callbacks due at or before now_ms, including
  // ones scheduled by those callbacks, but at most `max` of them: a million
  // keys expiring in the same millisecond are a million callbacks, which
  // the engine spreads over turns. Returns how many ran.
  size_t RunDue(int64_t now_ms, size_t max = SIZE_MAX);
  std::optional<int64_t> NextDueMs() const;
  // Entries held, cancelled ones not yet dropped included.
  size_t size() const { return heap_.size(); }

 private:
  struct Entry {
    int64_t due_ms;
    uint64_t seq;  // FIFO among equal due times; the TimerId
    Callback cb;
    bool operator>(const Entry& o) const {
      return due_ms != o.due_ms ? due_ms > o.due_ms : seq > o.seq;
    }
  };
  // Removes cancelled entries from the top, so that top() is due.
  void PopCancelledTop();
  // Rebuilds the heap without cancelled entries.
  void Compact();

  std::vector<Entry> heap_;  // a min-heap under std::greater
  std::unordered_set<TimerId> cancelled_;
  uint64_t next_seq_ = 0;
};

}  // namespace shim::engine
