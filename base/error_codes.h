// The error codes of shim: one table, one row per code, with every column a
// layer needs: the JSON-RPC wire code and reason (the contract of
// docs/protocol.md, "Errors"), a default message, the retry hint the MCP
// adapter gives a model, and the HTTP status an HTTP listener answers with.
//
// Adding an error means adding a StatusCode and its row; the static_asserts
// below fail the build when a row is missing, out of order or incomplete,
// and tests/base/error_codes_test.cc checks that docs/protocol.md lists it.
// Besides the codes a Status carries through the engine, the table holds the
// JSON-RPC protocol errors net/jsonrpc.cc answers with (a line that is not
// JSON, not a request, or names no method), so that every reason on the
// wire comes from here. Constant data; any thread.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace shim {

// Indexes kErrorTable. Only the numbering in this file depends on the
// order; wire codes and reasons are the table's.
enum class StatusCode : uint8_t {
  kOk = 0,
  kParseError,       // -32700 PARSE_ERROR (JSON-RPC protocol error)
  kInvalidRequest,   // -32600 INVALID_REQUEST (JSON-RPC protocol error)
  kMethodNotFound,   // -32601 METHOD_NOT_FOUND (JSON-RPC protocol error)
  kInvalidParams,    // -32602 INVALID_PARAMS
  kInternal,         // -32603 INTERNAL (bugs, storage failures)
  kVersionConflict,  // 1001
  kNotFound,         // 1002
  kLockHeld,         // 1003
  kNotOwner,         // 1004
  kFenced,           // 1005
  kDependencyCycle,  // 1006
  kTimeout,          // 1007
  kTooLarge,         // 1008
  kTypeMismatch,     // 1009
  kInvalidState,     // 1010
  kOverloaded,       // 1011
  kShuttingDown,     // 1012
  kUnauthorized,     // 1013 (extension: TCP authentication, sys.auth)
  kReadOnly,         // 1014 (extension: the engine could not reload after a failed write)
  kForbidden,        // 1015 (extension: a method this transport may not call, sys.shutdown on TCP)
};
// The highest code; tables indexed by StatusCode end here.
inline constexpr StatusCode kLastStatusCode = StatusCode::kForbidden;

struct ErrorRow {
  StatusCode code;
  int wire_code;              // JSON-RPC error.code
  std::string_view reason;    // error.data.reason
  std::string_view message;   // for a Status that carries no message of its own
  std::string_view mcp_hint;  // what a model can do about it (net/mcp_adapter.cc)
  int http_status;            // the status line an HTTP listener answers with
};

// The reasons and numbers are the wire contract (docs/protocol.md,
// "Errors"): add rows, never renumber or rename. Application errors take
// the next number after the last (1001, 1002, ...).
inline constexpr std::array<ErrorRow, static_cast<size_t>(kLastStatusCode) + 1> kErrorTable = {{
    {StatusCode::kOk, 0, "OK", "ok", "Nothing went wrong.", 200},
    {StatusCode::kParseError, -32700, "PARSE_ERROR", "the line is not valid JSON",
     "The request was not JSON: this is a bug in the client, not something a retry fixes.", 400},
    {StatusCode::kInvalidRequest, -32600, "INVALID_REQUEST", "not a JSON-RPC 2.0 request",
     "The request was not a JSON-RPC 2.0 request: this is a bug in the client, not something a "
     "retry fixes.",
     400},
    {StatusCode::kMethodNotFound, -32601, "METHOD_NOT_FOUND", "unknown method",
     "No such method: check its name (tools/list lists the tools).", 404},
    {StatusCode::kInvalidParams, -32602, "INVALID_PARAMS", "invalid params",
     "Fix the argument named in `field` and call again.", 400},
    {StatusCode::kInternal, -32603, "INTERNAL", "internal error",
     "Retry; if it keeps failing, the server log says why.", 500},
    {StatusCode::kVersionConflict, 1001, "VERSION_CONFLICT", "the version does not match",
     "Someone else changed it: read it again (shim_state_get) and retry with the current version.",
     409},
    {StatusCode::kNotFound, 1002, "NOT_FOUND", "not found",
     "Check the id or name; it may never have existed, expired, or been removed.", 404},
    {StatusCode::kLockHeld, 1003, "LOCK_HELD", "the lock is held by another owner",
     "Another owner holds the lock: retry later or pass wait_ms to wait for it.", 409},
    {StatusCode::kNotOwner, 1004, "NOT_OWNER", "not the owner",
     "Your token or lease is stale (it expired and the work was handed to someone else): do not "
     "report this task; claim new work.",
     409},
    {StatusCode::kFenced, 1005, "FENCED", "the fencing token is not the lock's current one",
     "You no longer hold the lock this write was fenced with: re-acquire it and re-read before "
     "writing.",
     409},
    {StatusCode::kDependencyCycle, 1006, "DEPENDENCY_CYCLE", "the dependencies form a cycle",
     "Tasks in `cycle` wait for each other: remove one of those dependencies.", 409},
    {StatusCode::kTimeout, 1007, "TIMEOUT", "the wait ran out",
     "The wait ran out: try again, perhaps with a longer wait_ms.", 504},
    {StatusCode::kTooLarge, 1008, "TOO_LARGE", "over a size limit",
     "Send less: shrink or split the value (see `limit`).", 413},
    {StatusCode::kTypeMismatch, 1009, "TYPE_MISMATCH", "the stored value has another type",
     "The stored value has another type than the operation needs.", 409},
    {StatusCode::kInvalidState, 1010, "INVALID_STATE", "not allowed in this state",
     "The object is not in a state that allows this (see `state`).", 409},
    {StatusCode::kOverloaded, 1011, "OVERLOADED", "the server is at a limit",
     "The server is at a limit: retry in a moment.", 503},
    {StatusCode::kShuttingDown, 1012, "SHUTTING_DOWN", "the server is stopping",
     "The server is stopping: retry once it is back.", 503},
    {StatusCode::kUnauthorized, 1013, "UNAUTHORIZED", "authentication required",
     "The server wants its token first: configure the client with the server's token; retrying as "
     "is will not help.",
     401},
    {StatusCode::kReadOnly, 1014, "READ_ONLY", "the server is read-only until it is restarted",
     "The server hit a storage failure it could not recover from and takes no writes until it is "
     "restarted (see `cause`); reads still work. Tell the user; retrying will not help.",
     503},
    {StatusCode::kForbidden, 1015, "FORBIDDEN", "not allowed on this connection",
     "This method is only for a client on the server's own machine and Unix socket (e.g. `shim "
     "stop`); it cannot be called from here, and retrying will not help.",
     403},
}};

constexpr const ErrorRow& ErrorRowFor(StatusCode code) {
  return kErrorTable[static_cast<size_t>(code)];
}

// Wire reason and JSON-RPC error code for a status code.
constexpr std::string_view StatusCodeReason(StatusCode code) { return ErrorRowFor(code).reason; }
constexpr int StatusCodeWireCode(StatusCode code) { return ErrorRowFor(code).wire_code; }

namespace error_codes_detail {

// Row i is StatusCode i; every column filled; reasons and wire codes unique;
// the JSON-RPC reserved codes inside their range; application codes
// numbered on from 1001 without gaps; HTTP statuses 4xx/5xx (200 for OK).
constexpr bool TableIsWellFormed() {
  int next_application_code = 1001;
  for (size_t i = 0; i < kErrorTable.size(); ++i) {
    const ErrorRow& row = kErrorTable[i];
    if (static_cast<size_t>(row.code) != i) return false;
    if (row.reason.empty() || row.message.empty() || row.mcp_hint.empty()) return false;
    for (char c : row.reason) {
      if (!((c >= 'A' && c <= 'Z') || c == '_')) return false;
    }
    if (row.code == StatusCode::kOk) {
      if (row.wire_code != 0 || row.http_status != 200) return false;
      continue;
    }
    if (row.http_status < 400 || row.http_status > 599) return false;
    if (row.wire_code < 0) {
      if (row.wire_code < -32768 || row.wire_code > -32000) return false;
    } else if (row.wire_code != next_application_code++) {
      return false;
    }
    for (size_t j = 0; j < i; ++j) {
      if (kErrorTable[j].reason == row.reason || kErrorTable[j].wire_code == row.wire_code)
        return false;
    }
  }
  return true;
}

}  // namespace error_codes_detail

static_assert(error_codes_detail::TableIsWellFormed(),
              "kErrorTable: a row is out of StatusCode order, has an empty column, a duplicate "
              "reason or code, a wire code out of sequence, or an HTTP status outside 4xx/5xx");

}  // namespace shim
