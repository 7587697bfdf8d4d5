// The `shim` subcommands. Each runs one command line parsed against
// cli/command_table.cc, prints to stdout/stderr and returns the process
// exit code:
//   0 ok, 1 the server answered with an error, 2 usage error,
//   3 cannot reach a server (or it refused the auth token).
#pragma once

#include "cli/parsed_args.h"

namespace shim::cli {

int RunServe(const ParsedArgs& args);
int RunCall(const ParsedArgs& args);
int RunState(const ParsedArgs& args);
int RunPub(const ParsedArgs& args);
int RunTail(const ParsedArgs& args);
int RunInfo(const ParsedArgs& args);
int RunLock(const ParsedArgs& args);
int RunWorkers(const ParsedArgs& args);
int RunLeases(const ParsedArgs& args);
int RunTask(const ParsedArgs& args);
int RunQueues(const ParsedArgs& args);
int RunQueue(const ParsedArgs& args);
int RunWorker(const ParsedArgs& args);
int RunMcp(const ParsedArgs& args);
int RunStop(const ParsedArgs& args);
int RunBench(const ParsedArgs& args);
// cli/command_line.cc: `shim help [COMMAND...]` and `shim version`.
int RunHelp(const ParsedArgs& args);
int RunVersion(const ParsedArgs& args);
int RunCompletion(const ParsedArgs& args);

constexpr int kExitOk = 0;
constexpr int kExitServerError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitNoServer = 3;

}  // namespace shim::cli
