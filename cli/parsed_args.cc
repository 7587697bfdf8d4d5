#include "cli/parsed_args.h"

#include <cerrno>
#include <cstdlib>

namespace shim::cli {

std::string ParsedArgs::verb() const {
  const size_t space = command_.rfind(' ');
  return space == std::string::npos ? command_ : command_.substr(space + 1);
}

std::optional<std::string> ParsedArgs::Get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::string ParsedArgs::GetOr(const std::string& name, std::string fallback) const {
  return Get(name).value_or(std::move(fallback));
}

bool ParsedArgs::GetInt(const std::string& name, long long* out) const {
  auto v = Get(name);
  if (!v) return true;
  char* end = nullptr;
  errno = 0;
  const long long n = std::strtoll(v->c_str(), &end, 10);
  if (v->empty() || *end != '\0' || errno != 0) return false;
  *out = n;
  return true;
}

std::vector<std::string> ParsedArgs::GetList(const std::string& name) const {
  std::vector<std::string> out;
  auto it = values_.find(name);
  if (it == values_.end()) return out;
  for (const std::string& value : it->second) {
    size_t start = 0;
    for (;;) {
      const size_t comma = value.find(',', start);
      std::string item = value.substr(start, comma == std::string::npos ? comma : comma - start);
      if (!item.empty()) out.push_back(std::move(item));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return out;
}

}  // namespace shim::cli
