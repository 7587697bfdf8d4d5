// ReplyBudget: where a page of a list read ends, by size
// (EngineLimits::max_reply_bytes).
//
// A list read (state.list, task.list, checkpoint.list, lease.list, ...)
// adds items while the encoded bytes added so far are under the budget; the
// item that reaches it is the page's last, and the reply carries the
// method's continuation (`next`, `next_before`, ...) so the client reads on.
// A page thus holds at least one item however large (paging always makes
// progress) and is at most the budget plus one item: one request cannot
// make the engine build, or a connection queue, a reply of gigabytes out of
// items that are each within their limits. A value, used on the engine
// thread.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>

#include "base/json_text.h"

namespace shim::engine {

class ReplyBudget {
 public:
  explicit ReplyBudget(size_t max_bytes) : max_bytes_(max_bytes) {}

  // True once the items added fill the budget: the page ends here. Never
  // before the first item.
  bool full() const { return items_ > 0 && used_ >= max_bytes_; }
  // Counts an item added to the page, by its encoded size.
  void Add(size_t encoded_bytes) {
    used_ += encoded_bytes;
    ++items_;
  }
  void Add(const nlohmann::json& item) { Add(DumpCompact(item).size()); }

 private:
  size_t max_bytes_;
  size_t used_ = 0;
  size_t items_ = 0;
};

// One page of an ordered map's entries, for the list reads that have no
// other cursor than the map key (lease.list, lock.list, worker.list,
// session.list, queue.list): the entries after `after` (from the first if
// null) that `keep` accepts, each as `describe` makes it, until the budget
// is full. Returns {<items_name>: [...], "next": the last key listed when
// there are more, else null}; the client passes `next` as `after`.
template <typename Map, typename Keep, typename Describe>
nlohmann::json ListPage(const Map& map, const typename Map::key_type* after, size_t max_bytes,
                        const char* items_name, Keep keep, Describe describe) {
  nlohmann::json items = nlohmann::json::array();
  nlohmann::json next = nullptr;
  ReplyBudget budget(max_bytes);
  const typename Map::key_type* last = nullptr;
  for (auto it = after ? map.upper_bound(*after) : map.begin(); it != map.end(); ++it) {
    if (!keep(it->first, it->second)) continue;
    if (budget.full()) {  // so `last` is set
      next = *last;
      break;
    }
    items.push_back(describe(it->first, it->second));
    budget.Add(items.back());
    last = &it->first;
  }
  return nlohmann::json{{items_name, std::move(items)}, {"next", std::move(next)}};
}

}  // namespace shim::engine
