#include "net/jsonrpc.h"

#include <optional>

#include "base/json_text.h"
#include "engine/json_parse.h"

namespace shim::net {

using nlohmann::json;

namespace {

json ErrorObject(int code, std::string message, json data) {
  return json{{"code", code}, {"message", std::move(message)}, {"data", std::move(data)}};
}

// {"error":..,"id":..,"jsonrpc":"2.0"}: the keys in the order json's
// std::map sorts them, as EncodeLine would write the envelope.
std::string ErrorLine(const RequestId& id, const json& error) {
  std::string line = R"({"error":)";
  AppendCompact(line, error);
  line += R"(,"id":)";
  line += id.text();
  line += R"(,"jsonrpc":"2.0"})";
  line += '\n';
  return line;
}

}  // namespace

RequestId RequestId::FromJson(const json& id) {
  if (id.is_null()) return RequestId();
  return RequestId(DumpCompact(id));
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

std::string EncodeResultLine(const RequestId& id, const json& result) {
  // The values are appended to `line` directly: json::dump would build a
  // string per value only for it to be copied here.
  std::string line = R"({"id":)";
  line += id.text();
  line += R"(,"jsonrpc":"2.0","result":)";
  AppendCompact(line, result);
  line += "}\n";
  return line;
}

std::string JoinBatchReplies(const std::vector<std::string>& replies) {
  std::string out;
  for (const std::string& r : replies) {
    if (r.empty()) continue;
    out += out.empty() ? '[' : ',';
    out.append(r, 0, r.size() - 1);  // without its newline
  }
  if (!out.empty()) out += "]\n";
  return out;
}

std::string EncodeResultLine(const RequestId& id, std::string_view result_json) {
  std::string line = R"({"id":)";
  line.reserve(result_json.size() + id.text().size() + 40);
  line += id.text();
  line += R"(,"jsonrpc":"2.0","result":)";
  line += result_json;
  line += "}\n";
  return line;
}

std::string EncodeErrorLine(const RequestId& id, const Status& status) {
  json data = status.details().is_object() ? status.details() : json::object();
  data["reason"] = StatusCodeReason(status.code());
  return ErrorLine(
      id, ErrorObject(StatusCodeWireCode(status.code()), status.message(), std::move(data)));
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

namespace {

// The SAX events of a request line go to the document builder, except that
// the number of an envelope's "id" (of the object, or of each member of a
// batch) which nlohmann could hold only as a double is kept as its text
// (RequestLine::id_texts) instead of being refused or rounded.
class RequestLineReader {
 public:
  explicit RequestLineReader(json& root) : builder_(root, kMaxJsonDepth) {}

  bool null() { return Value() && builder_.null(); }
  bool boolean(bool v) { return Value() && builder_.boolean(v); }
  bool number_integer(json::number_integer_t v) { return Value() && builder_.number_integer(v); }
  bool number_unsigned(json::number_unsigned_t v) { return Value() && builder_.number_unsigned(v); }
  bool number_float(json::number_float_t v, const std::string& text) {
    const bool is_id = id_next_;
    Value();
    if (!is_id) return builder_.number_float(v, text);
    id_texts_.back() = text;
    return builder_.number_kept_as_text(v);
  }
  bool string(std::string& v) { return Value() && builder_.string(v); }
  bool binary(json::binary_t& v) { return Value() && builder_.binary(v); }
  bool start_object(std::size_t n) {
    if (builder_.depth() == 0) id_texts_.emplace_back();  // a single request
    return Value() && builder_.start_object(n);
  }
  bool key(std::string& k) {
    // Of duplicate keys the last one counts, as in the document.
    id_next_ = builder_.depth() == (batch_ ? 2 : 1) && k == "id";
    if (id_next_) id_texts_.back().clear();
    return builder_.key(k);
  }
  bool end_object() { return builder_.end_object(); }
  bool start_array(std::size_t n) {
    if (builder_.depth() == 0) batch_ = true;
    return Value() && builder_.start_array(n);
  }
  bool end_array() { return builder_.end_array(); }
  bool parse_error(std::size_t position, const std::string& last_token,
                   const nlohmann::detail::exception& ex) {
    return builder_.parse_error(position, last_token, ex);
  }

  const JsonDocumentBuilder& builder() const { return builder_; }
  std::vector<std::string>& id_texts() { return id_texts_; }

 private:
  // Every value starts here: it is the id's or not, and in a batch a value
  // right inside the array is the next member.
  bool Value() {
    id_next_ = false;
    if (batch_ && builder_.depth() == 1) id_texts_.emplace_back();
    return true;
  }

  JsonDocumentBuilder builder_;
  bool batch_ = false;
  bool id_next_ = false;
  std::vector<std::string> id_texts_;
};

}  // namespace

RequestLine ReadRequestLine(std::string_view line) {
  RequestLine out;
  RequestLineReader reader(out.message);
  const bool ok = json::sax_parse(line.begin(), line.end(), &reader, json::input_format_t::json,
                                  /*strict=*/true);
  if (ok && reader.builder().status().ok()) {
    out.id_texts = std::move(reader.id_texts());
    return out;
  }
  out.message = json(json::value_t::discarded);
  out.syntax_error = reader.builder().syntax_error() || reader.builder().status().ok();
  out.status = reader.builder().status().ok() ? Status(StatusCode::kInvalidParams, "not valid JSON")
                                              : reader.builder().status();
  return out;
}

Result<Request> ParseRequest(json message, std::string_view id_text, std::string* error_line) {
  auto fail = [&](const RequestId& id, std::string msg) -> Status {
    Status s(StatusCode::kInvalidRequest, std::move(msg));
    *error_line = EncodeErrorLine(id, s);
    return s;
  };
  if (!message.is_object()) {
    return fail(RequestId(), "a request must be a JSON object");
  }
  Request req;
  if (auto it = message.find("id"); it != message.end()) {
    if (!it->is_null() && !it->is_string() && !it->is_number()) {
      return fail(RequestId(), "id must be a string, a number or null");
    }
    req.id = id_text.empty() ? RequestId::FromJson(*it) : RequestId::FromNumberText(id_text);
    req.has_id = true;
  }
  auto version = message.find("jsonrpc");
  if (version == message.end() || *version != "2.0") {
    return fail(req.id, "jsonrpc must be \"2.0\"");
  }
  auto method = message.find("method");
  if (method == message.end() || !method->is_string()) {
    return fail(req.id, "method must be a string");
  }
  req.method = method->get<std::string>();
  if (auto params = message.find("params"); params != message.end() && !params->is_null()) {
    if (!params->is_object()) {
      Status s = Status::InvalidParams("params", "params must be an object of named parameters");
      // A well-formed notification is never answered, not even with an error
      // (JSON-RPC 2.0, section 4.1): an empty line tells the caller to send nothing.
      *error_line = req.has_id ? EncodeErrorLine(req.id, s) : std::string();
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
  RequestId id;
  bool null() override { return Scalar(RequestId()); }
  bool boolean(bool) override { return Scalar(std::nullopt); }
  bool number_integer(number_integer_t v) override { return Scalar(RequestId::FromJson(v)); }
  bool number_unsigned(number_unsigned_t v) override { return Scalar(RequestId::FromJson(v)); }
  bool number_float(number_float_t, const string_t& text) override {
    return Scalar(RequestId::FromNumberText(text));
  }
  bool string(string_t& v) override { return Scalar(RequestId::FromJson(v)); }
  bool binary(binary_t&) override { return Scalar(std::nullopt); }
  bool start_object(std::size_t) override { return Open(); }
  bool end_object() override { return Close(); }
  bool start_array(std::size_t) override { return Open(); }
  bool end_array() override { return Close(); }
  bool key(string_t& k) override {
    id_is_next_ = depth_ == 1 && k == "id";
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  // `v`: the id this value makes, if it may be one.
  bool Scalar(std::optional<RequestId> v) {
    if (id_is_next_ && depth_ == 1) {
      if (v) id = std::move(*v);
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
  size_t depth_ = 0;
  bool id_is_next_ = false;
};

}  // namespace

RequestId IdFromLine(std::string_view line) {
  IdFinder finder;
  // Nothing is built, and nlohmann's parser keeps its nesting in a vector,
  // not on the stack: any depth is safe here.
  (void)nlohmann::json::sax_parse(line.begin(), line.end(), &finder,
                                  nlohmann::json::input_format_t::json,
                                  /*strict=*/false);
  return finder.id;
}

RequestId IdFromLineStart(std::string_view line_start) {
  // Clients put "id" near the front; a bounded look keeps this cheap.
  constexpr size_t kLookAt = 64 << 10;
  return IdFromLine(line_start.substr(0, kLookAt));
}

}  // namespace shim::net
