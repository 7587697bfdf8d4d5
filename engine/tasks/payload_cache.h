// PayloadCache: task payload texts held in memory, so that claiming a task
// does not read its payload back from the store.
//
// A payload written in the open group is always held until that group has
// committed: the store cannot return it before. Once committed it stays
// only while the committed payloads fit the byte budget; past it the
// newest payloads are let go and the store serves them. Keeping the older
// ones rather than the newest suits queues, whose oldest ready tasks are
// claimed first. A claim or a forgotten task drops its entry, so the cache
// holds the payloads of tasks not yet claimed, up to the budget: a drained
// queue costs nothing, and a deep one at most the budget.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace shim::engine {

class PayloadCache {
 public:
  explicit PayloadCache(size_t budget_bytes) : budget_bytes_(budget_bytes) {}

  // Holds a payload written in the open group, whatever the budget.
  void HoldUncommitted(uint64_t seq, std::string text);
  // The group that wrote `seq` has committed: keeps its payload if the
  // cache is within budget, else lets it go (or drops it if asked to).
  void Committed(uint64_t seq);
  // The payload text, or null if the store must be read.
  const std::string* Find(uint64_t seq) const;
  // Forgets a payload that will not be read again soon (its task was
  // claimed or forgotten). An uncommitted one stays until its commit.
  void Drop(uint64_t seq);
  void Clear();

  size_t bytes() const { return bytes_; }
  size_t entries() const { return entries_.size(); }

 private:
  struct Entry {
    std::string text;
    bool committed = false;
    bool drop_at_commit = false;
  };
  // What an entry costs: its text and roughly its hash node.
  static size_t Cost(const Entry& e) { return e.text.capacity() + 64; }
  void Erase(std::unordered_map<uint64_t, Entry>::iterator it);

  size_t budget_bytes_;
  size_t bytes_ = 0;            // every entry
  size_t committed_bytes_ = 0;  // committed entries: these are held to the budget
  std::unordered_map<uint64_t, Entry> entries_;
};

}  // namespace shim::engine
