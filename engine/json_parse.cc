#include "engine/json_parse.h"

namespace shim {

namespace {

// A number's text as it goes into a message: long ones are cut.
std::string Quoted(std::string_view number) {
  constexpr size_t kShown = 40;
  if (number.size() <= kShown) return std::string(number);
  return std::string(number.substr(0, kShown)) + "... (" + std::to_string(number.size()) +
         " characters)";
}

bool IsIntegerText(std::string_view number) {
  return number.find_first_of(".eE") == std::string_view::npos;
}

}  // namespace

Status JsonTooDeep(size_t max_depth) {
  return Status::TooLarge("JSON nested deeper than " + std::to_string(max_depth) +
                              " levels (arrays and objects inside each other); flatten it",
                          max_depth);
}

bool JsonDocumentBuilder::number_float(json::number_float_t v, const std::string& text) {
  if (IsIntegerText(text)) {
    return Refuse(Status(StatusCode::kInvalidParams,
                         "the integer " + Quoted(text) +
                             " does not fit in 64 bits and would be rounded; send it as a string"));
  }
  return dom_.number_float(v, text);
}

bool JsonDocumentBuilder::parse_error(std::size_t, const std::string&,
                                      const nlohmann::detail::exception& ex) {
  syntax_error_ = true;
  status_ = Status(StatusCode::kInvalidParams, std::string("not valid JSON: ") + ex.what());
  return false;
}

bool JsonDocumentBuilder::Open() {
  // Counted before the container is added: the document never holds a
  // level past the limit, even for a moment.
  if (++depth_ > max_depth_) return Refuse(JsonTooDeep(max_depth_));
  return true;
}

bool JsonDocumentBuilder::Refuse(Status status) {
  status_ = std::move(status);
  return false;
}

Result<nlohmann::json> ParseJson(std::string_view text, size_t max_depth) {
  nlohmann::json root;
  JsonDocumentBuilder builder(root, max_depth);
  const bool ok = nlohmann::json::sax_parse(text.begin(), text.end(), &builder,
                                            nlohmann::json::input_format_t::json,
                                            /*strict=*/true);
  if (!ok || !builder.status().ok()) {
    if (builder.status().ok()) return Status(StatusCode::kInvalidParams, "not valid JSON");
    return builder.status();
  }
  return root;
}

nlohmann::json ParseStoredJson(std::string_view text) {
  Result<nlohmann::json> value = ParseJson(text, kMaxShimJsonDepth);
  return value.ok() ? std::move(value).value() : nlohmann::json(nlohmann::json::value_t::discarded);
}

}  // namespace shim
