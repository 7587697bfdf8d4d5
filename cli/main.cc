// shim: entry point. Dispatches to the subcommands in cli/commands.h.
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/commands.h"

namespace {

constexpr const char* kUsage = R"(shim - local coordination engine for AI chat sessions

Usage: shim COMMAND [ARGS...]

Server:
  serve                 run the server (embedded RocksDB store, Unix socket)
  mcp                   MCP over stdio (starts the server if none is running)

Client commands (talk to a running server):
  call METHOD [JSON]    send one JSON-RPC request, print the result
  state get|set|del|list ...
                        read and write versioned state
  pub CHANNEL DATA      publish a message on a durable channel
  tail CHANNEL|PATTERN  follow a channel (or glob pattern), replaying with --from
  info                  show what the server is and how it is doing
  lock status NAME | lock list
                        who holds a lock, its fencing token and waiters
  workers               registered workers and their health
  leases                live leases
  task submit|get|list|cancel|retry ...
                        submit and inspect tasks
  queues                task counts and health per queue
  bench WORKLOAD        load generator: state, pubsub, queue, lock, checkpoint
  worker run --queue Q -- COMMAND
                        run COMMAND once per claimed task (payload on stdin)

Every command takes --help. Defaults come from SHIM_HOME (else ~/.shim):
the socket is $SHIM_HOME/shim.sock (or $SHIM_SOCKET), the data $SHIM_HOME/data.
)";

}  // namespace

int main(int argc, char** argv) {
  using namespace shim::cli;
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? kExitUsage : kExitOk;
  }
  if (!std::strcmp(argv[1], "--version") || !std::strcmp(argv[1], "version")) {
    std::puts("shim 0.1.0 (protocol 1)");
    return kExitOk;
  }
  std::string command = argv[1];
  if (command == "serve") return RunServe(argc, argv, 2);
  if (command == "call") return RunCall(argc, argv, 2);
  if (command == "state") return RunState(argc, argv, 2);
  if (command == "pub") return RunPub(argc, argv, 2);
  if (command == "tail") return RunTail(argc, argv, 2);
  if (command == "info") return RunInfo(argc, argv, 2);
  if (command == "lock") return RunLock(argc, argv, 2);
  if (command == "workers") return RunWorkers(argc, argv, 2);
  if (command == "leases") return RunLeases(argc, argv, 2);
  if (command == "task") return RunTask(argc, argv, 2);
  if (command == "queues") return RunQueues(argc, argv, 2);
  if (command == "worker") return RunWorker(argc, argv, 2);
  if (command == "mcp") return RunMcp(argc, argv, 2);
  if (command == "bench") return RunBench(argc, argv, 2);
  std::fprintf(stderr, "shim: unknown command '%s'\n\n%s", command.c_str(), kUsage);
  return kExitUsage;
}
