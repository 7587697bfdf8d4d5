#include "engine/kv_record.h"

#include "engine/json_parse.h"

namespace shim::engine {

using storage::KeyTag;

namespace {
constexpr size_t kHeaderBytes = 32;
}  // namespace

std::string KvKey(std::string_view key) { return storage::StrKey(KeyTag::kKv, key); }
bool DecodeKvKey(std::string_view stored_key, std::string* key) {
  return storage::DecodeStrKey(stored_key, KeyTag::kKv, key);
}

std::string EncodeKvRecord(const KvEntry& e) {
  std::string out;
  out.reserve(kHeaderBytes + e.value_json.size());
  storage::AppendU64(&out, e.version);
  storage::AppendU64(&out, e.revision);
  storage::AppendU64(&out, static_cast<uint64_t>(e.expires_at_ms));
  storage::AppendU64(&out, e.lease_id);
  out.append(e.value_json);
  return out;
}

bool DecodeKvRecord(std::string_view in, KvEntry* e) {
  // Every JSON text is at least one byte: a record of just a header was cut.
  if (in.size() <= kHeaderBytes) return false;
  uint64_t expires;
  storage::ReadU64(in, &e->version);
  storage::ReadU64(in.substr(8), &e->revision);
  storage::ReadU64(in.substr(16), &expires);
  storage::ReadU64(in.substr(24), &e->lease_id);
  e->expires_at_ms = static_cast<int64_t>(expires);
  // Kept as text, not parsed: see KvEntry.
  e->value_json.assign(in.substr(kHeaderBytes));
  return true;
}

Result<nlohmann::json> KvEntry::Value(const std::string& key) const {
  Result<nlohmann::json> value = ParseJson(value_json, kMaxShimJsonDepth);
  if (value.ok()) return value;
  // Only a value written before nesting was bounded can get here.
  return Status(value.status().code(),
                "the stored value of key '" + key + "' cannot be read back: " +
                    value.status().message() + "; overwrite it with state.set or delete it",
                value.status().details());
}

}  // namespace shim::engine
