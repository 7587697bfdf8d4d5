#include "engine/tasks/payload_cache.h"

namespace shim::engine {

void PayloadCache::HoldUncommitted(uint64_t seq, std::string text) {
  if (auto it = entries_.find(seq); it != entries_.end()) Erase(it);
  // A serializer's output can have up to twice its size in capacity; the
  // budget should buy payload bytes, not slack.
  if (text.capacity() > text.size() + 64) text.shrink_to_fit();
  auto [it, inserted] = entries_.emplace(seq, Entry{std::move(text)});
  bytes_ += Cost(it->second);
}

void PayloadCache::Committed(uint64_t seq) {
  auto it = entries_.find(seq);
  if (it == entries_.end()) return;
  // In commit order, so of one group's payloads the older are kept first.
  if (it->second.drop_at_commit || committed_bytes_ + Cost(it->second) > budget_bytes_)
    return Erase(it);
  it->second.committed = true;
  committed_bytes_ += Cost(it->second);
}

const std::string* PayloadCache::Find(uint64_t seq) const {
  auto it = entries_.find(seq);
  return it == entries_.end() ? nullptr : &it->second.text;
}

void PayloadCache::Drop(uint64_t seq) {
  auto it = entries_.find(seq);
  if (it == entries_.end()) return;
  if (!it->second.committed) {
    it->second.drop_at_commit = true;
    return;
  }
  Erase(it);
}

void PayloadCache::Clear() {
  entries_.clear();
  bytes_ = 0;
  committed_bytes_ = 0;
}

void PayloadCache::Erase(std::unordered_map<uint64_t, Entry>::iterator it) {
  bytes_ -= Cost(it->second);
  if (it->second.committed) committed_bytes_ -= Cost(it->second);
  entries_.erase(it);
}

}  // namespace shim::engine
