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

#include "engine/record_codec.h"
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

inline constexpr std::tuple kLockMembers{
    Field{"owner", &LockRecord::owner}, Field{"token", &LockRecord::token},
    Field{"ttl_ms", &LockRecord::ttl_ms}, Field{"lease_id", &LockRecord::lease_id}};

// LockKey(name), DecodeLockKey(key, &name), EncodeLockRecord(r),
// DecodeLockRecord(value, &r), as engine/record_codec.h says.
inline constexpr IdKey<std::string> LockKey{kLockRecords.tag};
inline constexpr IdKeyDecoder<std::string> DecodeLockKey{kLockRecords.tag};
inline constexpr JsonRecordEncoder EncodeLockRecord{kLockMembers};
inline constexpr JsonRecordDecoder DecodeLockRecord{kLockMembers};

}  // namespace shim::engine
