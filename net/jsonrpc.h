// JSON-RPC 2.0 envelopes: the single place where a Status becomes a wire
// error (code, message, data.reason + details), and where the protocol-level
// errors that have no engine Status (PARSE_ERROR, INVALID_REQUEST,
// METHOD_NOT_FOUND) are built. Pure functions; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "storage/status.h"

namespace shim::net {

enum class ProtocolError { kParseError, kInvalidRequest, kMethodNotFound };

nlohmann::json ResultResponse(const nlohmann::json& id, nlohmann::json result);
nlohmann::json ErrorResponse(const nlohmann::json& id, const Status& status);
nlohmann::json ProtocolErrorResponse(const nlohmann::json& id, ProtocolError error, std::string message);
nlohmann::json RequestMessage(uint64_t id, std::string_view method, const nlohmann::json& params);
nlohmann::json Notification(std::string_view method, const nlohmann::json& params);

// Compact one-line encoding; invalid UTF-8 is replaced, never thrown.
std::string EncodeLine(const nlohmann::json& message);
// EncodeLine(ResultResponse(id, result)), byte for byte, without building
// the envelope document: the reply of nearly every request takes this path.
std::string EncodeResultLine(const nlohmann::json& id, const nlohmann::json& result);
// The same line from a result already encoded as compact JSON text
// (engine::EncodedReplyFn): EncodeResultLine(id, json::parse(result_json)).
std::string EncodeResultLine(const nlohmann::json& id, std::string_view result_json);
// EncodeLine(Notification(method, params)), byte for byte, from params
// already encoded as compact JSON (engine::Client::NotifyEncoded). `method`
// is one of shim's own names, which need no escaping.
std::string EncodeNotificationLine(std::string_view method, std::string_view params_json);

// A request that passed envelope validation.
struct Request {
  nlohmann::json id;          // null for notifications (has_id false)
  bool has_id = false;
  std::string method;
  nlohmann::json params;      // object or null
};

// Validates one JSON-RPC request object. On failure returns the error
// response to send (with the request's id when it could be read), or null
// when nothing may be sent (a notification with ill-formed params).
Result<Request> ParseRequest(nlohmann::json message, nlohmann::json* error_response);

// The top-level "id" (string or number) of a request, read from the first
// bytes of its line only; null when it is not among them. An over-long line
// is never parsed whole, but its TOO_LARGE answer should still carry the id
// so the client can match it (MCP SDKs wait for it otherwise).
nlohmann::json IdFromLineStart(std::string_view line_start);

}  // namespace shim::net
