// The `shim` command line as data, one table per concept: every option once
// (Options(), with the help text most commands mean by it) and every command
// once (Commands(): its words, positionals, options and the function that
// runs it). cli/command_line.cc builds the CLI11 parser, the help and the
// shell completion from these tables, so a new command or option is a row
// here (plus its Run function), nothing else.
#pragma once

#include <string_view>
#include <vector>

#include "cli/parsed_args.h"

namespace shim::cli {

struct OptionSpec {
  std::string_view name;   // without "--"
  std::string_view value;  // what it takes, e.g. "PATH"; "N" and "SEQ" are checked to be
                           // integers while parsing; empty: a flag
  std::string_view help;
  bool repeatable = false;  // may be given more than once (ParsedArgs::GetList)
  bool global = false;      // every client command takes it, before or after the command
};

// An option as one command uses it; `help` replaces the table's text where
// the command gives the option its own meaning (serve's --socket).
struct OptionUse {
  OptionUse(const char* name, std::string_view help = {}) : name(name), help(help) {}
  std::string_view name;
  std::string_view help;
};

struct CommandSpec {
  std::string_view path;     // its words: "state set"; a group ("state") has no `run`
  std::string_view args;     // positionals: "KEY VALUE"; "[PREFIX]" optional; "COMMAND..." many
  std::string_view summary;  // one line, shown in the parent's list
  std::vector<OptionUse> options = {};
  int (*run)(const ParsedArgs&) = nullptr;
  std::string_view help = {};  // more text, after the options in its --help
  bool client = true;          // talks to a server: takes the global options
};

const std::vector<OptionSpec>& Options();
const std::vector<CommandSpec>& Commands();
// The table's row for option `name`; null if there is none.
const OptionSpec* FindOption(std::string_view name);

}  // namespace shim::cli
