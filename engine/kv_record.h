// The stored state key (Family::kKv): its key, its Encode/Decode pair and
// where recovery finds it, and KvEntry, the form a key has in memory and on
// disk alike.
//
//   key   := kKv key:str
//   value := version:u64 revision:u64 expires_at_ms:u64 lease_id:u64 json
//            (fixed-width big-endian header, then the value's compact JSON
//            text; no tag byte)
//
// Pure functions, any thread.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "engine/record_scan.h"

namespace shim::engine {

// No failpoint name of its own: recovery.mid_scan was the first failpoint
// and the state module's before the others had one.
inline constexpr RecordKind kKvRecords{"state", storage::Family::kKv, storage::KeyTag::kKv,
                                       "recovery.mid_scan"};

// One key. The value is held as its compact JSON text, the very bytes stored
// after the record header: recovery copies them instead of building a JSON
// DOM per key (the bulk of a 1M-key restart, and most of its memory), and a
// write serializes its value once, for memory and the batch alike. Readers
// parse it with Value().
struct KvEntry {
  std::string value_json;
  uint64_t version = 0;
  uint64_t revision = 0;      // store revision of the last write
  int64_t expires_at_ms = 0;  // wall clock; 0 = no TTL
  uint64_t lease_id = 0;      // 0 = none

  // The value as JSON (`key` names it in an error). value_json is always
  // valid JSON: written by a dump, or read back from the store, whose
  // checksums guard it; only a value stored before nesting was bounded can
  // be refused (TOO_LARGE), which the message says how to fix.
  Result<nlohmann::json> Value(const std::string& key) const;
};

std::string KvKey(std::string_view key);
// False for a key of another tag, or one that is not exactly a string.
bool DecodeKvKey(std::string_view stored_key, std::string* key);

std::string EncodeKvRecord(const KvEntry& e);
// False when `value` is shorter than its header or has no value text after
// it. The text itself is not parsed here (that is what keeps a restart
// fast): Value() refuses text that is not JSON when it is read.
bool DecodeKvRecord(std::string_view value, KvEntry* e);

}  // namespace shim::engine
