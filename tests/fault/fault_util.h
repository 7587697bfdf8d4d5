// Helpers shared by the fault tests (tests/fault/): a call that tells a
// server's answer apart from a lost connection, and small JSON readers.
//
// A request whose connection dies before its reply (the server was killed)
// has an unknown outcome: it may or may not have been applied. Every fault
// test keeps that distinction, so "acknowledged" always means "a reply with
// a result arrived".
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/status.h"
#include "net/line_client.h"

namespace shim::fault {

struct Outcome {
  enum Kind { kOk, kError, kLost } kind = kLost;
  nlohmann::json result;  // kOk
  Status status;          // kError: the server's error; kLost: why the reply never came
  bool ok() const { return kind == kOk; }
  bool lost() const { return kind == kLost; }
  bool is(StatusCode code) const { return kind == kError && status.code() == code; }
};

inline Outcome Invoke(net::LineClient& client, std::string_view method,
                      const nlohmann::json& params, int timeout_ms = 10'000) {
  Outcome out;
  auto id = client.SendRequest(method, params);
  if (!id.ok()) {
    out.status = id.status();
    return out;
  }
  auto envelope = client.ReadResponse(*id, timeout_ms);
  if (!envelope.ok()) {
    out.status = envelope.status();
    return out;
  }
  auto r = net::LineClient::Unwrap(*envelope);
  if (r.ok()) {
    out.kind = Outcome::kOk;
    out.result = std::move(r).value();
  } else {
    out.kind = Outcome::kError;
    out.status = r.status();
  }
  return out;
}

// A JSON value for a failure message, cut to `max` characters.
inline std::string Show(const nlohmann::json& j, size_t max = 400) {
  std::string s = j.dump();
  return s.size() > max ? s.substr(0, max) + "..." : s;
}
inline std::string Show(const Outcome& o) { return o.ok() ? Show(o.result) : o.status.ToString(); }

inline uint64_t U64(const nlohmann::json& j, const char* field) {
  auto it = j.find(field);
  return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

}  // namespace shim::fault
