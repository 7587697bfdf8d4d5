// The `shim` subcommands. Each takes argv and the index of its first own
// argument, prints to stdout/stderr and returns the process exit code:
//   0 ok, 1 the server answered with an error, 2 usage error,
//   3 cannot reach a server.
#pragma once

namespace shim::cli {

int RunServe(int argc, char** argv, int from);
int RunCall(int argc, char** argv, int from);
int RunState(int argc, char** argv, int from);
int RunPub(int argc, char** argv, int from);
int RunTail(int argc, char** argv, int from);
int RunInfo(int argc, char** argv, int from);
int RunLock(int argc, char** argv, int from);
int RunWorkers(int argc, char** argv, int from);
int RunLeases(int argc, char** argv, int from);
int RunTask(int argc, char** argv, int from);
int RunQueues(int argc, char** argv, int from);
int RunWorker(int argc, char** argv, int from);
int RunMcp(int argc, char** argv, int from);
int RunBench(int argc, char** argv, int from);

constexpr int kExitOk = 0;
constexpr int kExitServerError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitNoServer = 3;

}  // namespace shim::cli
