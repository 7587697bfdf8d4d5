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
#include "cli/server_daemon.h"

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

}  // namespace

int RunMcp(const ParsedArgs& args) {
  const std::string socket = args.GetOr("socket", DefaultSocketPath());

  auto client = ConnectFromArgs(args);
  if (!client.ok() && !args.Flag("no-start") && !args.Get("connect")) {
    TightenShimHome();
    if (Status s = StartServerDaemon({.socket = socket,
                                      .data_dir = args.GetOr("data", DefaultDataDir()),
                                      .log_file = DefaultLogFile()});
        !s.ok()) {
      std::fprintf(stderr, "shim mcp: %s\n", s.message().c_str());
      return kExitNoServer;
    }
    client = net::LineClient::ConnectUnix(socket);
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
