// Params: typed, validated access to a request's `params` object.
//
// Each getter checks presence and type; the first problem is remembered and
// reported by status() as INVALID_PARAMS naming the field, so a handler
// reads all its fields and checks once:
//
//   static constexpr std::string_view kFields[] = {"key", "ttl_ms"};
//   Params p(call.params, kFields);
//   std::string key = p.Str("key", {.min = 1, .max = kMaxKeyBytes});
//   auto ttl = p.OptInt("ttl_ms", {.min = 1});
//   if (!p.ok()) return p.status();
//
// `kFields` is the method's one table of the fields it takes, next to the
// reads: a field the table lacks is an unknown field for clients
// (INVALID_PARAMS "unknown field 'ttl'; did you mean 'ttl_ms'?", checked
// first, at construction), and a getter asked for a field the table lacks
// fails the call as INTERNAL, so the table cannot fall behind the reads
// without every test of that field noticing. Nested objects of a fixed
// shape (task templates, txn compares, claim_next) get a Params and a table
// of their own; free-form values (state values, payloads) are read whole.
// Not thread-safe; lives for one call.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
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

// The fields a method (or a nested object of fixed shape) takes. Static
// tables: Params keeps the span.
using FieldNames = std::span<const std::string_view>;
// For methods that take no params.
inline constexpr FieldNames kNoFields{};

// Null unless `object` (an object; anything else passes) has a field that
// `known` lacks: then INVALID_PARAMS naming the first such field (details
// `field` = `prefix` + its name) and the nearest known name, if one is near
// (base/nearest_name.h). For objects read without a Params (backoff).
Status CheckKnownFields(const nlohmann::json& object, FieldNames known,
                        std::string_view prefix = {});

class Params {
 public:
  // `params` and `fields` must outlive this object. A null params means
  // "no fields".
  Params(const nlohmann::json& params, FieldNames fields);

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

  bool Has(std::string_view field);
  // Records an error for `field` unless one is already recorded.
  void Fail(Status status);

 private:
  // The field's value, or null when absent; a field not in `fields_` is
  // a bug in the handler, recorded as INTERNAL.
  const nlohmann::json* Find(std::string_view field);
  // OptObject and OptArray: the field if `is_kind` holds for it, null when
  // absent or null, else invalid (`want` says what it must be).
  const nlohmann::json* OptOfKind(std::string_view field,
                                  bool (nlohmann::json::*is_kind)() const noexcept,
                                  const char* want);
  void Invalid(std::string_view field, std::string message);

  const nlohmann::json& params_;
  FieldNames fields_;
  Status status_;
};

}  // namespace shim::engine
