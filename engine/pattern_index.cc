#include "engine/pattern_index.h"

#include <algorithm>

#include "engine/glob.h"

namespace shim::engine {

const PatternIndex::Bucket* PatternIndex::AnchorMap::Find(std::string_view key) const {
  auto it = buckets.find(key);
  return it == buckets.end() ? nullptr : &it->second;
}

PatternIndex::AnchorMap& PatternIndex::MapOf(Kind kind) {
  switch (kind) {
    case Kind::kPrefix:
      return prefix_;
    case Kind::kSuffix:
      return suffix_;
    default:
      return infix_;
  }
}

void PatternIndex::Add(uint64_t id, std::string_view pattern) {
  const GlobLiterals lit = ReadGlobLiterals(pattern);
  const std::string infix = lit.longest_run.substr(0, kMaxInfixBytes);
  // The longest anchor is the most selective; prefixes and suffixes are
  // also the cheapest to look up, so they win ties.
  Kind kind = Kind::kNone;
  std::string key;
  if (!lit.prefix.empty() && lit.prefix.size() >= lit.suffix.size() &&
      lit.prefix.size() >= infix.size()) {
    kind = Kind::kPrefix;
    key = lit.prefix;
  } else if (!lit.suffix.empty() && lit.suffix.size() >= infix.size()) {
    kind = Kind::kSuffix;
    key = lit.suffix;
  } else if (!infix.empty()) {
    kind = Kind::kInfix;
    key = infix;
  }
  Bucket* bucket = &unanchored_;
  if (kind != Kind::kNone) {
    AnchorMap& map = MapOf(kind);
    auto [it, inserted] = map.buckets.try_emplace(std::move(key));
    if (inserted) {
      it->second.key = it->first;
      ++map.key_lengths[it->first.size()];
    }
    bucket = &it->second;
  }
  bucket->entries.push_back(Entry{id, std::string(pattern)});
  where_[id] = Where{kind, bucket, bucket->entries.size() - 1};
}

void PatternIndex::Remove(uint64_t id) {
  auto it = where_.find(id);
  if (it == where_.end()) return;
  const Where w = it->second;
  where_.erase(it);
  std::vector<Entry>& entries = w.bucket->entries;
  if (w.pos + 1 != entries.size()) {
    entries[w.pos] = std::move(entries.back());
    where_[entries[w.pos].id].pos = w.pos;
  }
  entries.pop_back();
  if (!entries.empty() || w.kind == Kind::kNone) return;
  AnchorMap& map = MapOf(w.kind);
  const size_t length = w.bucket->key.size();
  if (auto n = map.key_lengths.find(length); n != map.key_lengths.end() && --n->second == 0) {
    map.key_lengths.erase(n);
  }
  map.buckets.erase(map.buckets.find(w.bucket->key));
}

void PatternIndex::Visit(const Bucket& bucket, std::string_view channel,
                         std::vector<uint64_t>* out) const {
  if (bucket.seen == pass_) return;  // an infix found at two offsets
  bucket.seen = pass_;
  tried_ += bucket.entries.size();
  for (const Entry& e : bucket.entries) {
    if (GlobMatch(e.pattern, channel)) out->push_back(e.id);
  }
}

void PatternIndex::Match(std::string_view channel, std::vector<uint64_t>* out) const {
  ++pass_;
  const size_t first = out->size();
  const size_t n = channel.size();
  for (const auto& [length, count] : prefix_.key_lengths) {
    if (length > n) break;
    if (const Bucket* b = prefix_.Find(channel.substr(0, length))) Visit(*b, channel, out);
  }
  for (const auto& [length, count] : suffix_.key_lengths) {
    if (length > n) break;
    if (const Bucket* b = suffix_.Find(channel.substr(n - length))) Visit(*b, channel, out);
  }
  for (const auto& [length, count] : infix_.key_lengths) {
    if (length > n) break;
    for (size_t at = 0; at + length <= n; ++at) {
      if (const Bucket* b = infix_.Find(channel.substr(at, length))) Visit(*b, channel, out);
    }
  }
  Visit(unanchored_, channel, out);
  // Delivery order is subscription order, as when every pattern was tried
  // in turn.
  std::sort(out->begin() + static_cast<std::ptrdiff_t>(first), out->end());
}

}  // namespace shim::engine
