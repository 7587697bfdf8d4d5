// The `shim` command line: parses argv against the command table
// (cli/command_table.h) with CLI11 and runs the command it names. Owns the
// rules every command shares: global options before or after the command,
// `--help` and `shim help CMD`, "did you mean" for an unknown command,
// subcommand or option, and exit code 2 for every usage error.
#pragma once

#include <memory>

namespace CLI {
class App;
}

namespace shim::cli {

// Parses and runs; returns the process exit code (cli/commands.h).
int RunCommandLine(int argc, char** argv);

// The parser for the whole command table, for the completion scripts.
std::unique_ptr<CLI::App> BuildCommandLine();

}  // namespace shim::cli
