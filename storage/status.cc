#include "storage/status.h"

namespace shim {
namespace {

struct CodeInfo {
  std::string_view reason;
  int wire_code;
};

// Indexed by StatusCode. The reasons and numbers are the wire contract
// (PROTOCOL.md "Errors"); do not renumber.
constexpr CodeInfo kCodeTable[] = {
    {"OK", 0},
    {"INVALID_PARAMS", -32602},
    {"INTERNAL", -32603},
    {"VERSION_CONFLICT", 1001},
    {"NOT_FOUND", 1002},
    {"LOCK_HELD", 1003},
    {"NOT_OWNER", 1004},
    {"FENCED", 1005},
    {"DEPENDENCY_CYCLE", 1006},
    {"TIMEOUT", 1007},
    {"TOO_LARGE", 1008},
    {"TYPE_MISMATCH", 1009},
    {"INVALID_STATE", 1010},
    {"OVERLOADED", 1011},
    {"SHUTTING_DOWN", 1012},
    {"UNAUTHORIZED", 1013},  // an addition to contract v1 (docs/protocol.md)
};
static_assert(std::size(kCodeTable) == static_cast<size_t>(kLastStatusCode) + 1);

}  // namespace

std::string_view StatusCodeReason(StatusCode code) {
  return kCodeTable[static_cast<size_t>(code)].reason;
}

int StatusCodeWireCode(StatusCode code) { return kCodeTable[static_cast<size_t>(code)].wire_code; }

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s(StatusCodeReason(code_));
  s += ": ";
  s += message_;
  if (!details_.is_null()) {
    s += " ";
    s += details_.dump();
  }
  return s;
}

}  // namespace shim
