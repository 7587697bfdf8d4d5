#include "cli/paths.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

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

void TightenShimHome() {
  const std::string home = ShimHome();
  std::error_code ec;
  std::filesystem::create_directories(home, ec);
  struct stat st;
  if (::stat(home.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == ::geteuid() &&
      (st.st_mode & S_ISVTX) == 0 && (st.st_mode & 077) != 0) {
    ::chmod(home.c_str(), 0700);
  }
}

}  // namespace shim::cli
