// Default locations: $SHIM_HOME (else ~/.shim) holds the socket `shim.sock`
// and the store under `data/`. Every command resolves them the same way.
#pragma once

#include <string>

namespace shim::cli {

std::string ShimHome();
std::string DefaultSocketPath();  // $SHIM_SOCKET, else $SHIM_HOME/shim.sock
std::string DefaultDataDir();     // $SHIM_HOME/data

}  // namespace shim::cli
