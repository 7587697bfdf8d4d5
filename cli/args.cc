#include "cli/args.h"

#include <cstdlib>

namespace shim::cli {

Args::Args(std::set<std::string> valued, std::set<std::string> flags)
    : valued_(std::move(valued)), flags_(std::move(flags)) {}

bool Args::Parse(int argc, char** argv, int from) {
  for (int i = from; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") {
      for (++i; i < argc; ++i) rest_.push_back(argv[i]);
      break;
    }
    if (a.size() > 2 && a.rfind("--", 0) == 0) {
      std::string name = a.substr(2), value;
      bool has_value = false;
      if (auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        has_value = true;
      }
      if (flags_.count(name)) {
        if (has_value) {
          error_ = "--" + name + " takes no value";
          return false;
        }
        flags_set_.insert(name);
        continue;
      }
      if (!valued_.count(name)) {
        error_ = "unknown option --" + name;
        return false;
      }
      if (!has_value) {
        if (i + 1 >= argc) {
          error_ = "--" + name + " needs a value";
          return false;
        }
        value = argv[++i];
      }
      values_[name] = value;
      continue;
    }
    if (a == "-h") {
      flags_set_.insert("help");
      continue;
    }
    positional_.push_back(a);
  }
  return true;
}

std::optional<std::string> Args::Get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string Args::GetOr(const std::string& name, std::string fallback) const {
  return Get(name).value_or(std::move(fallback));
}

bool Args::GetInt(const std::string& name, long long* out) const {
  auto v = Get(name);
  if (!v) return true;
  char* end = nullptr;
  errno = 0;
  long long n = std::strtoll(v->c_str(), &end, 10);
  if (v->empty() || *end != '\0' || errno != 0) {
    error_ = "--" + name + " wants an integer, got '" + *v + "'";
    return false;
  }
  *out = n;
  return true;
}

}  // namespace shim::cli
