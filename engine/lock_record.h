// The stored lock (Family::kLocks): its key, its Encode/Decode pair and
// where recovery finds it. Only a held lock has a record; waiters and the
// deadline do not outlive a restart (a held lock gets its full TTL again).
//
//   key   := kLock name:str
//   value := {"lease_id": u64, "owner": str, "token": u64, "ttl_ms": i64}
//            (compact JSON; no tag byte; lease_id 0 = none)
//
// Pure functions, any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/record_scan.h"

namespace shim::engine {

inline constexpr RecordKind kLockRecords{"lock", storage::Family::kLocks, storage::KeyTag::kLock,
                                         "recovery.locks"};

// Defaults are what a record without the member reads as.
struct LockRecord {
  std::string owner;
  uint64_t token = 0;  // the fencing token: the revision that granted it
  int64_t ttl_ms = 1000;
  uint64_t lease_id = 0;
};

std::string LockKey(std::string_view name);
// False for a key of another tag, or one that is not exactly a name.
bool DecodeLockKey(std::string_view key, std::string* name);

std::string EncodeLockRecord(const LockRecord& r);
// False when `value` is not a JSON object or a member has another type.
bool DecodeLockRecord(std::string_view value, LockRecord* r);

}  // namespace shim::engine
