// JSON text as shim writes it everywhere: compact (no whitespace), with
// invalid UTF-8 replaced by U+FFFD instead of an exception. Stored values,
// payloads, checkpoint data, pub/sub messages and every line on the wire
// use this one spelling, so a value's bytes are the same wherever it goes;
// state.get and pub/sub rely on that when they copy stored text into a
// reply instead of parsing and dumping it again.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace shim {

inline std::string DumpCompact(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Appends DumpCompact(value) to `out` without building a separate string.
inline void AppendCompact(std::string& out, const nlohmann::json& value) {
  nlohmann::detail::serializer<nlohmann::json> serializer(nlohmann::detail::output_adapter<char>(out), ' ',
                                                          nlohmann::json::error_handler_t::replace);
  serializer.dump(value, false, false, 0);
}

}  // namespace shim
