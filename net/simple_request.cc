#include "net/simple_request.h"

#include <cstdint>

#include "engine/json_parse.h"

namespace shim::net {

using nlohmann::json;

namespace {

// Reads JSON tokens of the shapes ParseSimpleRequest accepts; every method
// returns false on anything else, and the whole line then takes the general
// path, so nothing here needs to produce an error.
class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}

  bool AtEnd() const { return i_ == s_.size(); }
  char Peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  bool Eat(char c) {
    if (AtEnd() || s_[i_] != c) return false;
    ++i_;
    return true;
  }
  void SkipSpace() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  bool Literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }
  // A string of printable ASCII without escapes: its bytes are its value.
  bool SimpleString(std::string_view* out) {
    if (!Eat('"')) return false;
    const size_t start = i_;
    for (; i_ < s_.size(); ++i_) {
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        *out = s_.substr(start, i_ - start);
        ++i_;
        return true;
      }
      if (c < 0x20 || c > 0x7e || c == '\\') return false;
    }
    return false;
  }
  // An integer as nlohmann stores it: unsigned when positive, signed when
  // negative. 18 digits fit either; longer ones, fractions and exponents go
  // the general way.
  bool Integer(json* out) {
    const bool negative = Eat('-');
    const size_t start = i_;
    uint64_t value = 0;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9')
      value = value * 10 + static_cast<uint64_t>(s_[i_++] - '0');
    const size_t digits = i_ - start;
    if (digits == 0 || digits > 18 || (digits > 1 && s_[start] == '0')) return false;
    if (Peek() == '.' || Peek() == 'e' || Peek() == 'E') return false;
    if (negative) {
      *out = -static_cast<int64_t>(value);
    } else {
      *out = value;
    }
    return true;
  }
  // The elements of an object or an array, the opening bracket at i_: each
  // read by `element` (false: not plain), separated by commas, up to `close`.
  template <class Element>
  bool Elements(char close, Element element) {
    ++i_;
    SkipSpace();
    if (Eat(close)) return true;
    for (;;) {
      if (!element()) return false;
      SkipSpace();
      if (Eat(close)) return true;
      if (!Eat(',')) return false;
      SkipSpace();
    }
  }
  // A value built of what the scanner reads exactly as nlohmann would:
  // objects (without duplicate keys) and arrays nested at most kMaxDepth
  // deep, simple strings, short integers, true, false and null. Most
  // params are only that, and building them here skips nlohmann's per-parse
  // setup and per-character token buffer, which cost more than the
  // envelope itself.
  bool PlainValue(json* out, int depth = 0) {
    constexpr int kMaxDepth = 32;
    switch (Peek()) {
      case '"': {
        std::string_view text;
        if (!SimpleString(&text)) return false;
        *out = text;
        return true;
      }
      case '{':
        if (depth == kMaxDepth) return false;
        *out = json::object();
        return Elements('}', [&] {
          std::string_view key;
          if (!SimpleString(&key)) return false;
          SkipSpace();
          if (!Eat(':')) return false;
          SkipSpace();
          json value;
          if (!PlainValue(&value, depth + 1)) return false;
          return out->emplace(key, std::move(value)).second;  // false for a duplicate key
        });
      case '[':
        if (depth == kMaxDepth) return false;
        *out = json::array();
        return Elements(']', [&] {
          json value;
          if (!PlainValue(&value, depth + 1)) return false;
          out->push_back(std::move(value));
          return true;
        });
      case 't':
        *out = true;
        return Literal("true");
      case 'f':
        *out = false;
        return Literal("false");
      case 'n':
        *out = nullptr;
        return Literal("null");
      default:
        return Integer(out);
    }
  }
  size_t position() const { return i_; }
  void Rewind(size_t to) { i_ = to; }

  // The text of the object starting here, found by counting brackets outside
  // strings. It is only a candidate: the caller parses it, which rejects
  // anything that is not exactly one valid object.
  bool ObjectText(std::string_view* out) {
    const size_t start = i_;
    int depth = 0;
    while (i_ < s_.size()) {
      const char c = s_[i_++];
      if (c == '"') {
        while (i_ < s_.size() && s_[i_] != '"') i_ += s_[i_] == '\\' ? 2 : 1;
        if (i_ >= s_.size()) return false;
        ++i_;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if ((c == '}' || c == ']') && --depth == 0) {
        *out = s_.substr(start, i_ - start);
        return true;
      }
    }
    return false;
  }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

std::optional<Request> ParseSimpleRequest(std::string_view line) {
  Scanner in(line);
  in.SkipSpace();
  if (!in.Eat('{')) return std::nullopt;
  in.SkipSpace();
  Request req;
  bool seen_version = false, seen_method = false, seen_params = false;
  for (;;) {
    std::string_view key;
    if (!in.SimpleString(&key)) return std::nullopt;
    in.SkipSpace();
    if (!in.Eat(':')) return std::nullopt;
    in.SkipSpace();
    if (key == "jsonrpc") {
      std::string_view version;
      if (seen_version || !in.SimpleString(&version) || version != "2.0") return std::nullopt;
      seen_version = true;
    } else if (key == "method") {
      std::string_view method;
      if (seen_method || !in.SimpleString(&method)) return std::nullopt;
      req.method = method;
      seen_method = true;
    } else if (key == "id") {
      if (req.has_id) return std::nullopt;
      if (in.Peek() == '"') {
        std::string_view id;
        if (!in.SimpleString(&id)) return std::nullopt;
        req.id = RequestId::FromJson(id);
      } else if (in.Peek() == 'n') {
        if (!in.Literal("null")) return std::nullopt;
      } else {
        json id;
        if (!in.Integer(&id)) return std::nullopt;
        req.id = RequestId::FromJson(id);
      }
      req.has_id = true;
    } else if (key == "params") {
      if (seen_params) return std::nullopt;
      seen_params = true;
      if (in.Peek() == 'n') {
        if (!in.Literal("null")) return std::nullopt;
      } else {
        if (in.Peek() != '{') return std::nullopt;
        const size_t start = in.position();
        if (!in.PlainValue(&req.params)) {
          // Escapes, non-ASCII text, fractions, ...: nlohmann reads the object,
          // under the line's depth limit less the envelope's level. Anything
          // it refuses is answered by the general path.
          in.Rewind(start);
          std::string_view text;
          if (!in.ObjectText(&text)) return std::nullopt;
          Result<json> params = ParseJson(text, kMaxJsonDepth - 1);
          if (!params.ok()) return std::nullopt;
          req.params = std::move(params).value();
        }
      }
    } else {
      return std::nullopt;
    }
    in.SkipSpace();
    if (in.Eat('}')) break;
    if (!in.Eat(',')) return std::nullopt;
    in.SkipSpace();
  }
  in.SkipSpace();
  if (!in.AtEnd() || !seen_version || !seen_method) return std::nullopt;
  return req;
}

}  // namespace shim::net
