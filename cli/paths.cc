#include "cli/paths.h"

#include <cstdlib>

namespace shim::cli {

std::string ShimHome() {
  if (const char* home = std::getenv("SHIM_HOME"); home && *home) return home;
  const char* user_home = std::getenv("HOME");
  return std::string(user_home && *user_home ? user_home : ".") + "/.shim";
}

std::string DefaultSocketPath() {
  if (const char* sock = std::getenv("SHIM_SOCKET"); sock && *sock) return sock;
  return ShimHome() + "/shim.sock";
}

std::string DefaultDataDir() { return ShimHome() + "/data"; }

}  // namespace shim::cli
