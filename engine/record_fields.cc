#include "engine/record_fields.h"

#include <limits>
#include <utility>

#include "engine/json_parse.h"

namespace shim::engine {

using nlohmann::json;

RecordFields::RecordFields(std::string_view text)
    : doc_(ParseStoredJson(text)), ok_(doc_.is_object()) {}

json* RecordFields::Find(const char* name) {
  if (!ok_) return nullptr;
  auto it = doc_.find(name);
  return it == doc_.end() ? nullptr : &*it;
}

namespace {

// Each moves `v` into *out if it has out's type; false if not.
bool TakeMember(json& v, std::string* out) {
  if (!v.is_string()) return false;
  *out = std::move(v.get_ref<std::string&>());
  return true;
}

bool TakeMember(json& v, int64_t* out) {
  const bool fits =
      v.is_number_unsigned()
          ? v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
          : v.is_number_integer();
  if (fits) *out = v.get<int64_t>();
  return fits;
}

bool TakeMember(json& v, uint64_t* out) {
  // The parser reads every non-negative integer as unsigned.
  if (v.is_number_unsigned()) *out = v.get<uint64_t>();
  return v.is_number_unsigned();
}

bool TakeMember(json& v, bool* out) {
  if (v.is_boolean()) *out = v.get<bool>();
  return v.is_boolean();
}

bool TakeMember(json& v, std::vector<std::string>* out) {
  if (!v.is_array()) return false;
  std::vector<std::string> items;
  items.reserve(v.size());
  for (json& item : v) {
    if (!item.is_string()) return false;
    items.push_back(std::move(item.get_ref<std::string&>()));
  }
  *out = std::move(items);
  return true;
}

bool TakeMember(json& v, json* out) {
  *out = std::move(v);
  return true;
}

}  // namespace

template <class T>
RecordFields& RecordFields::Get(const char* name, T* out) {
  json* v = Find(name);
  if (v && !TakeMember(*v, out)) Refuse();
  return *this;
}

template RecordFields& RecordFields::Get(const char*, std::string*);
template RecordFields& RecordFields::Get(const char*, int64_t*);
template RecordFields& RecordFields::Get(const char*, uint64_t*);
template RecordFields& RecordFields::Get(const char*, bool*);
template RecordFields& RecordFields::Get(const char*, std::vector<std::string>*);
template RecordFields& RecordFields::Get(const char*, json*);

}  // namespace shim::engine
