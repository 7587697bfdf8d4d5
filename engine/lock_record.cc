#include "engine/lock_record.h"

#include <tuple>

#include "engine/record_fields.h"

namespace shim::engine {

using storage::KeyTag;

namespace {
const auto kLockMembers =
    std::tuple{Field{"owner", &LockRecord::owner}, Field{"token", &LockRecord::token},
               Field{"ttl_ms", &LockRecord::ttl_ms}, Field{"lease_id", &LockRecord::lease_id}};
}  // namespace

std::string LockKey(std::string_view name) { return storage::StrKey(KeyTag::kLock, name); }
bool DecodeLockKey(std::string_view key, std::string* name) {
  return storage::DecodeStrKey(key, KeyTag::kLock, name);
}

std::string EncodeLockRecord(const LockRecord& r) { return EncodeJsonRecord(r, kLockMembers); }
bool DecodeLockRecord(std::string_view value, LockRecord* r) {
  return DecodeJsonRecord(value, r, kLockMembers);
}

}  // namespace shim::engine
