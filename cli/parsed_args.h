// ParsedArgs: what one `shim` command line said, once cli/command_line.cc
// has parsed it against the command table (cli/command_table.h): the
// command, its positionals in order, and the options given, by name
// without the "--". Values were checked while parsing (an option whose
// value is "N" holds an integer), so commands read them without error
// paths of their own. Plain data; used by one thread.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace shim::cli {

class ParsedArgs {
 public:
  // The command's words: "state set".
  const std::string& command() const { return command_; }
  // Its last word: "set".
  std::string verb() const;
  const std::vector<std::string>& positional() const { return positional_; }
  bool Flag(const std::string& name) const { return flags_.count(name) > 0; }
  // The value of option --name (the last one, if it was given more than once).
  std::optional<std::string> Get(const std::string& name) const;
  std::string GetOr(const std::string& name, std::string fallback) const;
  // Integer option --name into *out, which keeps its value when the option
  // is absent. False only if the value is not an integer.
  bool GetInt(const std::string& name, long long* out) const;
  // Every value of a repeatable option, comma-separated items split apart,
  // empty items dropped: `--queue a,b --queue c` -> {a, b, c}.
  std::vector<std::string> GetList(const std::string& name) const;

  // Filled by the parser.
  void SetCommand(std::string command) { command_ = std::move(command); }
  void AddPositional(std::string value) { positional_.push_back(std::move(value)); }
  void AddValue(const std::string& name, std::string value) {
    values_[name].push_back(std::move(value));
  }
  void SetFlag(const std::string& name) { flags_.insert(name); }

 private:
  std::string command_;
  std::vector<std::string> positional_;
  std::map<std::string, std::vector<std::string>> values_;
  std::set<std::string> flags_;
};

}  // namespace shim::cli
