// Reading JSON text: the one parser every path uses (request lines, the MCP
// adapter, CLI arguments and replies, stored records at recovery), with the
// limits that keep what it builds safe to walk.
//
// nlohmann parses without recursion, but dumping, copying, comparing and
// merging a document recurse once per level: a 150 KB line of 75,000
// nested arrays overflowed the stack of whoever touched it next. So nesting
// is bounded here, while the document is built, and no path parses JSON any
// other way. The other rule: an integer beyond 64 bits is refused instead of
// being rounded to a double (a 30-digit id came back as 1.2e+29). (A number
// beyond a double's range, 1e400, nlohmann itself refuses as not JSON.)
//
// Self-contained (nlohmann and base/status.h only), so it can move to a
// base library. Pure functions; any thread.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/status.h"

namespace shim {

// The deepest nesting accepted in anything a client sends (a request line,
// its envelope included; a CLI argument; a worker command's output) and in
// any value the engine builds from client input (docs/protocol.md,
// "Limits"). `[]` is one level, `[[]]` two.
inline constexpr size_t kMaxJsonDepth = 512;

// shim's own JSON (stored records, replies, notifications) holds such values
// under a few levels of its own: a record, a reply's envelope and result, a
// list item, an event. Readers of it allow this many levels, so a value at
// the limit always reads back.
inline constexpr size_t kMaxShimJsonDepth = kMaxJsonDepth + 64;

// TOO_LARGE naming the limit: data.limit = max_depth.
Status JsonTooDeep(size_t max_depth);

// Parses one JSON text (surrounding whitespace allowed, nothing else after
// it). Errors: TOO_LARGE (JsonTooDeep) past max_depth; INVALID_PARAMS for
// an integer beyond 64 bits (the message says to send it as a string), and
// for text that is not JSON ("not valid JSON: ..." with the parser's
// reason; a number beyond a double's range is one).
Result<nlohmann::json> ParseJson(std::string_view text, size_t max_depth = kMaxJsonDepth);

// ParseJson for JSON shim wrote itself (stored records; kMaxShimJsonDepth),
// for readers that treat any record they cannot read alike: the value, or a
// discarded one (is_discarded()) if it is not JSON or past a limit.
nlohmann::json ParseStoredJson(std::string_view text);

// The SAX handler behind ParseJson, for a reader that must see more than
// the document while it is built (net/ keeps the exact text of request ids
// with it). It builds what nlohmann's own parser builds and stops the parse
// at the first refused thing; run it with nlohmann::json::sax_parse(...,
// strict = true). Forward every event to it.
class JsonDocumentBuilder {
 public:
  using json = nlohmann::json;

  // Builds into `root`, which must outlive the builder.
  JsonDocumentBuilder(json& root, size_t max_depth)
      : dom_(root, /*allow_exceptions=*/false), max_depth_(max_depth) {}

  bool null() { return dom_.null(); }
  bool boolean(bool v) { return dom_.boolean(v); }
  bool number_integer(json::number_integer_t v) { return dom_.number_integer(v); }
  bool number_unsigned(json::number_unsigned_t v) { return dom_.number_unsigned(v); }
  // nlohmann reads an integer too long for 64 bits as a double: refused here.
  bool number_float(json::number_float_t v, const std::string& text);
  // A number kept as a double without those checks, for a reader that keeps
  // its exact text aside (a request id).
  bool number_kept_as_text(json::number_float_t v) { return dom_.number_float(v, {}); }
  bool string(std::string& v) { return dom_.string(v); }
  bool binary(json::binary_t& v) { return dom_.binary(v); }
  bool start_object(std::size_t n) { return Open() && dom_.start_object(n); }
  bool key(std::string& k) { return dom_.key(k); }
  bool end_object() {
    --depth_;
    return dom_.end_object();
  }
  bool start_array(std::size_t n) { return Open() && dom_.start_array(n); }
  bool end_array() {
    --depth_;
    return dom_.end_array();
  }
  bool parse_error(std::size_t position, const std::string& last_token,
                   const nlohmann::detail::exception& ex);

  // After the parse: OK, or why it stopped (what ParseJson returns).
  const Status& status() const { return status_; }
  // True when it stopped because the text is not JSON (not at a limit).
  bool syntax_error() const { return syntax_error_; }
  // The nesting depth at this point of the parse (0 outside any container).
  size_t depth() const { return depth_; }

 private:
  bool Open();
  bool Refuse(Status status);

  nlohmann::detail::json_sax_dom_parser<json> dom_;
  size_t max_depth_;
  size_t depth_ = 0;
  bool syntax_error_ = false;
  Status status_;
};

}  // namespace shim
