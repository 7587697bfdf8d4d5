// Status and Result<T>: errors as values, shared by every layer.
//
// A Status is a closed code plus a human message and optional structured
// details (the JSON object that becomes the wire error's `data`, minus
// `reason`). Codes map one-to-one onto the wire reasons of
// docs/protocol.md; the only table doing that mapping is kErrorTable
// (base/error_codes.h), and the only place rocksdb::Status is translated is
// storage/store.cc.
// Values are cheap to move; any thread may use them.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "base/error_codes.h"

namespace shim {

class [[nodiscard]] Status {
 public:
  Status() = default;
  // An empty `message` takes the code's default message (kErrorTable).
  Status(StatusCode code, std::string message = {}, nlohmann::json details = nullptr)
      : code_(code),
        message_(message.empty() && code != StatusCode::kOk ? std::string(ErrorRowFor(code).message)
                                                            : std::move(message)),
        details_(std::move(details)) {}

  static Status Ok() { return {}; }
  static Status InvalidParams(std::string_view field, std::string message) {
    return {StatusCode::kInvalidParams, std::move(message), {{"field", field}}};
  }
  static Status Internal(std::string message) {
    return {StatusCode::kInternal, std::move(message)};
  }
  static Status NotFound(std::string message) {
    return {StatusCode::kNotFound, std::move(message)};
  }
  static Status TooLarge(std::string message, uint64_t limit) {
    return {StatusCode::kTooLarge, std::move(message), {{"limit", limit}}};
  }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // JSON object with extra error data (e.g. {"current_version": 3}), or null.
  const nlohmann::json& details() const { return details_; }
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  nlohmann::json details_;
};

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT: must not be OK

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace shim

// Early-return helpers. SHIM_RETURN_IF_ERROR(expr) returns expr's Status when
// it is not OK; SHIM_ASSIGN_OR_RETURN(decl, expr) unwraps a Result.
#define SHIM_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::shim::Status shim_status_ = (expr);        \
    if (!shim_status_.ok()) return shim_status_; \
  } while (0)

#define SHIM_CONCAT_INNER(a, b) a##b
#define SHIM_CONCAT(a, b) SHIM_CONCAT_INNER(a, b)
#define SHIM_ASSIGN_OR_RETURN(decl, expr)                \
  auto SHIM_CONCAT(shim_result_, __LINE__) = (expr);     \
  if (!SHIM_CONCAT(shim_result_, __LINE__).ok())         \
    return SHIM_CONCAT(shim_result_, __LINE__).status(); \
  decl = std::move(SHIM_CONCAT(shim_result_, __LINE__)).value()
