// Order-preserving key codec: the only place keys are built or taken apart.
//
// Grammar (bytes compare with memcmp, as RocksDB's default comparator does):
//
//   key     := tag field*
//   tag     := one byte naming the keyspace inside a column family (KeyTag)
//   field   := u64 | i64 | str
//   u64     := 8 bytes, big-endian                 -> numeric order
//   i64     := u64(value XOR 0x8000000000000000)   -> negatives sort first
//   str     := escaped bytes, then 0x00 0x01
//              escape: 0x00 -> 0x00 0xFF, other bytes as they are
//
// The string terminator 0x00 0x01 sorts below any escaped content byte
// (0x00 0xFF or 0x01..0xFF), so "a" < "a\0" < "ab" and a string that is a
// prefix of another sorts first whatever fields follow. Hence for any two
// tuples of the same shape, a < b  <=>  Encode(a) < Encode(b)
// (property-tested in tests/storage/key_codec_test.cc).
//
// Plain value types, no shared state: any thread may use them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace shim::storage {

// Keyspace tags. Stable on disk: append, never renumber.
enum class KeyTag : uint8_t {
  kMeta = 0x01,            // meta: (name str)
  kKv = 0x10,              // kv: (key str)
  kChannelMessage = 0x20,  // channel log: (channel str, seq u64)
  kChannelConfig = 0x21,   // channel meta: (channel str)
  kLease = 0x30,           // leases: (lease_id u64)
  kLock = 0x31,            // locks: (name str)
  kWorker = 0x32,          // workers: (worker_id str)
  kTask = 0x40,            // tasks: (task seq u64) -> task record
  kTaskPayload = 0x41,     // tasks: (task seq u64) -> payload JSON
  kQueueConfig = 0x42,     // queues: (queue str)
  kQueueAdmin = 0x43,      // queues: (queue str) -> a drain or delete under way
  kSession = 0x50,         // sessions: (session_id str)
  kCheckpointMeta = 0x51,  // checkpoints: (session_id str, checkpoint_id u64) -> meta
  kCheckpointData = 0x52,  // checkpoints: (session_id str, checkpoint_id u64) -> data
  kSignal = 0x53,          // signals: (session_id str, seq u64)
};

class KeyEncoder {
 public:
  explicit KeyEncoder(KeyTag tag) { out_.push_back(static_cast<char>(tag)); }
  KeyEncoder& U64(uint64_t v);
  KeyEncoder& I64(int64_t v);
  KeyEncoder& Str(std::string_view s);
  const std::string& key() const& { return out_; }
  std::string key() && { return std::move(out_); }

 private:
  std::string out_;
};

// Reads fields back in the order they were written. Each getter returns
// false on malformed or truncated input and leaves the decoder unusable.
class KeyDecoder {
 public:
  explicit KeyDecoder(std::string_view key) : in_(key) {}
  bool Tag(KeyTag* tag);
  // Reads the tag and checks it is `expected`: a record decoder's first
  // step, so a key of another keyspace is refused, not misread.
  bool ExpectTag(KeyTag expected);
  bool U64(uint64_t* v);
  bool I64(int64_t* v);
  bool Str(std::string* s);
  bool done() const { return in_.empty(); }

 private:
  std::string_view in_;
};

// Keys of the three common shapes: a tag and one field, or a tag, a string
// and a u64 (the seq or id of an item under a named parent: a channel's
// messages, a session's checkpoints and signals). The decoders refuse a key
// of another tag, a cut one, and one with bytes after the fields.
std::string StrKey(KeyTag tag, std::string_view s);
bool DecodeStrKey(std::string_view key, KeyTag tag, std::string* s);
std::string U64Key(KeyTag tag, uint64_t v);
bool DecodeU64Key(std::string_view key, KeyTag tag, uint64_t* v);
std::string StrU64Key(KeyTag tag, std::string_view s, uint64_t v);
bool DecodeStrU64Key(std::string_view key, KeyTag tag, std::string* s, uint64_t* v);

// Fixed-width big-endian u64, for small binary values (counters, record
// headers). DecodeU64 reads the first 8 bytes; false if fewer.
void AppendU64(std::string* out, uint64_t v);
bool ReadU64(std::string_view in, uint64_t* v);

// The smallest key greater than every key starting with `prefix`
// (for exclusive upper bounds of prefix scans); empty if none exists.
std::string PrefixSuccessor(std::string_view prefix);

}  // namespace shim::storage
