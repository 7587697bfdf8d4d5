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

#include "engine/record_codec.h"
#include "engine/record_scan.h"

namespace shim::engine {

inline constexpr RecordKind kLeaseRecords{"lease", storage::Family::kLeases,
                                          storage::KeyTag::kLease, "recovery.leases"};

// Defaults are what a record without the member reads as.
struct LeaseRecord {
  std::string owner;
  int64_t ttl_ms = 1000;
};

inline constexpr std::tuple kLeaseMembers{Field{"owner", &LeaseRecord::owner},
                                          Field{"ttl_ms", &LeaseRecord::ttl_ms}};

// LeaseKey(lease_id), DecodeLeaseKey(key, &lease_id), EncodeLeaseRecord(r),
// DecodeLeaseRecord(value, &r), as engine/record_codec.h says.
inline constexpr IdKey<uint64_t> LeaseKey{kLeaseRecords.tag};
inline constexpr IdKeyDecoder<uint64_t> DecodeLeaseKey{kLeaseRecords.tag};
inline constexpr JsonRecordEncoder EncodeLeaseRecord{kLeaseMembers};
inline constexpr JsonRecordDecoder DecodeLeaseRecord{kLeaseMembers};

}  // namespace shim::engine
