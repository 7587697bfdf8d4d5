// `shim stop`: asks the server on the Unix socket to stop (sys.shutdown:
// it finishes the writes in flight, as on SIGTERM) and, with --wait, waits
// until its process has exited.
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>

#include "cli/client_util.h"
#include "cli/commands.h"
#include "cli/data_dir_owner.h"
#include "cli/paths.h"

namespace shim::cli {
namespace {

using nlohmann::json;

bool PathExists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// Waits until the server's socket file is gone and process `pid` has
// ended; false if that takes longer than timeout_ms.
bool WaitUntilGone(const std::string& socket, pid_t pid, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (PathExists(socket) || ProcessRunning(pid)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

}  // namespace

int RunStop(const ParsedArgs& args) {
  const std::string socket = args.GetOr("socket", DefaultSocketPath());
  auto connected = ConnectFromArgs(args);
  if (!connected.ok()) {
    // Nothing listens (no socket file, or one a killed server left): say
    // so plainly rather than suggest starting one.
    const bool none = !args.Get("connect") &&
                      connected.status().message().starts_with("no shim server is running");
    if (none) {
      std::fprintf(stderr, "shim stop: no shim server is running at %s (nothing to stop)\n",
                   socket.c_str());
      return kExitNoServer;
    }
    PrintError("stop", connected.status());
    return kExitNoServer;
  }
  auto client = std::move(connected).value();
  auto stopping = client->Call("sys.shutdown", json::object(), TimeoutMs(args));
  // A server already stopping answers SHUTTING_DOWN: what was asked is under way.
  const bool already = !stopping.ok() && stopping.status().code() == StatusCode::kShuttingDown;
  if (!stopping.ok() && !already) return PrintError("stop", stopping.status());
  const pid_t pid = stopping.ok() ? stopping->value("pid", pid_t{0}) : pid_t{0};
  if (args.Flag("wait") && !WaitUntilGone(socket, pid, TimeoutMs(args))) {
    std::fprintf(stderr, "shim stop: the server (pid %d) was still running after %d ms\n",
                 static_cast<int>(pid), TimeoutMs(args));
    return kExitServerError;
  }
  if (PrintedAsJson(args, stopping.ok() ? *stopping : json{{"stopping", true}})) return kExitOk;
  std::cout << (already ? "the server was already stopping"
                        : "stopping the server (pid " + std::to_string(pid) + ")")
            << (args.Flag("wait") ? "; it has exited" : "") << "\n";
  return kExitOk;
}

}  // namespace shim::cli
