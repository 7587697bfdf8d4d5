// PatternIndex: the pattern subscriptions of pub/sub, found per publish by
// what their patterns require of a channel instead of by trying each one.
//
// Each pattern is filed under one anchor, a literal its matches must hold
// (engine/glob.h, GlobLiterals): its literal prefix (the channel starts with
// it), else its literal suffix (ends with it), else its longest literal run,
// cut to kMaxInfixBytes (contains it) — whichever is longest, the prefix on a
// tie, then the suffix. A pattern without any literal byte (`*`, `?*`,
// `[a-z]*`) has no anchor and is tried on every channel.
//
// Match(channel) looks up the channel's prefixes and suffixes of the key
// lengths in use and its substrings of the infix key lengths in use (at most
// kMaxInfixBytes * channel length lookups), then runs GlobMatch on the
// patterns of the buckets found: the result is exactly the linear scan's,
// at a cost that grows with the channel's length and the patterns that share
// an anchor with it, not with the number of patterns.
//
// Memory: per pattern one entry holding its text, plus one bucket per
// distinct anchor. Engine thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace shim::engine {

class PatternIndex {
 public:
  // Infix anchors are at most this long: a channel is looked up at every
  // offset for each infix key length in use, so the length bounds that work.
  static constexpr size_t kMaxInfixBytes = 8;

  // Files `pattern` under `id` (ids are unique; adding one twice is a bug).
  void Add(uint64_t id, std::string_view pattern);
  // Forgets `id`; no-op if unknown. O(1) besides the bucket map.
  void Remove(uint64_t id);
  // Appends the ids of the patterns that match `channel`, in increasing id
  // order, to *out.
  void Match(std::string_view channel, std::vector<uint64_t>* out) const;

  size_t size() const { return where_.size(); }
  // Patterns run through GlobMatch by Match so far (what the index saves
  // shows here, for tests).
  uint64_t patterns_tried() const { return tried_; }

 private:
  struct Entry {
    uint64_t id;
    std::string pattern;
  };
  struct Bucket {
    std::vector<Entry> entries;
    std::string_view key;       // the map's key (stable: node-based map)
    mutable uint64_t seen = 0;  // Match pass that last visited it
  };
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  // Buckets of one anchor kind by key, with how many keys have each length
  // (to look up only the lengths in use).
  struct AnchorMap {
    std::unordered_map<std::string, Bucket, StringHash, std::equal_to<>> buckets;
    std::map<size_t, size_t> key_lengths;
    const Bucket* Find(std::string_view key) const;
  };
  enum class Kind : uint8_t { kPrefix, kSuffix, kInfix, kNone };
  struct Where {
    Kind kind;
    Bucket* bucket;
    size_t pos;  // in bucket->entries
  };

  AnchorMap& MapOf(Kind kind);
  // Runs GlobMatch on the bucket's patterns once per Match pass.
  void Visit(const Bucket& bucket, std::string_view channel, std::vector<uint64_t>* out) const;

  AnchorMap prefix_, suffix_, infix_;
  Bucket unanchored_;
  std::unordered_map<uint64_t, Where> where_;
  mutable uint64_t pass_ = 0;
  mutable uint64_t tried_ = 0;
};

}  // namespace shim::engine
