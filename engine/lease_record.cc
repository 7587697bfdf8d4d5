#include "engine/lease_record.h"

#include <tuple>

#include "engine/record_fields.h"

namespace shim::engine {

using storage::KeyTag;

namespace {
const auto kLeaseMembers =
    std::tuple{Field{"owner", &LeaseRecord::owner}, Field{"ttl_ms", &LeaseRecord::ttl_ms}};
}  // namespace

std::string LeaseKey(uint64_t lease_id) { return storage::U64Key(KeyTag::kLease, lease_id); }
bool DecodeLeaseKey(std::string_view key, uint64_t* lease_id) {
  return storage::DecodeU64Key(key, KeyTag::kLease, lease_id);
}

std::string EncodeLeaseRecord(const LeaseRecord& r) { return EncodeJsonRecord(r, kLeaseMembers); }
bool DecodeLeaseRecord(std::string_view value, LeaseRecord* r) {
  return DecodeJsonRecord(value, r, kLeaseMembers);
}

}  // namespace shim::engine
