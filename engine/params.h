// Params: typed, validated access to a request's `params` object.
//
// Each getter checks presence and type; the first problem is remembered and
// reported by status() as INVALID_PARAMS naming the field, so a handler
// reads all its fields and checks once:
//
//   Params p(call.params);
//   std::string key = p.Str("key", {.min = 1, .max = kMaxKeyBytes});
//   auto ttl = p.OptInt("ttl_ms", {.min = 1});
//   if (!p.ok()) return p.status();
//
// Unknown fields are ignored (clients may send newer optional fields).
// Not thread-safe; lives for one call.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace shim::engine {

struct IntRange {
  int64_t min = std::numeric_limits<int64_t>::min();
  int64_t max = std::numeric_limits<int64_t>::max();
};

struct StrRange {
  size_t min = 0;
  size_t max = std::numeric_limits<size_t>::max();
  // Strings over `max` are TOO_LARGE (a size limit) rather than
  // INVALID_PARAMS when this is set.
  bool too_large_over_max = true;
};

class Params {
 public:
  // `params` must outlive this object. A null params means "no fields".
  explicit Params(const nlohmann::json& params);

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  std::string Str(std::string_view field, StrRange range = {});
  std::optional<std::string> OptStr(std::string_view field, StrRange range = {});
  int64_t Int(std::string_view field, IntRange range = {});
  std::optional<int64_t> OptInt(std::string_view field, IntRange range = {});
  // The `limit` param of a list method: 1 to `max` (the engine's
  // max_list_limit), `fallback` when absent.
  int64_t Limit(int64_t max, int64_t fallback);
  std::optional<bool> OptBool(std::string_view field);
  // Any JSON value; required means present (null counts as present).
  const nlohmann::json& Any(std::string_view field);
  const nlohmann::json* OptAny(std::string_view field);
  const nlohmann::json* OptObject(std::string_view field);
  const nlohmann::json* OptArray(std::string_view field);
  const nlohmann::json* Array(std::string_view field);

  bool Has(std::string_view field) const;
  // Records an error for `field` unless one is already recorded.
  void Fail(Status status);

 private:
  const nlohmann::json* Find(std::string_view field) const;
  // OptObject and OptArray: the field if `is_kind` holds for it, null when
  // absent or null, else invalid (`want` says what it must be).
  const nlohmann::json* OptOfKind(std::string_view field,
                                  bool (nlohmann::json::*is_kind)() const noexcept,
                                  const char* want);
  void Invalid(std::string_view field, std::string message);

  const nlohmann::json& params_;
  Status status_;
};

}  // namespace shim::engine
