// The stored lease (Family::kLeases): its key, its Encode/Decode pair and
// where recovery finds it. The record holds what outlives a restart; the
// deadline does not (after a restart a lease gets its full TTL again).
//
//   key   := kLease lease_id:u64
//   value := {"owner": str, "ttl_ms": i64}   (compact JSON; no tag byte)
//
// Pure functions, any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/record_scan.h"

namespace shim::engine {

inline constexpr RecordKind kLeaseRecords{"lease", storage::Family::kLeases,
                                          storage::KeyTag::kLease, "recovery.leases"};

// Defaults are what a record without the member reads as.
struct LeaseRecord {
  std::string owner;
  int64_t ttl_ms = 1000;
};

std::string LeaseKey(uint64_t lease_id);
// False for a key of another tag, or one that is not exactly a lease id.
bool DecodeLeaseKey(std::string_view key, uint64_t* lease_id);

std::string EncodeLeaseRecord(const LeaseRecord& r);
// False when `value` is not a JSON object or a member has another type.
bool DecodeLeaseRecord(std::string_view value, LeaseRecord* r);

}  // namespace shim::engine
