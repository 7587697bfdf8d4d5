// JSON-RPC 2.0 envelopes: the single place where a Status becomes a wire
// error (code, message, data.reason + details). The protocol-level errors
// (PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND) are Statuses too, rows of
// the same table (base/error_codes.h). Pure functions; any thread.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace shim::net {

// A request's id as it goes back to the client: its JSON text. JSON allows
// integers of any length and fractions of any precision, which nlohmann
// holds only as a rounded double (a 30-digit id came back as
// 1.2345678901234568e+29 and matched nothing), so a number the reader had
// to take as a double keeps the exact text the client wrote. Integers
// within 64 bits and strings are kept as their canonical encoding (the same
// value, and the same bytes as every client writes them).
class RequestId {
 public:
  RequestId() = default;  // null
  // A string, a number or null as a document holds it.
  static RequestId FromJson(const nlohmann::json& id);
  // A JSON number exactly as written (valid JSON number text).
  static RequestId FromNumberText(std::string_view text) { return RequestId(std::string(text)); }

  const std::string& text() const { return text_; }
  bool operator==(const RequestId&) const = default;

 private:
  explicit RequestId(std::string text) : text_(std::move(text)) {}
  std::string text_ = "null";
};

// Lines (compact JSON, keys in alphabetical order, newline-terminated) of
// the envelopes shim sends; invalid UTF-8 is replaced, never thrown.
std::string EncodeLine(const nlohmann::json& message);
// {"id":..,"jsonrpc":"2.0","result":..}: the reply of nearly every request.
std::string EncodeResultLine(const RequestId& id, const nlohmann::json& result);
// The same line from a result already encoded as compact JSON text
// (engine::EncodedReplyFn).
std::string EncodeResultLine(const RequestId& id, std::string_view result_json);
// {"error":{"code":..,"data":{..,"reason":..},"message":..},"id":..,"jsonrpc":"2.0"}:
// the one place a Status becomes a wire error, the protocol-level ones
// (StatusCode::kParseError, ...) included.
std::string EncodeErrorLine(const RequestId& id, const Status& status);
// EncodeLine(Notification(method, params)), byte for byte, from params
// already encoded as compact JSON (engine::Client::NotifyEncoded). `method`
// is one of shim's own names, which need no escaping.
std::string EncodeNotificationLine(std::string_view method, std::string_view params_json);
// A batch's reply line from its members' reply lines in request order: one
// array, its compact encoding their texts joined by commas; a notification's
// empty line contributes nothing. Empty when no member is answered (an
// all-notification batch gets no reply at all).
std::string JoinBatchReplies(const std::vector<std::string>& replies);

// Documents a client sends.
nlohmann::json RequestMessage(uint64_t id, std::string_view method, const nlohmann::json& params);
nlohmann::json Notification(std::string_view method, const nlohmann::json& params);

// A request that passed envelope validation.
struct Request {
  RequestId id;  // null for notifications (has_id false)
  bool has_id = false;
  std::string method;
  nlohmann::json params;  // object or null
};

// A line read by the general path (anything the fast path of
// net/simple_request.h declines): one request object or a batch array,
// with nesting bounded by kMaxJsonDepth and no integer beyond 64 bits
// (engine/json_parse.h), in one pass.
struct RequestLine {
  nlohmann::json message;  // discarded unless status is OK
  // Per request (the object, or each batch member in order): the exact
  // text of its "id" when that is a number kept aside as text, else empty.
  std::vector<std::string> id_texts;
  // Not OK: the line is not JSON (syntax_error), or it was refused at a
  // limit (TOO_LARGE past the depth, INVALID_PARAMS for a long integer).
  Status status;
  bool syntax_error = false;
};
RequestLine ReadRequestLine(std::string_view line);

// Validates one JSON-RPC request object; `id_text` is its RequestLine
// id_texts entry (empty when there is none). On failure `error_line` gets
// the line to send (with the request's id when it could be read), or stays
// empty when nothing may be sent (a notification with ill-formed params).
Result<Request> ParseRequest(nlohmann::json message, std::string_view id_text,
                             std::string* error_line);

// The top-level "id" (string or number, exact) of a request, from its text,
// which need not be complete or valid JSON past the id: an over-long line
// is never parsed whole, and a line refused at a limit not built, but the
// error should still carry the id so the client can match it (MCP SDKs wait
// for it otherwise). IdFromLineStart looks at the first 64 KiB only.
RequestId IdFromLine(std::string_view line);
RequestId IdFromLineStart(std::string_view line_start);

}  // namespace shim::net
