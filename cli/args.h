// Args: the small command-line parser every `shim` command uses.
// Accepts `--name value`, `--name=value`, boolean `--name`, and positionals;
// `--` ends options. Which names take a value is declared up front, so a
// typo is an error rather than a silently ignored flag.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace shim::cli {

class Args {
 public:
  // `valued`: options that take a value; `flags`: boolean options.
  Args(std::set<std::string> valued, std::set<std::string> flags);
  // Parses argv[from..]. False with error() set on an unknown option or a
  // missing value.
  bool Parse(int argc, char** argv, int from);

  const std::vector<std::string>& positional() const { return positional_; }
  // Everything after `--`, verbatim.
  const std::vector<std::string>& rest() const { return rest_; }
  bool Flag(const std::string& name) const { return flags_set_.count(name) > 0; }
  std::optional<std::string> Get(const std::string& name) const;
  std::string GetOr(const std::string& name, std::string fallback) const;
  // Integer option; false with error() set when not a number.
  bool GetInt(const std::string& name, long long* out) const;
  const std::string& error() const { return error_; }

 private:
  std::set<std::string> valued_, flags_;
  std::map<std::string, std::string> values_;
  std::set<std::string> flags_set_;
  std::vector<std::string> positional_, rest_;
  mutable std::string error_;
};

}  // namespace shim::cli
