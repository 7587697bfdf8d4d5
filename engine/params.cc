#include "engine/params.h"

#include <algorithm>
#include <vector>

#include "base/nearest_name.h"

namespace shim::engine {

using nlohmann::json;

namespace {
const json kNull;

bool AsInt(const json& v, int64_t* out) {
  if (v.is_number_integer()) {
    if (v.is_number_unsigned()) {
      uint64_t u = v.get<uint64_t>();
      if (u > uint64_t(std::numeric_limits<int64_t>::max())) return false;
      *out = static_cast<int64_t>(u);
    } else {
      *out = v.get<int64_t>();
    }
    return true;
  }
  // Accept integral floats such as 1e3, which JSON encoders emit.
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (d >= -9.2e18 && d <= 9.2e18 && d == static_cast<double>(static_cast<int64_t>(d))) {
      *out = static_cast<int64_t>(d);
      return true;
    }
  }
  return false;
}

bool IsKnown(FieldNames known, std::string_view field) {
  return std::find(known.begin(), known.end(), field) != known.end();
}
}  // namespace

Status CheckKnownFields(const json& object, FieldNames known, std::string_view prefix) {
  if (!object.is_object()) return Status::Ok();
  for (auto it = object.begin(); it != object.end(); ++it) {
    const std::string& name = it.key();
    if (IsKnown(known, name)) continue;
    const std::string field = std::string(prefix) + name;
    std::string message = "unknown field '" + field + "'";
    if (auto near = NearestName(name, std::vector<std::string>(known.begin(), known.end()))) {
      message += "; did you mean '" + std::string(prefix) + *near + "'?";
    } else if (known.empty()) {
      message += "; it takes none";
    } else {
      message += "; known fields:";
      for (std::string_view k : known) message += " " + std::string(prefix) + std::string(k);
    }
    return Status::InvalidParams(field, std::move(message));
  }
  return Status::Ok();
}

Params::Params(const json& params, FieldNames fields) : params_(params), fields_(fields) {
  Fail(CheckKnownFields(params, fields));
}

const json* Params::Find(std::string_view field) {
  if (!IsKnown(fields_, field)) {
    Fail(Status::Internal("params: '" + std::string(field) +
                          "' is read but missing from the method's field table"));
    return nullptr;
  }
  if (!params_.is_object()) return nullptr;
  auto it = params_.find(field);
  return it == params_.end() ? nullptr : &*it;
}

bool Params::Has(std::string_view field) { return Find(field) != nullptr; }

void Params::Fail(Status status) {
  if (status_.ok()) status_ = std::move(status);
}

void Params::Invalid(std::string_view field, std::string message) {
  Fail(Status::InvalidParams(field, std::string(field) + ": " + message));
}

std::optional<std::string> Params::OptStr(std::string_view field, StrRange range) {
  const json* v = Find(field);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_string()) {
    Invalid(field, "must be a string");
    return std::nullopt;
  }
  const auto& s = v->get_ref<const std::string&>();
  if (s.size() < range.min) {
    Invalid(field, range.min == 1 ? "must not be empty"
                                  : "must be at least " + std::to_string(range.min) + " bytes");
    return std::nullopt;
  }
  if (s.size() > range.max) {
    std::string msg = std::string(field) + ": longer than " + std::to_string(range.max) + " bytes";
    if (range.too_large_over_max) {
      Status st = Status::TooLarge(msg, range.max);
      Fail(Status(st.code(), st.message(), {{"limit", range.max}, {"field", field}}));
    } else {
      Invalid(field, "longer than " + std::to_string(range.max) + " bytes");
    }
    return std::nullopt;
  }
  return s;
}

std::string Params::Str(std::string_view field, StrRange range) {
  if (!Find(field) || Find(field)->is_null()) {
    Invalid(field, "is required");
    return {};
  }
  return OptStr(field, range).value_or(std::string());
}

std::optional<int64_t> Params::OptInt(std::string_view field, IntRange range) {
  const json* v = Find(field);
  if (!v || v->is_null()) return std::nullopt;
  int64_t n;
  if (!AsInt(*v, &n)) {
    Invalid(field, "must be an integer");
    return std::nullopt;
  }
  if (n < range.min || n > range.max) {
    std::string msg = "must be";
    if (range.min != std::numeric_limits<int64_t>::min()) msg += " >= " + std::to_string(range.min);
    if (range.max != std::numeric_limits<int64_t>::max()) {
      if (msg.size() > 7) msg += " and";
      msg += " <= " + std::to_string(range.max);
    }
    Invalid(field, msg);
    return std::nullopt;
  }
  return n;
}

int64_t Params::Int(std::string_view field, IntRange range) {
  if (!Find(field) || Find(field)->is_null()) {
    Invalid(field, "is required");
    return 0;
  }
  return OptInt(field, range).value_or(0);
}

int64_t Params::Limit(int64_t max, int64_t fallback) {
  return OptInt("limit", {.min = 1, .max = max}).value_or(fallback);
}

std::optional<bool> Params::OptBool(std::string_view field) {
  const json* v = Find(field);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_boolean()) {
    Invalid(field, "must be true or false");
    return std::nullopt;
  }
  return v->get<bool>();
}

const json& Params::Any(std::string_view field) {
  const json* v = Find(field);
  if (!v) {
    Invalid(field, "is required");
    return kNull;
  }
  return *v;
}

const json* Params::OptAny(std::string_view field) { return Find(field); }

const json* Params::OptOfKind(std::string_view field, bool (json::*is_kind)() const noexcept,
                              const char* want) {
  const json* v = Find(field);
  if (!v || v->is_null()) return nullptr;
  if (!(v->*is_kind)()) {
    Invalid(field, want);
    return nullptr;
  }
  return v;
}

const json* Params::OptObject(std::string_view field) {
  return OptOfKind(field, &json::is_object, "must be an object");
}

const json* Params::OptArray(std::string_view field) {
  return OptOfKind(field, &json::is_array, "must be an array");
}

const json* Params::Array(std::string_view field) {
  if (!Find(field) || Find(field)->is_null()) {
    Invalid(field, "is required");
    return nullptr;
  }
  return OptArray(field);
}

}  // namespace shim::engine
