#include "net/jsonrpc.h"

#include "engine/json_text.h"

namespace shim::net {

using nlohmann::json;

json ResultResponse(const json& id, json result) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

json ErrorResponse(const json& id, const Status& status) {
  json data = status.details().is_object() ? status.details() : json::object();
  data["reason"] = StatusCodeReason(status.code());
  return json{{"jsonrpc", "2.0"},
              {"id", id},
              {"error",
               {{"code", StatusCodeWireCode(status.code())}, {"message", status.message()}, {"data", data}}}};
}

json ProtocolErrorResponse(const json& id, ProtocolError error, std::string message) {
  int code = -32700;
  const char* reason = "PARSE_ERROR";
  if (error == ProtocolError::kInvalidRequest) {
    code = -32600;
    reason = "INVALID_REQUEST";
  } else if (error == ProtocolError::kMethodNotFound) {
    code = -32601;
    reason = "METHOD_NOT_FOUND";
  }
  return json{{"jsonrpc", "2.0"},
              {"id", id},
              {"error", {{"code", code}, {"message", std::move(message)}, {"data", {{"reason", reason}}}}}};
}

json RequestMessage(uint64_t id, std::string_view method, const json& params) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}};
}

json Notification(std::string_view method, const json& params) {
  return json{{"jsonrpc", "2.0"}, {"method", method}, {"params", params}};
}

std::string EncodeLine(const json& message) {
  std::string line = DumpCompact(message);
  line.push_back('\n');
  return line;
}

std::string EncodeResultLine(const json& id, const json& result) {
  // The keys in the order json's std::map sorts them, as EncodeLine writes
  // them. The values are appended to `line` directly: json::dump would
  // build a string per value only for it to be copied here.
  std::string line = R"({"id":)";
  AppendCompact(line, id);
  line += R"(,"jsonrpc":"2.0","result":)";
  AppendCompact(line, result);
  line += "}\n";
  return line;
}

std::string EncodeResultLine(const json& id, std::string_view result_json) {
  std::string line = R"({"id":)";
  line.reserve(result_json.size() + 48);
  AppendCompact(line, id);
  line += R"(,"jsonrpc":"2.0","result":)";
  line += result_json;
  line += "}\n";
  return line;
}

std::string EncodeNotificationLine(std::string_view method, std::string_view params_json) {
  std::string line;
  line.reserve(params_json.size() + method.size() + 40);
  line += R"({"jsonrpc":"2.0","method":")";
  line += method;
  line += R"(","params":)";
  line += params_json;
  line += "}\n";
  return line;
}

Result<Request> ParseRequest(json message, json* error_response) {
  auto fail = [&](const json& id, ProtocolError e, std::string msg) -> Status {
    *error_response = ProtocolErrorResponse(id, e, msg);
    return Status(StatusCode::kInvalidParams, std::move(msg));
  };
  if (!message.is_object()) {
    return fail(nullptr, ProtocolError::kInvalidRequest, "a request must be a JSON object");
  }
  Request req;
  if (auto it = message.find("id"); it != message.end()) {
    if (!it->is_null() && !it->is_string() && !it->is_number()) {
      return fail(nullptr, ProtocolError::kInvalidRequest, "id must be a string, a number or null");
    }
    req.id = *it;
    req.has_id = true;
  }
  auto version = message.find("jsonrpc");
  if (version == message.end() || *version != "2.0") {
    return fail(req.id, ProtocolError::kInvalidRequest, "jsonrpc must be \"2.0\"");
  }
  auto method = message.find("method");
  if (method == message.end() || !method->is_string()) {
    return fail(req.id, ProtocolError::kInvalidRequest, "method must be a string");
  }
  req.method = method->get<std::string>();
  if (auto params = message.find("params"); params != message.end() && !params->is_null()) {
    if (!params->is_object()) {
      Status s = Status::InvalidParams("params", "params must be an object of named parameters");
      // A well-formed notification is never answered, not even with an error
      // (JSON-RPC 2.0, section 4.1): null tells the caller to send nothing.
      *error_response = req.has_id ? ErrorResponse(req.id, s) : json(nullptr);
      return s;
    }
    req.params = std::move(*params);
  }
  return req;
}

namespace {

// SAX handler that records the value of "id" at depth 1 and stops there.
class IdFinder : public nlohmann::json_sax<nlohmann::json> {
 public:
  nlohmann::json id;
  bool null() override { return Scalar(nullptr); }
  bool boolean(bool v) override { return Scalar(v); }
  bool number_integer(number_integer_t v) override { return Scalar(v); }
  bool number_unsigned(number_unsigned_t v) override { return Scalar(v); }
  bool number_float(number_float_t v, const string_t&) override { return Scalar(v); }
  bool string(string_t& v) override { return Scalar(v); }
  bool binary(binary_t&) override { return Scalar(nullptr); }
  bool start_object(std::size_t) override { return Open(); }
  bool end_object() override { return Close(); }
  bool start_array(std::size_t) override { return Open(); }
  bool end_array() override { return Close(); }
  bool key(string_t& k) override {
    id_is_next_ = depth_ == 1 && k == "id";
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  bool Scalar(nlohmann::json v) {
    if (id_is_next_ && depth_ == 1) {
      if (v.is_string() || v.is_number()) id = std::move(v);
      return false;  // found (or an id of the wrong type): stop
    }
    return true;
  }
  bool Open() {
    if (id_is_next_ && depth_ == 1) return false;  // an object or array id is invalid: stop
    return ++depth_ > 0;
  }
  bool Close() {
    --depth_;
    return true;
  }
  int depth_ = 0;
  bool id_is_next_ = false;
};

}  // namespace

nlohmann::json IdFromLineStart(std::string_view line_start) {
  // Clients put "id" near the front; a bounded look keeps this cheap.
  constexpr size_t kLookAt = 64 << 10;
  IdFinder finder;
  const std::string_view head = line_start.substr(0, kLookAt);
  (void)nlohmann::json::sax_parse(head.begin(), head.end(), &finder, nlohmann::json::input_format_t::json,
                                  /*strict=*/false);
  return finder.id;
}

}  // namespace shim::net
