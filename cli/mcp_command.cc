// `shim mcp`: the MCP server over stdio, for MCP clients that launch a
// command (Claude Code, Claude Desktop, the MCP SDKs). It is a byte pipe
// between stdin/stdout and the daemon's socket, where MCP is served; if no
// daemon answers, it starts `shim serve` in the background first, so one
// line of client configuration is enough. stdout carries only protocol
// lines; diagnostics go to stderr. EOF on stdin ends it once the replies to
// everything sent have arrived.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "cli/client_util.h"
#include "cli/commands.h"
#include "cli/paths.h"

namespace shim::cli {
namespace {

bool WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Starts `shim serve` detached, logging to $SHIM_HOME/shim.log.
bool StartDaemon(const std::string& socket, const std::string& data_dir) {
  TightenShimHome();
  const std::string log = ShimHome() + "/shim.log";
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    ::setsid();
    if (::fork() != 0) ::_exit(0);  // the daemon is reparented, never our zombie
    int devnull = ::open("/dev/null", O_RDONLY);
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    ::dup2(devnull, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::execl(self.c_str(), self.c_str(), "serve", "--socket", socket.c_str(), "--data",
            data_dir.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status;
  ::waitpid(pid, &status, 0);
  return true;
}

}  // namespace

int RunMcp(const ParsedArgs& args) {
  const std::string socket = args.GetOr("socket", DefaultSocketPath());

  auto client = ConnectFromArgs(args);
  if (!client.ok() && !args.Flag("no-start") && !args.Get("connect")) {
    if (!StartDaemon(socket, args.GetOr("data", DefaultDataDir()))) {
      std::fprintf(stderr, "shim mcp: cannot start the daemon\n");
      return kExitNoServer;
    }
    for (int i = 0; i < 200 && !client.ok(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      client = net::LineClient::ConnectUnix(socket);
    }
  }
  if (!client.ok()) {
    std::fprintf(stderr, "shim mcp: %s\n", client.status().message().c_str());
    return kExitNoServer;
  }
  const int sock = (*client)->fd();
  bool stdin_open = true;
  char buf[65536];
  for (;;) {
    pollfd fds[2] = {{stdin_open ? 0 : -1, POLLIN, 0}, {sock, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return kExitServerError;
    }
    if (stdin_open && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = ::read(0, buf, sizeof(buf));
      if (n > 0) {
        if (!WriteAll(sock, buf, static_cast<size_t>(n))) return kExitServerError;
      } else if (n == 0 || errno != EINTR) {
        // EOF: no more requests; the server closes once it has answered.
        stdin_open = false;
        ::shutdown(sock, SHUT_WR);
      }
    }
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::read(sock, buf, sizeof(buf));
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        if (stdin_open) std::fprintf(stderr, "shim mcp: the server closed the connection\n");
        return stdin_open ? kExitServerError : kExitOk;
      }
      if (!WriteAll(1, buf, static_cast<size_t>(n))) return kExitOk;  // client gone
    }
  }
}

}  // namespace shim::cli
