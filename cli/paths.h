// Default locations: $SHIM_HOME (else ~/.shim) holds the socket `shim.sock`
// and the store under `data/`. Every command resolves them the same way.
#pragma once

#include <string>

namespace shim::cli {

std::string ShimHome();
std::string DefaultSocketPath();  // $SHIM_SOCKET, else $SHIM_HOME/shim.sock
std::string DefaultDataDir();     // $SHIM_HOME/data
// Creates $SHIM_HOME if missing and makes it 0700 when it is ours and not a
// shared sticky directory like /tmp (that one is left alone, and the server's
// socket-directory check then refuses it).
void TightenShimHome();

}  // namespace shim::cli
