// Default locations: $SHIM_HOME (else ~/.shim) holds the socket `shim.sock`,
// the store under `data/` and the log of the server `shim mcp` starts,
// `shim.log`. Every command resolves them the same way.
#pragma once

#include <string>

#include "base/status.h"

namespace shim::cli {

// $SHIM_HOME made absolute (a relative one is taken from the current
// directory, so that a server started in the background and its clients
// agree), else $HOME/.shim. Errors: INVALID_PARAMS when a path component
// starts with a literal `~`, which no shell expanded (SHIM_HOME="~/x" in
// quotes): the message says to write $HOME instead.
Result<std::string> ResolveShimHome();
// ResolveShimHome, or prints its error to stderr and exits with kExitUsage.
std::string ShimHome();
std::string DefaultSocketPath();  // $SHIM_SOCKET, else $SHIM_HOME/shim.sock
std::string DefaultDataDir();     // $SHIM_HOME/data
std::string DefaultLogFile();     // $SHIM_HOME/shim.log (the daemon `shim mcp` starts)
// Creates $SHIM_HOME if missing and makes it 0700 when it is ours and not a
// shared sticky directory like /tmp (that one is left alone, and the server's
// socket-directory check then refuses it).
void TightenShimHome();

}  // namespace shim::cli
